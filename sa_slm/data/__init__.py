from .audit import (AuditResult, BadItem, apply_audit, audit_examples, audit_manifest, audited_manifest,
                    user_audio_limits)
from .collate import PromptCollator, TeacherForcingCollator, example_conversation
from .manifest import BadLine, Example, ExampleDataset, load_manifest, read_manifest

__all__ = ["AuditResult", "BadItem", "BadLine", "Example", "ExampleDataset", "PromptCollator", "TeacherForcingCollator", "apply_audit",
           "audit_examples", "audit_manifest", "audited_manifest", "example_conversation", "load_manifest", "read_manifest",
           "user_audio_limits"]
