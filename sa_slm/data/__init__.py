from .collate import TeacherForcingCollator
from .manifest import BadLine, Example, ExampleDataset, load_manifest, read_manifest

__all__ = ["BadLine", "Example", "ExampleDataset", "TeacherForcingCollator", "load_manifest", "read_manifest"]
