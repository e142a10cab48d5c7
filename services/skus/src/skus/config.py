"""The skus service's environment variables (on top of servicekit's common ones)."""

from __future__ import annotations

from pathlib import Path

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/skus"
    files_root: Path | None = None
    """Where part files live, one per sha256; default `<DATA_DIR>/part-files`."""
    max_upload_bytes: int = 512 * 1024 * 1024
    openscad_binary: str = "openscad"
    openscad_timeout_seconds: float = 120.0

    @property
    def part_files_root(self) -> Path:
        return self.files_root if self.files_root is not None else self.data_dir / "part-files"
