"""Installable anywhere: a wheel built from the sources, installed into a fresh virtual environment, runs
`sa-slm demo`, `sa-slm generate --model tiny` and `sa-slm score` from a folder outside the checkout,
with everything it reads (presets, rubrics, configs, the demo corpus) coming from package data."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with only the wheel installed; the dependencies come from this test's environment
    through a .pth line (whose own .pth files, such as the editable install of the checkout, stay unread)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "sa_slm", src / "sa_slm", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", src], tmp)
    wheel = next((tmp / "dist").glob("sa_slm-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).stdout.strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], tmp)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SA_SLM_ROOT")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return venv, elsewhere, env


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    venv, elsewhere, env = installed
    where = run([venv / "bin" / "python", "-c", "import sa_slm.paths as p; print(p.__file__); print(p.CORPUS_DIR)"],
                elsewhere, env).stdout.split()
    assert all(str(venv) in line for line in where), where
    assert not any(str(ROOT) in line for line in where)


@pytest.mark.slow
def test_the_wheel_runs_demo_generate_and_score_outside_the_checkout(installed):
    venv, elsewhere, env = installed
    cli = venv / "bin" / "sa-slm"
    demo = run([cli, "demo", "--out", "demo"], elsewhere, env).stdout
    assert "report:" in demo and (elsewhere / "demo" / "answer.wav").is_file()
    assert (elsewhere / "demo" / "eval" / "report" / "index.html").is_file()
    run([cli, "generate", "--model", "tiny", "--device", "cpu", "--text", "Hello there", "--out", "hi.wav",
         "--max-new-codes", "10", "--seed", "0"], elsewhere, env)
    assert (elsewhere / "hi.wav").stat().st_size > 44
    scored = json.loads(run([cli, "score", "--model", "tiny", "--device", "cpu", "--audio", "hi.wav", "--text",
                             "Hello there", "--context-text", "Say hello", "--json"], elsewhere, env).stdout)
    assert set(scored["scores"]) == {"emotion", "prosody", "naturalness"}
