"""Times the skus file readers on hostile input in a child process that can be killed: a reader that
backtracks would otherwise hang the test run instead of failing it.

The worker reads requests (file name, payload) from stdin and answers with the best of three CPU times
of `inspect_file` on that payload, in seconds (CPU time: other processes on a busy machine do not count
against the reader); a rejection counts as an answer. A reader that hangs overruns the wall-clock deadline.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import io, struct, sys, time
from skus.domain.files import FileRejected, inspect_file

read = sys.stdin.buffer.read
while header := read(8):
    name_size, payload_size = struct.unpack("<II", header)
    name = read(name_size).decode()
    payload = read(payload_size)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        try:
            inspect_file(io.BytesIO(payload), name)
        except FileRejected:
            pass
        best = min(best, time.process_time() - start)
    sys.stdout.write(f"{best}\n")
    sys.stdout.flush()
"""


class ParseTimer:
    """One worker process at a time; a request that overruns its deadline kills it (and fails)."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def _worker(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WORKER,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=tempfile.gettempdir(),
            )
        return self._process

    async def seconds(self, filename: str, payload: bytes, *, deadline: float = 20.0) -> float:
        """Best of three times to inspect `payload` as `filename`; inf when it overran `deadline`."""
        worker = await self._worker()
        assert worker.stdin is not None and worker.stdout is not None
        name = Path(filename).name.encode()
        worker.stdin.write(struct.pack("<II", len(name), len(payload)) + name + payload)
        await worker.stdin.drain()
        try:
            line = await asyncio.wait_for(worker.stdout.readline(), deadline)
        except TimeoutError:
            await self.close()
            return float("inf")
        return float(line)

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None
