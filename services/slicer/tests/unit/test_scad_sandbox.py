"""A part's source may not make OpenSCAD read any other file; comments and text values are not code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slicer_samples import NAME_TAG_SCAD

from slicer.domain.errors import SourceRefused
from slicer.domain.scad_sandbox import check_scad_source, decode_source, file_references

REFUSED = [
    "include </etc/passwd>",
    "include <../secrets.scad>",
    "include <lib.scad>",
    "use </usr/share/openscad/libraries/MCAD/gears.scad>",
    "use\n<other.scad>",
    "include>><x.scad>",
    'import("/etc/hostname");',
    'import (file = "/etc/x.stl");',
    'import /* sneaky */ ("/etc/x.stl");',
    'surface(file = "/etc/heightmap.dat");',
    'surface("/etc/heightmap.dat");',
    'linear_extrude(height = 2, file = "/etc/x.dxf");',
    'rotate_extrude(file="/etc/x.dxf");',
    'x = dxf_dim(file = "/etc/x.dxf", name = "w");',
    'import_stl("/etc/x.stl");',
    "x = 1.5include <a.scad>",
    'if (a < 3) x = "b>c"; import("/etc/passwd");',
    'f = "a"; import(f);',
]
ALLOWED = [
    "cube(10);",
    "// include </etc/passwd>\ncube(1);",
    '/* import("/etc/passwd") */ cube(1);',
    'label = "use <glue> and include </etc/passwd>";',
    'label = "import(\\"x\\")";',
    "fuse = 1; if (fuse < 2) cube(fuse);",
    "reuse = 3; x = reuse <4;",
    "x=1include <3;",
    "my_import = 2; translate([my_import, 0, 0]) cube(1);",
    "function importance(x) = x; cube(importance(2));",
    "module m(file_name = 1) cube(file_name); m(file_name = 2);",
    NAME_TAG_SCAD.decode(),
]


@pytest.mark.parametrize("source", REFUSED)
def test_file_reads_are_refused(source: str) -> None:
    with pytest.raises(SourceRefused, match="not allowed") as refused:
        check_scad_source(source)
    assert refused.value.stage == "render"
    assert refused.value.field == "file"


@pytest.mark.parametrize("source", ALLOWED)
def test_ordinary_sources_pass(source: str) -> None:
    check_scad_source(source)


def test_the_message_names_the_line_and_what_was_refused() -> None:
    with pytest.raises(SourceRefused) as refused:
        check_scad_source("cube(1);\n\n// fine\ninclude </etc/passwd>\n")
    assert "line 4" in refused.value.message
    assert "include </etc/passwd>" in refused.value.message
    with pytest.raises(SourceRefused) as refused:
        check_scad_source('/* a\nb */ x = 1;\nimport("/etc/x.stl");')
    assert "line 3: import(...)" in refused.value.message


def test_binary_and_oversized_sources_are_refused() -> None:
    with pytest.raises(SourceRefused, match="binary"):
        decode_source(b"cube(1);\x00\x01")
    with pytest.raises(SourceRefused, match="larger"):
        decode_source(b" " * (9 * 1024 * 1024))


SAFE_CHUNKS = st.sampled_from(["cube(1);", "x = 2;", " ", "\n", "sphere(r = 3);", "a < b", "c > d", "(", ")", "1.5"])


@given(st.lists(SAFE_CHUNKS, max_size=20), st.text(max_size=40), st.sampled_from(["comment", "block", "string"]))
def test_anything_inside_comments_and_strings_is_inert(code: list[str], text: str, where: str) -> None:
    """Hostile words inside a comment or a string literal never count as a file read."""
    payload = f'include </etc/passwd> use <x> import("/x") surface(file="/y") {text}'
    if where == "comment":
        wrapped = "// " + payload.replace("\n", " ") + "\n"
    elif where == "block":
        wrapped = "/* " + payload.replace("*/", "* /") + " */"
    else:
        wrapped = 'label = "' + payload.replace("\\", "\\\\").replace('"', '\\"') + '";'
    source = "".join(code) + "\n" + wrapped + "\n" + "".join(code)
    assert file_references(source) == []


@given(st.text(max_size=200))
def test_scanner_never_crashes(source: str) -> None:
    for reference in file_references(source):
        assert reference.line >= 1


@given(st.lists(SAFE_CHUNKS, max_size=10), st.sampled_from(REFUSED), st.lists(SAFE_CHUNKS, max_size=10))
def test_a_file_read_is_found_wherever_it_sits(before: list[str], read: str, after: list[str]) -> None:
    source = "".join(before) + ";\n" + read + "\n" + "".join(after)
    assert file_references(source)
