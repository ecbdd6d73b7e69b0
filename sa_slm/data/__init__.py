from .collate import TeacherForcingCollator
from .manifest import Example, load_manifest

__all__ = ["Example", "TeacherForcingCollator", "load_manifest"]
