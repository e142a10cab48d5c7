"""Render check through the OpenSCAD command line, when it is installed.

A customizer file can parse fine and still fail to compile; rendering it once to STL with its
defaults (or given values) is the only proof. Without OpenSCAD the check is skipped, not failed.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from skus.domain.files.model import ScalarValue

DEFAULT_TIMEOUT_S = 120.0
_MESSAGE_CHARS = 2000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RenderResult:
    """`rendered` says whether OpenSCAD ran at all; `ok` is False only for a render that failed."""

    rendered: bool
    ok: bool
    message: str


def openscad_literal(value: ScalarValue) -> str:
    """A value as OpenSCAD source, for `-D name=value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be passed to OpenSCAD")
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _defines(values: Mapping[str, ScalarValue]) -> list[str]:
    args: list[str] = []
    for name, value in values.items():
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not an OpenSCAD variable name")
        args += ["-D", f"{name}={openscad_literal(value)}"]
    return args


def _summarise_stderr(stderr: bytes) -> str:
    """OpenSCAD's ERROR lines when it printed some, else the end of what it printed."""
    text = stderr.decode("utf-8", "replace").strip()
    errors = [line for line in text.splitlines() if "ERROR" in line]
    summary = "\n".join(errors) if errors else text
    return summary[-_MESSAGE_CHARS:]


async def render_check(
    path: Path | str,
    *,
    values: Mapping[str, ScalarValue] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    executable: str = "openscad",
) -> RenderResult:
    binary = shutil.which(executable)
    if binary is None:
        return RenderResult(rendered=False, ok=True, message="OpenSCAD is not installed; the file was not rendered")
    with tempfile.TemporaryDirectory(prefix="skus-render-") as workdir:
        output = Path(workdir) / "render.stl"
        process = await asyncio.create_subprocess_exec(
            binary,
            "-o",
            str(output),
            *_defines(values or {}),
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            return RenderResult(rendered=True, ok=False, message=f"render did not finish within {timeout:g} s")
        if process.returncode != 0:
            detail = _summarise_stderr(stderr) or "no error output"
            return RenderResult(rendered=True, ok=False, message=f"render failed (exit {process.returncode}): {detail}")
        produced = output.stat().st_size if output.exists() else 0
    if produced == 0:
        return RenderResult(rendered=True, ok=False, message="render produced no geometry")
    return RenderResult(rendered=True, ok=True, message="rendered")


def _kill_group(pid: int) -> None:
    """The render runs in its own session, so its whole group is ours to end."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
