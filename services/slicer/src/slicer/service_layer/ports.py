"""What the service layer needs from the outside: the slicing pipeline and the two object stores.

The pipeline (render OpenSCAD, slice, package for the printer) is pure work on bytes behind
`SlicePipeline`; its job and result types are re-exported here so the service layer names one module.
"""

from __future__ import annotations

from typing import Protocol

from slicer.domain.errors import SliceError, SliceStage
from slicer.domain.job import SlicedFile, SliceJob, SourceKind

__all__ = [
    "SliceError",
    "SliceJob",
    "SlicePipeline",
    "SliceStage",
    "SlicedFile",
    "SlicedFiles",
    "SourceFiles",
    "SourceKind",
    "SourceNotFound",
]


class SlicePipeline(Protocol):
    """`slicer.service_layer.pipeline.SlicePipeline` (OpenSCAD, PrusaSlicer) or a test's stand-in."""

    def cache_key(self, job: SliceJob) -> str: ...

    def profile_for(self, job: SliceJob) -> str: ...

    async def make_printable(self, job: SliceJob, source: bytes) -> SlicedFile: ...


class SourceNotFound(Exception):
    """The part's source is not in `part-files`: nothing to slice (not an outage)."""


class SourceFiles(Protocol):
    """The skus service's `part-files` object store, read by sha256."""

    async def get(self, sha256: str) -> bytes: ...


class SlicedFiles(Protocol):
    """The slicer's own `sliced-files` object store, written by sha256 (idempotent)."""

    async def put(self, sha256: str, content: bytes) -> None: ...
