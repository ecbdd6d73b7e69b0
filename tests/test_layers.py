"""The import layers are a checked contract (pyproject.toml, [tool.importlinter]): one way, no cycles."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(package_parent: Path, config: Path) -> subprocess.CompletedProcess:
    """import-linter on the `sa_slm` package found in `package_parent` (first on the import path)."""
    env = {"PYTHONPATH": str(package_parent), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", str(config)], cwd=package_parent, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layer_contracts():
    proc = lint(ROOT, ROOT / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


@pytest.fixture()
def copy_of_package(tmp_path):
    """The package's Python files in a scratch folder, to break on purpose."""
    shutil.copytree(ROOT / "sa_slm", tmp_path / "sa_slm", ignore=shutil.ignore_patterns("resources", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(package_parent: Path, module: str, line: str) -> None:
    path = package_parent / "sa_slm" / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_a_cycle_breaks_the_contract(copy_of_package):
    """asr imports metrics.wer; a metrics -> asr import closes a cycle (and points upwards)."""
    _add_import(copy_of_package, "metrics/wer.py", "from ..asr import load_asr  # noqa")
    proc = lint(copy_of_package, copy_of_package / "pyproject.toml")
    assert proc.returncode != 0
    assert "No import cycles between sibling modules at any depth BROKEN" in proc.stdout
    assert "sa_slm.metrics.wer -> sa_slm.asr" in proc.stdout


def test_an_upward_import_breaks_the_contract(copy_of_package):
    """A component (the bridge) may not import the facade, even without a cycle."""
    _add_import(copy_of_package, "bridge/adaln.py", "import sa_slm.facade  # noqa")
    proc = lint(copy_of_package, copy_of_package / "pyproject.toml")
    assert proc.returncode != 0
    assert "apps BROKEN" in proc.stdout and "sa_slm.bridge.adaln -> sa_slm.facade" in proc.stdout
