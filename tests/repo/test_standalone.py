"""The repository stands alone: no tracked file names a path on the machine it was written on.

A test that reads a fixture from outside the clone, or a README that sends readers to a sibling
folder, works only where that folder happens to exist. Fixtures live in `tests/fixtures`, the API is
documented in `docs/API.md`, the smoke client is `tests/smoke`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Joined at run time so that this file (and `git grep` for them) does not find them here.
OUTSIDE_PATHS = ("/".join(("", "work", "")), "/".join(("..", "shared")))


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached"], capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in listing.decode("utf-8").split("\0") if name]


def outside_references(files: list[Path], root: Path = ROOT) -> list[str]:
    """`path:line: text` for every line naming a path outside the repository."""
    found = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the working tree, not yet committed
        content = path.read_bytes()
        if not any(needle.encode() in content for needle in OUTSIDE_PATHS):
            continue
        for number, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
            if any(needle in line for needle in OUTSIDE_PATHS):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:160]}")
    return found


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 100, "git ls-files listed too little to be this repository"
    found = outside_references(files)
    assert not found, "paths outside the repository (copy what is needed into it):\n" + "\n".join(found)


def test_the_check_finds_such_a_path(tmp_path: Path) -> None:
    named = tmp_path / "notes.md"
    named.write_text("see " + OUTSIDE_PATHS[0] + "elsewhere/API.md\nfine line\n", encoding="utf-8")
    sibling = tmp_path / "README.md"
    sibling.write_text("run python3 " + OUTSIDE_PATHS[1] + "/client.py\n", encoding="utf-8")
    clean = tmp_path / "clean.py"
    clean.write_text("FIXTURES = ROOT / 'tests' / 'fixtures'\n", encoding="utf-8")
    found = outside_references([named, sibling, clean], tmp_path)
    assert found == [
        "notes.md:1: see " + OUTSIDE_PATHS[0] + "elsewhere/API.md",
        "README.md:1: run python3 " + OUTSIDE_PATHS[1] + "/client.py",
    ]


def test_captured_printer_reports_are_in_the_repository() -> None:
    reports = sorted(path.name for path in (ROOT / "tests" / "fixtures" / "bambu").glob("*.json"))
    assert len(reports) >= 5, reports
