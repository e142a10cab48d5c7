from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from skus.adapters.openscad import openscad_literal, render_check

CUBE = "size = 5; // [1:10]\ncube(size);\n"


def fake_openscad(directory: Path, body: str) -> Path:
    """A stand-in `openscad` on PATH; `$2` is the output path after `-o`."""
    directory.mkdir(exist_ok=True)
    script = directory / "openscad"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{directory / 'args.txt'}'\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def exists(path: str) -> bool:
    return Path(path).exists()


@pytest.fixture
def scad_file(tmp_path: Path) -> Path:
    path = tmp_path / "part.scad"
    path.write_text(CUBE)
    return path


async def test_not_installed_is_reported_as_not_rendered(
    tmp_path: Path, scad_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = await render_check(scad_file)
    assert (result.rendered, result.ok) == (False, True)
    assert "not rendered" in result.message


async def test_successful_render_passes_output_path_defines_and_file(
    tmp_path: Path, scad_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    fake_openscad(bin_dir, 'echo "solid ok" > "$2"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = await render_check(scad_file, values={"size": 7, "label": 'a "b"', "flag": True})
    assert (result.rendered, result.ok, result.message) == (True, True, "rendered")
    args = (bin_dir / "args.txt").read_text().splitlines()
    assert args[0] == "-o" and args[1].endswith(".stl")
    assert args[2:8] == ["-D", "size=7", "-D", 'label="a \\"b\\""', "-D", "flag=true"]
    assert args[-1] == str(scad_file)
    assert not exists(args[1]), "the temporary output is removed"


async def test_failed_render_returns_the_error_lines(
    tmp_path: Path, scad_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    fake_openscad(
        bin_dir,
        'echo "Parsing design (AST generation)..." >&2\n'
        'echo "ERROR: Parser error in file part.scad, line 2: syntax error" >&2\nexit 1\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = await render_check(scad_file)
    assert (result.rendered, result.ok) == (True, False)
    assert result.message == "render failed (exit 1): ERROR: Parser error in file part.scad, line 2: syntax error"


async def test_render_without_geometry_fails(tmp_path: Path, scad_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    fake_openscad(bin_dir, 'echo "WARNING: No top level geometry to render" >&2\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = await render_check(scad_file)
    assert (result.rendered, result.ok, result.message) == (True, False, "render produced no geometry")


async def test_render_that_hangs_is_killed_at_the_timeout(
    tmp_path: Path, scad_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    fake_openscad(bin_dir, "sleep 30\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    result = await render_check(scad_file, timeout=0.5)
    assert time.monotonic() - started < 10
    assert (result.rendered, result.ok) == (True, False)
    assert "did not finish within 0.5 s" in result.message


@pytest.mark.skipif(shutil.which("openscad") is None, reason="OpenSCAD is not installed")
async def test_real_openscad_renders_a_cube_and_rejects_a_syntax_error(tmp_path: Path, scad_file: Path) -> None:
    assert (await render_check(scad_file, timeout=120)).ok
    broken = tmp_path / "broken.scad"
    broken.write_text("cube(;\n")
    result = await render_check(broken, timeout=120)
    assert (result.rendered, result.ok) == (True, False)


@pytest.mark.parametrize(
    ("value", "literal"),
    [(True, "true"), (False, "false"), (3, "3"), (2.5, "2.5"), ("x", '"x"'), ('a\\"\n', '"a\\\\\\"\\n"')],
)
def test_openscad_literal(value: bool | int | float | str, literal: str) -> None:
    assert openscad_literal(value) == literal


async def test_bad_define_name_or_value_is_refused(
    scad_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    fake_openscad(bin_dir, 'echo "solid ok" > "$2"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ValueError, match="not an OpenSCAD variable name"):
        await render_check(scad_file, values={"a; b": 1})
    with pytest.raises(ValueError, match="cannot be passed"):
        openscad_literal(float("inf"))
