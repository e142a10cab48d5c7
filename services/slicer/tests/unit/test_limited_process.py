"""Tools run in argv form under a deadline, rlimits and an output cap; their whole group dies with them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from servicekit.testing import wait_until
from slicer.adapters.limited_process import ToolLimits, run_limited

PY = sys.executable


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_runs_and_captures(tmp_path: Path) -> None:
    result = await run_limited(
        [PY, "-c", "import sys, os; print(os.getcwd()); print('oops', file=sys.stderr); sys.exit(3)"],
        cwd=tmp_path,
        limits=ToolLimits(time_limit_seconds=30),
    )
    assert result.returncode == 3 and not result.timed_out
    assert result.stdout.decode().strip() == str(tmp_path)
    assert result.stderr.decode().strip() == "oops"


async def test_argv_is_never_a_command_line(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        await run_limited("echo hi; rm -rf /", cwd=tmp_path, limits=ToolLimits())  # type: ignore[arg-type]
    marker = tmp_path / "pwned"
    result = await run_limited(
        [PY, "-c", "import sys; print(sys.argv[1])", f"$(touch {marker}); `touch {marker}`"],
        cwd=tmp_path,
        limits=ToolLimits(),
    )
    assert result.returncode == 0 and not marker.exists()
    assert b"$(touch" in result.stdout


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    result = await run_limited([PY, "-c", script], cwd=tmp_path, limits=ToolLimits(time_limit_seconds=1.0))
    assert result.timed_out and result.returncode is None
    assert result.seconds < 10
    pid = int(pid_file.read_text())
    await wait_until(lambda: not alive(pid), 5, f"process {pid} to die")


async def test_cancellation_kills_the_tool(tmp_path: Path) -> None:
    pid_file = tmp_path / "tool.pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    task = asyncio.ensure_future(run_limited([PY, "-c", script], cwd=tmp_path, limits=ToolLimits()))
    await wait_until(lambda: pid_file.exists() and pid_file.read_text(), 10, "the tool to start", interval=0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    await wait_until(lambda: not alive(pid), 5, f"process {pid} to die")


async def test_memory_limit(tmp_path: Path) -> None:
    result = await run_limited(
        [PY, "-c", "x = bytearray(512 * 1024 * 1024); print('allocated')"],
        cwd=tmp_path,
        limits=ToolLimits(memory_limit_mb=256),
    )
    assert result.returncode != 0
    assert b"MemoryError" in result.stderr


async def test_output_is_capped_head_and_tail(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('HEAD' + 'x' * 5_000_000 + 'TAIL')"
    result = await run_limited([PY, "-c", script], cwd=tmp_path, limits=ToolLimits(output_limit_bytes=10_000))
    assert result.returncode == 0
    assert len(result.stdout) < 11_000
    assert result.stdout.startswith(b"HEAD") and result.stdout.endswith(b"TAIL")
    assert b"bytes dropped" in result.stdout


async def test_file_size_limit(tmp_path: Path) -> None:
    script = "open('big', 'wb').write(b'x' * 3 * 1024 * 1024)"
    result = await run_limited([PY, "-c", script], cwd=tmp_path, limits=ToolLimits(file_size_limit_mb=1))
    assert result.returncode != 0
    assert (tmp_path / "big").stat().st_size <= 1024 * 1024


async def test_one_cpu(tmp_path: Path) -> None:
    result = await run_limited(
        [PY, "-c", "import os; print(len(os.sched_getaffinity(0)))"], cwd=tmp_path, limits=ToolLimits()
    )
    assert result.stdout.strip() == b"1"


async def test_environment_is_only_what_is_given(tmp_path: Path) -> None:
    os.environ["PRINTFARM_TEST_SECRET"] = "s3cret"
    try:
        result = await run_limited(
            [PY, "-c", "import os; print(sorted(os.environ))"], cwd=tmp_path, limits=ToolLimits(), env={"A": "1"}
        )
    finally:
        del os.environ["PRINTFARM_TEST_SECRET"]
    assert b"PRINTFARM_TEST_SECRET" not in result.stdout and b"'A'" in result.stdout
