"""Opens a part file on local disk for the domain's readers, which take streams and never open a path."""

from __future__ import annotations

from pathlib import Path

from skus.domain.files import FileInfo, InspectionLimits, inspect_file


def inspect_local_file(path: Path, filename: str, *, limits: InspectionLimits | None = None) -> FileInfo:
    """`filename` is the uploaded name (it decides the kind); `path` is where the bytes were spooled."""
    with path.open("rb") as source:
        return inspect_file(source, filename, limits)
