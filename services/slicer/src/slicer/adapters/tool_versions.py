"""The versions of the slicing tools, read once when the service starts: they are part of the cache key,
because a new OpenSCAD or PrusaSlicer can turn the same inputs into a different file.

A tool is asked `--version` in argv form with the tools' minimal environment. PrusaSlicer before 2.6
does not know `--version` and prints its usage instead, whose first line names the version: the first
line with a version number in the output is taken either way. A tool that is not installed, or says
nothing recognisable, is keyed by that fact (its slices fail as transient and are not cached anyway).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from slicer.adapters.openscad import tool_environment

NOT_INSTALLED = "not installed"
UNKNOWN = "version unknown"
_VERSION = re.compile(r"\d+\.\d+")
_LINE_CHARS = 200
_TIMEOUT_SECONDS = 30.0


def version_line(output: str) -> str | None:
    """The first line naming a version, skipping PrusaSlicer's `[timestamp] [thread] [trace]` log lines."""
    for raw in output.splitlines():
        line = raw.strip()
        if line and not line.startswith("[") and _VERSION.search(line):
            return line[:_LINE_CHARS]
    return None


def read_tool_version(executable: str) -> str:
    binary = shutil.which(executable)
    if binary is None:
        return NOT_INSTALLED
    with tempfile.TemporaryDirectory(prefix="printfarm-tool-version-") as home:
        try:
            result = subprocess.run(
                [binary, "--version"],
                env=tool_environment(Path(home)),
                cwd=home,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return UNKNOWN
    output = result.stdout.decode("utf-8", "replace") + "\n" + result.stderr.decode("utf-8", "replace")
    return version_line(output) or UNKNOWN


def read_tool_versions(executables: Mapping[str, str]) -> dict[str, str]:
    """{role: version line} for {role: executable}, e.g. {"openscad": "OpenSCAD version 2021.01"}."""
    return {role: read_tool_version(executable) for role, executable in executables.items()}
