"""Reads the profile INI files: the ones shipped in the package, each replaced by a same-named file in
the farm's override folder (which may also add new ones)."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from slicer.domain.profiles import ProfileConfigError, ProfileLibrary

PROFILE_FOLDERS = ("printer", "fabmatic", "filament", "print")
MAX_PROFILE_BYTES = 1024 * 1024


def _ini_files(root: Traversable) -> dict[str, str]:
    files: dict[str, str] = {}
    for folder in PROFILE_FOLDERS:
        directory = root / folder
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.is_file() and entry.name.endswith(".ini") and not entry.name.startswith("."):
                data = entry.read_bytes()
                if len(data) > MAX_PROFILE_BYTES:
                    raise ProfileConfigError(f"{folder}/{entry.name} is larger than {MAX_PROFILE_BYTES} bytes")
                try:
                    files[f"{folder}/{entry.name}"] = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProfileConfigError(f"{folder}/{entry.name} is not UTF-8 text") from None
    return files


def shipped_profile_files() -> dict[str, str]:
    return _ini_files(resources.files("slicer") / "profiles")


def load_profile_files(override_dir: Path | None) -> dict[str, str]:
    files = shipped_profile_files()
    if override_dir is not None:
        if not override_dir.is_dir():
            raise ProfileConfigError(f"the profile override folder {override_dir} does not exist")
        files.update(_ini_files(override_dir))
    return files


def load_profile_library(override_dir: Path | None) -> ProfileLibrary:
    return ProfileLibrary(load_profile_files(override_dir))
