"""Content-addressed storage of part files: one copy per sha256, whoever uploaded it how often.

The local folder is the default; anything offering the same four methods (an S3-compatible bucket)
can take its place in bootstrap.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import aiofiles
import anyio

CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileStore(Protocol):
    def scratch_dir(self) -> Path:
        """A local folder where uploads are spooled before they are known to be good."""

    async def put(self, sha256: str, source: Path) -> None:
        """Take `source` into the store under `sha256`; `source` is consumed either way."""

    async def exists(self, sha256: str) -> bool: ...

    def read(self, sha256: str) -> AsyncIterator[bytes]: ...


class LocalFileStore:
    """`<root>/<ab>/<cd>/<sha256>`; writes are a rename from `<root>/.incoming`, so a reader never sees
    half a file."""

    def __init__(self, root: Path, *, stale_after_seconds: float = 24 * 3600) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.scratch_dir().mkdir(exist_ok=True)
        self._remove_stale_uploads(stale_after_seconds)

    def _remove_stale_uploads(self, age: float) -> None:
        """Uploads a crashed process left behind; a live upload never takes a day."""
        cutoff = time.time() - age
        for leftover in self.scratch_dir().iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def scratch_dir(self) -> Path:
        return self.root / ".incoming"

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, source: Path) -> None:
        await anyio.to_thread.run_sync(self._put, sha256, source)

    def _put(self, sha256: str, source: Path) -> None:
        target = self.path(sha256)
        if target.exists():
            source.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError:
            partial = target.with_suffix(".partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            source.unlink(missing_ok=True)

    async def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    async def read(self, sha256: str) -> AsyncIterator[bytes]:
        async with aiofiles.open(self.path(sha256), "rb") as f:
            while chunk := await f.read(CHUNK):
                yield chunk


def discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
