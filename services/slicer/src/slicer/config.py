"""The slicer's environment variables (on top of servicekit's common ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18086
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/slicer"
    consumer_ack_wait_seconds: float = 60.0
    """A slice request not acked nor marked in progress for this long is redelivered to another
    replica; a running slice marks its request in progress every third of it."""

    slicer_concurrency: int = Field(default=1, ge=1)
    """Slices this replica runs at once; each slice keeps one core busy, so one per core at most."""
    slicer_profiles_dir: Path | None = None
    """A folder of profiles that override the built-in ones (same file names)."""
    slicer_work_dir: Path | None = None
    """Scratch space for renders and slices; default `<DATA_DIR>/work`."""
    slicer_time_limit_seconds: float = Field(default=600.0, gt=0)
    """Wall-clock limit of one tool run (OpenSCAD or PrusaSlicer)."""
    slicer_memory_limit_mb: int = Field(default=2048, ge=64)
    """Address-space limit of one tool run."""
    slicer_claim_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claim on a slice holds without renewal: a replica that dies mid-slice loses its claim
    after this long and another replica slices it. A live replica renews every third of it."""
    slicer_wait_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a request waiting on another replica's claim looks whether the slice is done."""
    slicer_fetch_timeout_seconds: float = Field(default=2.0, gt=0)

    @property
    def work_dir(self) -> Path:
        return self.slicer_work_dir if self.slicer_work_dir is not None else self.data_dir / "work"
