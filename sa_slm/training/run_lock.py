"""One run per output folder: `<output_dir>/.lock`, held with an OS lock for the length of a run.

The lock is `fcntl.flock` on the file, so the kernel releases it when the holder dies in any way
(`kill -9` included); the file's text (`pid host`) only names the holder in messages. A second run on
the same folder is refused while the first is alive; a lock left by a dead run is taken over with a
warning. Only the launch's main process (global `RANK` 0, or no launcher) takes it: the other ranks of
one `torchrun`/`deepspeed`/`accelerate` launch share it, and a second launch is refused at its rank 0
(the launcher then stops that launch's other ranks).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import SASLMError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}  # file systems without flock


class RunLockedError(SASLMError):
    """Another live run is writing to the same output folder."""


def is_launch_main_process() -> bool:
    """True on global rank 0 of a distributed launch, and in a plain single-process run."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("", "0")


def _holder(fd: int) -> tuple[int | None, str]:
    """(pid, host) written in the lock file; (None, "") when empty or unreadable."""
    text = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
    if len(text) >= 2 and text[0].isdigit():
        return int(text[0]), text[1]
    return None, ""


def _alive_here(pid: int, host: str) -> bool:
    """Whether `pid` runs on this host (a holder on another host counts as alive: it cannot be checked)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _refuse(folder: Path, pid: int | None, host: str) -> RunLockedError:
    who = f"pid {pid} on {host}" if pid is not None else "a process that has not written its pid yet"
    return RunLockedError(f"another run ({who}) is writing to {folder}; wait for it or pick another output_dir")


@contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold `<folder>/.lock` for the body (created with the folder if needed); see the module docstring.

    Raises RunLockedError when another live run holds it.
    """
    if not is_launch_main_process():
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            raise _refuse(folder, *_holder(fd)) from None
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            log.warning("%s: the file system has no file locks; relying on the pid in the lock file", path)
            locked = False
        pid, host = _holder(fd)
        if pid is not None and pid != os.getpid():
            if not locked and _alive_here(pid, host):
                raise _refuse(folder, pid, host)
            log.warning("taking over the stale lock %s of pid %d on %s (that run is gone)", path, pid, host)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean end leaves an empty file: nothing stale for the next run
    finally:
        os.close(fd)  # releases the flock
