"""Run one command-line tool with limits: argv only (no shell), a wall-clock deadline, address-space,
CPU-time and file-size rlimits, no core dumps, its own process group (killed whole on timeout or
cancellation) and its output capped, so a hostile or runaway input costs a bounded amount of the box.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ToolLimits:
    time_limit_seconds: float = 600.0
    """Wall clock for one run; the whole process group is killed after it."""
    memory_limit_mb: int = 2048
    """Address-space limit (RLIMIT_AS) of the tool."""
    cpu_limit_seconds: int | None = None
    """CPU time (RLIMIT_CPU); default: twice the wall clock, which allows two busy threads."""
    file_size_limit_mb: int = 512
    """Largest file the tool may write (RLIMIT_FSIZE)."""
    output_limit_bytes: int = 256 * 1024
    """Kept of stdout and of stderr each: the first and the last half, the middle dropped."""
    single_cpu: bool = True
    """Pin the tool to one CPU: PrusaSlicer's threads order their work differently from run to run, so
    only a single-CPU run gives the same G-code (and sha256) for the same inputs. The CPU rotates
    between runs, so concurrent slices spread over the machine."""


@dataclass(frozen=True)
class ProcessResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    seconds: float


class _CappedBuffer:
    """Keeps the head and the tail of a stream: errors are usually at the end, the cause at the start."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        if len(self.tail) > self.half:
            excess = len(self.tail) - self.half
            self.dropped += excess
            del self.tail[:excess]

    def value(self) -> bytes:
        if not self.dropped:
            return bytes(self.head + self.tail)
        return bytes(self.head) + f"\n[... {self.dropped} bytes dropped ...]\n".encode() + bytes(self.tail)


_cpu_turn = itertools.count()


def _next_cpu() -> int | None:
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None
    return allowed[next(_cpu_turn) % len(allowed)] if allowed else None


def _limiter(limits: ToolLimits) -> Callable[[], None]:
    cpu_index = _next_cpu() if limits.single_cpu else None
    memory = limits.memory_limit_mb * 1024 * 1024
    cpu = limits.cpu_limit_seconds or max(int(limits.time_limit_seconds * 2) + 1, 1)
    fsize = limits.file_size_limit_mb * 1024 * 1024

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cpu_index is not None:
            os.sched_setaffinity(0, {cpu_index})

    return apply


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _drain(stream: asyncio.StreamReader | None, buffer: _CappedBuffer) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_READ_CHUNK):
        buffer.add(chunk)


async def run_limited(
    argv: Sequence[str], *, cwd: Path, limits: ToolLimits, env: Mapping[str, str] | None = None
) -> ProcessResult:
    """Runs `argv` to its end or its deadline. Raises FileNotFoundError when the program is missing."""
    if isinstance(argv, str):
        raise TypeError("argv must be a sequence of arguments, never a command line")
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limiter(limits),
    )
    stdout, stderr = _CappedBuffer(limits.output_limit_bytes), _CappedBuffer(limits.output_limit_bytes)
    readers = asyncio.gather(_drain(process.stdout, stdout), _drain(process.stderr, stderr))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(readers), limits.time_limit_seconds)
        await asyncio.wait_for(process.wait(), max(limits.time_limit_seconds - (time.monotonic() - started), 0.1))
    except TimeoutError:
        timed_out = True
    finally:
        if process.returncode is None:  # not reaped yet, so its group id still names only its own processes
            _kill_group(process.pid)
        await asyncio.shield(process.wait())
        readers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await readers
    return ProcessResult(
        returncode=None if timed_out else process.returncode,
        stdout=stdout.value(),
        stderr=stderr.value(),
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )
