"""One launcher per data folder (a lock), and a state file that `status` and `down` read."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from devstack.errors import StackError

LOCK_FILE = "devstack.lock"
STATE_FILE = "devstack.json"


class DataDirLock:
    """Held for a launcher's whole life: a second launcher on the same data would share its database."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StackError(
                f"another dev stack (pid {holder}) is using {self.path.parent}; "
                "stop it first (`python -m devstack down`) or pick another data folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def launcher_running(data_dir: Path) -> bool:
    """True while some launcher holds the data folder's lock."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    """Written whole and renamed into place, so a reader never sees half a file."""
    path = data_dir / STATE_FILE
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(state, indent=2) + "\n")
    staging.replace(path)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def remove_state(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / STATE_FILE).unlink()
