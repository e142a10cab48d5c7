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
    inspect_timeout_seconds: float = 60.0
    """Wall-clock time reading one upload may take (refused with 422 beyond it)."""
    inspect_max_uncompressed_bytes: int = 2 << 30
    """Bytes reading one upload may decompress, over all archive members (refused with 413 beyond it)."""
    inspect_max_ratio: int = 100
    """How many times its compressed size a 3MF member may expand (a zip bomb beyond it)."""
    inspect_max_members: int = 10_000
    inspect_max_xml_depth: int = 64

    @property
    def part_files_root(self) -> Path:
        return self.files_root if self.files_root is not None else self.data_dir / "part-files"
