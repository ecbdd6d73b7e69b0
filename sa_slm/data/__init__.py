from .collate import PromptCollator, TeacherForcingCollator, example_conversation
from .manifest import BadLine, Example, ExampleDataset, load_manifest, read_manifest

__all__ = ["BadLine", "Example", "ExampleDataset", "PromptCollator", "TeacherForcingCollator", "example_conversation",
           "load_manifest", "read_manifest"]
