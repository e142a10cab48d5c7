"""Render an OpenSCAD part with an order line's values into a binary STL, through the `openscad` CLI.

The source is checked first (`scad_sandbox`: no include/use/import/surface) and the values become
`-D` literals (`parameters`); then the file is copied alone into a fresh empty directory and OpenSCAD
runs there, in argv form, under `ToolLimits`, with a minimal environment (no display, HOME and
OPENSCADPATH inside that directory). OpenSCAD's own ERROR lines become the `render` SliceError, with
the scratch directory's path replaced by the part's file name.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from slicer.adapters.limited_process import ProcessResult, ToolLimits, run_limited
from slicer.domain.errors import SliceError
from slicer.domain.parameters import define_arguments
from slicer.domain.scad_sandbox import check_scad_source, decode_source

SOURCE_NAME = "part.scad"
OUTPUT_NAME = "part.stl"
_MESSAGE_CHARS = 2000
_STL_HEADER = 84
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def tool_environment(home: Path) -> dict[str, str]:
    """What the tools see of the environment: nothing of the service's (no secrets, no display)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MALLOC_ARENA_MAX": "2",
        "OPENSCADPATH": str(home),
    }


def make_scratch(work_dir: Path, prefix: str, files: Mapping[str, bytes]) -> Path:
    """A fresh private directory under `work_dir` holding only `files` (name → content)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir))
    make_scratch_files(directory, {name: content for name, content in files.items()})
    return directory


def make_scratch_files(directory: Path, files: Mapping[str, bytes | str]) -> None:
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (directory / name).write_bytes(data)


def read_output(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b""


async def remove_scratch(directory: Path) -> None:
    await asyncio.to_thread(shutil.rmtree, directory, True)


def display_name(filename: str, default: str) -> str:
    name = _SAFE_NAME.sub("_", Path(filename.replace("\\", "/")).name).strip() or default
    return name[:100]


def scrub_paths(text: str, directory: Path, source_name: str, shown_name: str) -> str:
    """Replaces the scratch directory (and the fixed source name in it) by what the user knows."""
    for form in {str(directory), str(directory.resolve())}:
        text = text.replace(f"{form}/{source_name}", shown_name).replace(form + "/", "").replace(form, ".")
    return text.replace(source_name, shown_name)


def summarise_errors(stderr: str) -> str:
    """OpenSCAD's ERROR (and the parser's) lines when it printed some, else the end of its output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Can't parse" in line]
    summary = "\n".join(errors) if errors else "\n".join(lines[-10:])
    return summary[-_MESSAGE_CHARS:]


class OpenScad:
    """The OpenSCAD CLI as a renderer of `.scad` sources to STL bytes."""

    def __init__(self, executable: str = "openscad") -> None:
        self.executable = executable

    def _binary(self) -> str:
        binary = shutil.which(self.executable)
        if binary is None:
            raise SliceError("render", "OpenSCAD is not installed on this slicer", transient=True)
        return binary

    async def render(
        self,
        source: bytes,
        parameters: Mapping[str, object],
        *,
        source_filename: str,
        work_dir: Path,
        limits: ToolLimits,
    ) -> bytes:
        text = decode_source(source)
        check_scad_source(text)
        defines = define_arguments(parameters)
        binary = self._binary()
        shown = display_name(source_filename, SOURCE_NAME)
        directory = await asyncio.to_thread(make_scratch, work_dir, "render-", {SOURCE_NAME: source})
        try:
            argv = [binary, "-o", OUTPUT_NAME, "--export-format", "binstl", *defines, SOURCE_NAME]
            result = await run_limited(argv, cwd=directory, limits=limits, env=tool_environment(directory))
            stl = await asyncio.to_thread(read_output, directory / OUTPUT_NAME)
            self._raise_for(result, stl, directory, shown, limits)
        finally:
            await remove_scratch(directory)
        return stl

    def _raise_for(self, result: ProcessResult, stl: bytes, directory: Path, shown: str, limits: ToolLimits) -> None:
        stderr = scrub_paths(result.stderr.decode("utf-8", "replace"), directory, SOURCE_NAME, shown)
        if result.timed_out:
            raise SliceError(
                "render", f"OpenSCAD did not finish within {limits.time_limit_seconds:g} s", transient=True
            )
        errors = [line for line in stderr.splitlines() if "ERROR" in line or "Can't parse" in line]
        if not errors and ("top level object is empty" in stderr.lower() or "No top level geometry" in stderr):
            raise SliceError("render", "the part renders to nothing: the top-level object is empty")
        if result.returncode != 0:
            detail = summarise_errors(stderr) or "no error output"
            killed = result.returncode is not None and result.returncode < 0
            if killed:
                detail = f"killed by signal {-(result.returncode or 0)} (memory or CPU limit?); {detail}"
            raise SliceError("render", f"OpenSCAD failed (exit {result.returncode}): {detail}", transient=killed)
        if len(stl) <= _STL_HEADER:
            raise SliceError("render", "the part renders to nothing: OpenSCAD wrote no triangles")
