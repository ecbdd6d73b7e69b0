"""Test helper: run a stage as a subprocess and SIGKILL it once a given checkpoint is complete."""

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_checkpoint(cmd: list[str], output_dir: Path, step: int, timeout: float = 300) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while not (output_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file():
        assert proc.poll() is None and time.time() < deadline, f"run ended before checkpoint {step}"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
