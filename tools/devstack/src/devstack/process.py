"""Child processes of the launcher: started in their own session, logged to a file, stopped on a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from devstack.errors import StackError
from devstack.waiting import wait_until

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account a child runs under (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int


def _die_with_launcher(sig: int) -> Callable[[], None]:
    """Children get ``sig`` when the launcher dies, even by SIGKILL, so nothing outlives it.

    SIGKILL by default: with the launcher gone nobody would kill a child whose graceful stop hangs.
    """
    launcher = os.getpid()

    def set_death_signal() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != launcher:
            os.kill(os.getpid(), sig)

    return set_death_signal


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies that nobody reaps do not count)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def tail(path: Path, lines: int, *, offset: int = 0) -> str:
    """The last ``lines`` lines of a log file from ``offset`` on ('' if there is none)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class ManagedProcess:
    """One long-running child with its output appended to ``log_path``.

    Output goes straight to the file, not through a pipe, so a busy or blocked launcher
    can never stall a child that is logging.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        run_as: RunAs | None = None,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGKILL,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.run_as = run_as
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self._proc: asyncio.subprocess.Process | None = None
        self._log_offset = 0
        self.stopping = False
        self.started_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        if self.running:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_launcher(self.death_signal),
                    user=self.run_as.uid if self.run_as else None,
                    group=self.run_as.gid if self.run_as else None,
                    extra_groups=[] if self.run_as else None,
                )
            except OSError as e:
                raise StackError(f"cannot start {self.name} ({self.argv[0]}): {e}") from e
        self.started_at = time.monotonic()

    async def wait(self) -> int:
        if self._proc is None:
            raise StackError(f"{self.name} was never started")
        return await self._proc.wait()

    def send_signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    async def stop(self, timeout: float) -> int | None:
        """Ask the child to stop, kill it after ``timeout`` seconds, then kill what it left behind."""
        if self._proc is None:
            return None
        self.stopping = True
        if self._proc.returncode is None:
            self.send_signal(self.stop_signal)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout)
            except TimeoutError:
                self.send_signal(signal.SIGKILL)
                await self._proc.wait()
        group = self._proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            # A server's orphaned workers (PostgreSQL backends) must be gone before the next start.
            await wait_until(lambda: not group_alive(group), 5, f"what {self.name} left behind to exit", interval=0.02)
        return self._proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this run of the process wrote (earlier runs are not repeated)."""
        return tail(self.log_path, lines, offset=self._log_offset)

    def failure(self, when: str) -> StackError:
        return StackError(
            f"{self.name} exited with code {self.returncode} {when}; "
            f"last lines of {self.log_path}:\n{self.log_tail() or '(no output)'}"
        )

    def raise_if_exited(self, when: str) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            raise self.failure(when)

    async def wait_ready(self, predicate: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
        """``wait_until`` that gives up at once if this process dies, and shows its log either way."""

        async def alive_and() -> T:
            self.raise_if_exited(f"while waiting for {what}")
            return await predicate()

        try:
            return await wait_until(alive_and, timeout, what)
        except TimeoutError as e:
            raise StackError(
                f"{self.name}: {e}; last lines of {self.log_path}:\n{self.log_tail() or '(no output)'}"
            ) from None


async def run_to_completion(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout: float,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a one-shot command (initdb) and raise with its output if it fails or hangs."""
    process = ManagedProcess(name, argv, log_path=log_path, run_as=run_as, env=env)
    await process.start()
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        await process.stop(1)
        raise StackError(f"{name} did not finish within {timeout:g}s; see {log_path}") from None
    if code != 0:
        raise process.failure("while running")
