"""Checkpoints and run safety: a torn newest checkpoint is skipped (finding 3); a live run on the same
output folder refuses a second, a dead run's lock is taken over (finding 6)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from faults import Fault, recipe

STAGE1 = ["--config", "stage1_tiny", "train.save_steps=1", "train.logging_steps=1", "train.save_total_limit=4"]
_HOLDERS: list[subprocess.Popen] = []  # live lock holders; each ends when its stdin closes (at the latest, pytest's exit)

HOLDER = """
import fcntl, os, select, socket, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\\n".encode(), 0)
print("held", flush=True)
select.select([sys.stdin], [], [], 300)
"""


def _stage1(out: Path, steps: int) -> list[str]:
    return [*STAGE1, f"output_dir={out}", f"train.max_steps={steps}"]


def _finished(out: Path, steps: int) -> list[str]:
    """The run's result, when it is lost: the metrics of all `steps` and the saved model."""
    metrics = out / "metrics.json"
    done = metrics.is_file() and json.loads(metrics.read_text())["steps"] == steps and (out / "model").is_dir()
    return [] if done else [f"{out.name}: finished run"]


def torn_newest(tmp: Path):
    out = tmp / "s1"
    assert recipe(1)(_stage1(out, 2)) == 0
    (out / "metrics.json").unlink()
    weights = out / "checkpoints" / "checkpoint-2" / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    return recipe(1), _stage1(out, 2)


def live_lock(tmp: Path):
    out = tmp / "s1"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    _HOLDERS.append(holder)
    return recipe(1), _stage1(out, 1)


def stale_lock(tmp: Path):
    out = tmp / "s1"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    return recipe(1), _stage1(out, 1)


FAULTS = [
    Fault(3, "stage1: newest checkpoint's weights truncated", torn_newest,
          r"skipping incomplete checkpoint \S*checkpoint-2: model\.safetensors is torn", exit_code=0,
          lost=lambda tmp: _finished(tmp / "s1", 2), slow=True),
    Fault(6, "stage1: another live run holds the output_dir", live_lock,
          r"another run \(pid \d+ on \S+\) is writing to \S*s1; wait for it or pick another output_dir"),
    Fault(6, "stage1: stale lock of a dead run", stale_lock, r"taking over the stale lock \S*s1/\.lock of pid \d+",
          exit_code=0, lost=lambda tmp: _finished(tmp / "s1", 1), slow=True),
]
