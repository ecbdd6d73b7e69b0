from .collate import TeacherForcingCollator
from .manifest import Example, ExampleDataset, load_manifest

__all__ = ["Example", "ExampleDataset", "TeacherForcingCollator", "load_manifest"]
