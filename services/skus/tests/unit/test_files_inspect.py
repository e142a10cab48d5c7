from __future__ import annotations

import io
from pathlib import Path

import pytest

from skus.adapters.file_inspection import inspect_local_file
from skus.domain.files import FileKind, FileRejected, inspect_file, kind_from_filename


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("part.stl", FileKind.STL),
        ("PART.STL", FileKind.STL),
        ("bracket.3mf", FileKind.THREEMF),
        ("bracket.gcode.3mf", FileKind.GCODE_3MF),
        ("Bracket.Gcode.3MF", FileKind.GCODE_3MF),
        ("bracket.gcode", FileKind.GCODE),
        ("box.v2.scad", FileKind.SCAD),
        (" spaced.stl ", FileKind.STL),
    ],
)
def test_kind_from_filename(filename: str, kind: FileKind) -> None:
    assert kind_from_filename(filename) is kind


@pytest.mark.parametrize("filename", ["model.obj", "part.stl.zip", "noextension", "", "gcode", "part.3mf.gcode.txt"])
def test_unknown_extensions_are_rejected_naming_the_file_field(filename: str) -> None:
    with pytest.raises(FileRejected) as caught:
        kind_from_filename(filename)
    assert caught.value.field == "file"
    assert "unsupported file type" in caught.value.reason
    assert str(caught.value).startswith("file: ")


def test_kind_comes_from_the_uploaded_name_not_the_stored_path(tmp_path: Path) -> None:
    stored = tmp_path / "upload-1234.bin"
    stored.write_text("// Size\nsize = 3;\n")
    info = inspect_local_file(stored, "box.scad")
    assert info.kind is FileKind.SCAD
    assert [p.name for p in info.parameters] == ["size"]
    with pytest.raises(FileRejected, match="not a valid STL"):
        inspect_local_file(stored, "box.stl")
    with pytest.raises(FileRejected, match="not a valid 3MF archive"):
        inspect_local_file(stored, "box.3mf")


def test_the_readers_take_a_stream_and_leave_it_open_for_its_owner() -> None:
    source = io.BytesIO(b"// Size\nsize = 3;\n")
    info = inspect_file(source, "box.scad")
    assert [p.name for p in info.parameters] == ["size"]
    assert not source.closed
    with pytest.raises(FileRejected, match="not a valid 3MF archive"):
        inspect_file(source, "box.3mf")
    assert not source.closed
