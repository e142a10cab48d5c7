"""OpenSCAD parts through the real binaries: values change the part, errors are OpenSCAD's own words,
file reads are refused, and hostile text values reach OpenSCAD as exactly that text."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slicer_samples import NAME_TAG_SCAD

from slicer.adapters.limited_process import ToolLimits
from slicer.adapters.openscad import OpenScad
from slicer.domain.errors import SliceError, SourceRefused
from slicer.domain.job import SliceJob
from slicer.service_layer.pipeline import SlicePipeline

pytestmark = pytest.mark.integration


def scad_job(source: bytes, **values: object) -> SliceJob:
    return SliceJob(
        source_sha256=hashlib.sha256(source).hexdigest(),
        source_kind="scad",
        source_filename="name-tag.scad",
        parameters=values,
        printer_model="X1C",
        fabmatic=False,
        material_type="PLA",
        material_color="#FFFFFF",
    )


async def test_two_names_give_two_files_and_the_same_name_the_same_file(pipeline: SlicePipeline) -> None:
    ann = await pipeline.make_printable(scad_job(NAME_TAG_SCAD, label="Ann"), NAME_TAG_SCAD)
    bob = await pipeline.make_printable(scad_job(NAME_TAG_SCAD, label="Bob"), NAME_TAG_SCAD)
    ann_again = await pipeline.make_printable(scad_job(NAME_TAG_SCAD, label="Ann"), NAME_TAG_SCAD)
    assert ann.sha256 != bob.sha256
    assert ann_again.sha256 == ann.sha256, "the same inputs must give the same bytes"
    assert pipeline.cache_key(scad_job(NAME_TAG_SCAD, label="Ann")) != pipeline.cache_key(
        scad_job(NAME_TAG_SCAD, label="Bob")
    )
    for made in (ann, bob):
        assert made.kind == "gcode.3mf" and made.filename == "name-tag.gcode.3mf"
        assert made.profile == "bambu-x1c/pla"
        assert 0.5 < made.print_minutes < 30 and 0.05 < made.grams < 5
        assert made.layers is not None and 5 <= made.layers <= 15  # 2.2 mm at 0.2 mm layers
        assert made.filament_mm is not None and made.filament_mm > 10
        archive = zipfile.ZipFile(io.BytesIO(made.content))
        plate = archive.read("Metadata/plate_1.gcode")
        assert f"; total layer number: {made.layers}\n".encode() in plate
        assert archive.read("Metadata/plate_1.gcode.md5").decode() == hashlib.md5(plate).hexdigest().upper()
        assert b"M190 S60" in plate and b"M109 S220" in plate  # PLA's temperatures filled into the start G-code


async def test_a_syntax_error_fails_with_openscads_message(pipeline: SlicePipeline) -> None:
    source = b"cube(5);\nsphere(;\n"
    with pytest.raises(SliceError) as error:
        await pipeline.make_printable(scad_job(source), source)
    assert error.value.stage == "render" and not error.value.transient
    assert "syntax error" in error.value.message and "line 2" in error.value.message
    assert "name-tag.scad" in error.value.message
    assert "/tmp" not in error.value.message and str(pipeline.work_dir) not in error.value.message


async def test_a_failed_assertion_is_reported_in_its_own_words(pipeline: SlicePipeline) -> None:
    source = b'label = "Ann";\nassert(len(label) <= 10, "the name is too long for the tag");\ncube(1);\n'
    await pipeline.make_printable(scad_job(source, label="Short"), source)
    with pytest.raises(SliceError, match="the name is too long for the tag") as error:
        await pipeline.make_printable(scad_job(source, label="Maximiliane Antonia"), source)
    assert error.value.stage == "render" and "line 2" in error.value.message


async def test_an_empty_part_is_a_render_error(pipeline: SlicePipeline) -> None:
    source = b"show = false;\nif (show) cube(5);\n"
    with pytest.raises(SliceError, match="renders to nothing") as error:
        await pipeline.make_printable(scad_job(source), source)
    assert error.value.stage == "render"


@pytest.mark.parametrize(
    "source",
    [
        b"include </etc/passwd>\ncube(1);\n",
        b"use <../../secret.scad>\ncube(1);\n",
        b'import("/etc/hostname");\n',
        b'linear_extrude(1) import("/usr/share/openscad/examples/Basics/text_on_cube.scad");\n',
        b'surface(file = "/etc/hostname");\n',
    ],
)
async def test_file_reads_are_refused_before_openscad_runs(pipeline: SlicePipeline, source: bytes) -> None:
    with pytest.raises(SourceRefused, match="not allowed") as error:
        await pipeline.make_printable(scad_job(source), source)
    assert error.value.stage == "render"
    assert list(pipeline.work_dir.glob("render-*")) == []


async def test_a_render_past_its_time_limit_is_killed(tmp_path: Path) -> None:
    heavy = b"$fn = 400; minkowski() { sphere(10); sphere(10); }\n"
    with pytest.raises(SliceError, match="did not finish within 1 s") as error:
        await OpenScad().render(
            heavy, {}, source_filename="heavy.scad", work_dir=tmp_path, limits=ToolLimits(time_limit_seconds=1)
        )
    assert error.value.stage == "render" and error.value.transient  # a busy machine may finish it next time
    assert not scratch_left(tmp_path)


def scratch_left(directory: Path) -> list[Path]:
    return list(directory.glob("render-*"))


ECHO_SCAD = b'value = "";\necho(codes = [for (c = value) ord(c)]);\ncube(1);\n'


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.sampled_from(['"; import("/etc/passwd"); x="', 'a\\b"c', "line\nbreak", "$(id) `id`", "include </etc/x>"]),
        st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FFF, exclude_categories=["Cs"]), max_size=12),
    )
)
async def test_hostile_text_reaches_openscad_as_exactly_that_text(tmp_path: Path, value: str) -> None:
    """OpenSCAD echoes the code points of the value it got: they are the order line's, one for one."""
    echo_file = await _echo(tmp_path, value)
    assert echo_file == [ord(c) for c in value]


async def _echo(tmp_path: Path, value: str) -> list[int]:
    from slicer.adapters.limited_process import run_limited
    from slicer.adapters.openscad import make_scratch, remove_scratch, tool_environment
    from slicer.domain.parameters import define_arguments

    directory = make_scratch(tmp_path, "echo-", {"part.scad": ECHO_SCAD})
    try:
        argv = ["openscad", "-o", "out.echo", *define_arguments({"value": value}), "part.scad"]
        limits = ToolLimits(time_limit_seconds=60)
        result = await run_limited(argv, cwd=directory, limits=limits, env=tool_environment(directory))
        assert result.returncode == 0, result.stderr
        text = (directory / "out.echo").read_text()
    finally:
        await remove_scratch(directory)
    line = next(line for line in text.splitlines() if line.startswith("ECHO: codes = "))
    return list(json.loads(line.removeprefix("ECHO: codes = ")))


async def test_bad_parameter_values_are_refused_naming_the_parameter(pipeline: SlicePipeline) -> None:
    for values in ({"label": float("nan")}, {"label": "a\x00b"}, {"bad name": "x"}, {"label": [1, 2]}):
        job = dataclasses.replace(scad_job(NAME_TAG_SCAD), parameters=values)
        with pytest.raises(SourceRefused) as error:
            await pipeline.make_printable(job, NAME_TAG_SCAD)
        assert error.value.field is not None and error.value.field.startswith("parameters")
