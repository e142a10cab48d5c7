"""The sandbox scan against OpenSCAD itself: whatever source makes the real `openscad` open a file next
to it (seen with strace), the scan refuses. Tricky spellings of include/use/import/surface, glued to
numbers, names, comments and strings, are run through both."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slicer.domain.scad_sandbox import file_references

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]

SECRETS = {
    "secret.scad": "secret_value = 1; module secret_module() {}\n",
    "secret.stl": "solid s\nendsolid s\n",
    "secret.dat": "1 2\n3 4\n",
    "secret.dxf": "0\nEOF\n",
}
CORPUS = [
    "include <secret.scad>",
    "use <secret.scad>",
    "x=1include <secret.scad>",
    "x=1.5include <secret.scad>",
    "x=.5include <secret.scad>",
    "x=1e5include <secret.scad>",
    "x=1e+5include <secret.scad>",
    "include>><secret.scad>",
    "myinclude <secret.scad>",
    "include\n<secret.scad>",
    "$include <secret.scad>",
    'x = "a" include <secret.scad>',
    "x = 1; /* c */include <secret.scad>",
    "x = 1;// c\ninclude <secret.scad>",
    'x = "\\"; include <secret.scad> //";',
    "x = 1; // c\rinclude <secret.scad>",
    'import("secret.stl");',
    'import ( "secret.stl" );',
    'import(file = "secret.stl");',
    'surface(file = "secret.dat");',
    'surface("secret.dat");',
    'linear_extrude(height = 1, file = "secret.dxf");',
    'x = "import(\\"secret.stl\\")";',
    '// import("secret.stl")',
    'f = "secret.stl"; import(f);',
    "fuse = 1; x = fuse <secret.scad>1;",
]


def openscad_opens_a_secret(directory: Path, source: str) -> bool:
    (directory / "probe.scad").write_text(source + "\ncube(1);\n")
    trace = directory / "trace.txt"
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=open,openat,stat,newfstatat,access", "-o", str(trace),
         "openscad", "-o", "probe.echo", "probe.scad"],
        cwd=directory, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    return "secret." in trace.read_text(errors="replace")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("oracle")
    for name, text in SECRETS.items():
        (directory / name).write_text(text)
    return directory


def test_the_oracle_sees_a_plain_include(scratch: Path) -> None:
    assert openscad_opens_a_secret(scratch, "include <secret.scad>")
    assert not openscad_opens_a_secret(scratch, "x = 1;")


@pytest.mark.parametrize("source", CORPUS)
def test_whatever_openscad_would_open_is_refused(scratch: Path, source: str) -> None:
    if openscad_opens_a_secret(scratch, source):
        assert file_references(source), f"OpenSCAD opens a file for {source!r} but the scan let it through"


PIECES = st.sampled_from(
    ["x=1", "x=1.5", ".5", "1e+5", "my", "$", '"a"', "/* c */", "// c\n", "\r", "\n", " ", ">", ";", "(", ","]
)
READS = st.sampled_from(
    ["include <secret.scad>", "use <secret.scad>", 'import("secret.stl")', 'surface(file = "secret.dat")']
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(PIECES, max_size=3), READS, st.lists(PIECES, max_size=2))
def test_glued_spellings(scratch: Path, before: list[str], read: str, after: list[str]) -> None:
    source = "".join(before) + read + "".join(after)
    if openscad_opens_a_secret(scratch, source):
        assert file_references(source), f"OpenSCAD opens a file for {source!r} but the scan let it through"
