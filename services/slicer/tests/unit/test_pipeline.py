"""The pipeline's flow over fake tools: what goes where, what comes back, which stage a refusal names."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest
from slicer_samples import NAME_TAG_SCAD, bambu_style_3mf, box_stl, prusa_gcode

from slicer.adapters.limited_process import ToolLimits
from slicer.adapters.profile_files import load_profile_files, shipped_profile_files
from slicer.adapters.prusa_slicer import SlicedMesh
from slicer.domain.build_volume import MeshInfo
from slicer.domain.errors import SliceError
from slicer.domain.job import SliceJob
from slicer.domain.profiles import ProfileLibrary, SelectedProfile
from slicer.service_layer.pipeline import SlicePipeline, output_filename


class FakeRenderer:
    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    async def render(
        self, source: bytes, parameters: Mapping[str, object], *, source_filename: str, work_dir: Path,
        limits: ToolLimits,
    ) -> bytes:  # fmt: skip
        self.calls.append({"source": source, "parameters": dict(parameters), "filename": source_filename})
        return box_stl(10, 10, 2)


class FakeSlicer:
    def __init__(self, gcode: bytes | None = None) -> None:
        self.calls: list[tuple[bytes, str, str]] = []
        self.gcode = gcode if gcode is not None else prusa_gcode(layers=10)

    async def slice(
        self, mesh: bytes, mesh_format: Literal["stl", "3mf"], profile: SelectedProfile, *, object_name: str,
        work_dir: Path, limits: ToolLimits,
    ) -> SlicedMesh:  # fmt: skip
        self.calls.append((mesh, mesh_format, profile.name))
        return SlicedMesh(self.gcode, MeshInfo(10, 10, 2, 12), (123.0, 123.0, 133.0, 133.0), "PrusaSlicer 2.5.0")


def job(source: bytes, kind: Literal["scad", "stl", "3mf"] = "scad", **changes: object) -> SliceJob:
    base = SliceJob(
        source_sha256=hashlib.sha256(source).hexdigest(),
        source_kind=kind,
        source_filename=f"Name Tag.{kind}",
        parameters={"label": "Zoë"} if kind == "scad" else {},
        printer_model="P1S",
        fabmatic=False,
        material_type="PETG",
        material_color="#112233",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def pipeline(tmp_path: Path, library: ProfileLibrary | None = None, slicer: FakeSlicer | None = None) -> SlicePipeline:
    return SlicePipeline(
        library or ProfileLibrary(shipped_profile_files()),
        FakeRenderer(),
        slicer or FakeSlicer(),
        tmp_path,
        ToolLimits(time_limit_seconds=5),
        {"openscad": "OpenSCAD version 2021.01", "slicer": "PrusaSlicer-2.5.0"},
    )


async def test_scad_is_rendered_with_the_values_then_sliced_and_packaged(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    made = await p.make_printable(job(NAME_TAG_SCAD), NAME_TAG_SCAD)
    renderer, slicer = p.openscad, p.slicer
    assert isinstance(renderer, FakeRenderer) and isinstance(slicer, FakeSlicer)
    assert renderer.calls == [{"source": NAME_TAG_SCAD, "parameters": {"label": "Zoë"}, "filename": "Name Tag.scad"}]
    assert slicer.calls == [(box_stl(10, 10, 2), "stl", "bambu-p1s/petg")]
    assert made.kind == "gcode.3mf" and made.filename == "Name_Tag.gcode.3mf"
    assert made.sha256 == hashlib.sha256(made.content).hexdigest()
    assert (made.profile, made.print_minutes, made.grams, made.layers, made.filament_mm) == (
        "bambu-p1s/petg",
        62.05,
        3.68,
        10,
        1234.56,
    )
    archive = zipfile.ZipFile(io.BytesIO(made.content))
    assert b'printer_model_id" value="C12"' in archive.read("Metadata/slice_info.config")
    assert b'color="#112233"' in archive.read("Metadata/slice_info.config")


async def test_meshes_go_straight_to_the_slicer_and_3mf_builds_are_flattened(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    stl = box_stl(20, 20, 5)
    await p.make_printable(job(stl, "stl"), stl)
    three_mf = bambu_style_3mf()
    await p.make_printable(job(three_mf, "3mf"), three_mf)
    assert isinstance(p.openscad, FakeRenderer) and not p.openscad.calls
    assert isinstance(p.slicer, FakeSlicer)
    assert [(c[1], c[2]) for c in p.slicer.calls] == [("stl", "bambu-p1s/petg"), ("stl", "bambu-p1s/petg")]
    assert p.slicer.calls[0][0] == stl
    flattened = p.slicer.calls[1][0]
    assert int.from_bytes(flattened[80:84], "little") == 4 and len(flattened) == 84 + 4 * 50


async def test_a_broken_3mf_is_a_slice_error(tmp_path: Path) -> None:
    with pytest.raises(SliceError, match="not a zip") as error:
        await pipeline(tmp_path).make_printable(job(b"PK-not-really", "3mf"), b"PK-not-really")
    assert error.value.stage == "slice"


async def test_source_must_match_its_sha256(tmp_path: Path) -> None:
    with pytest.raises(SliceError) as error:
        await pipeline(tmp_path).make_printable(job(NAME_TAG_SCAD), NAME_TAG_SCAD + b"// changed")
    assert error.value.stage == "fetch" and error.value.transient


async def test_no_profile_fails_before_any_tool(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    with pytest.raises(SliceError) as error:
        await p.make_printable(job(NAME_TAG_SCAD, printer_model="Ender 5"), NAME_TAG_SCAD)
    assert error.value.stage == "profile" and not error.value.transient
    assert isinstance(p.openscad, FakeRenderer) and not p.openscad.calls
    assert p.profile_for(job(NAME_TAG_SCAD, fabmatic=True)) == "bambu-p1s/petg+fabmatic"
    with pytest.raises(SliceError):
        p.cache_key(job(NAME_TAG_SCAD, material_type="unobtainium"))


async def test_gcode_without_estimates_is_a_slice_error(tmp_path: Path) -> None:
    p = pipeline(tmp_path, slicer=FakeSlicer(gcode=b"G28\n;LAYER_CHANGE\nG1 Z0.2\n"))
    with pytest.raises(SliceError, match="without its estimates") as error:
        await p.make_printable(job(NAME_TAG_SCAD), NAME_TAG_SCAD)
    assert error.value.stage == "slice"


async def test_a_non_bambu_printer_gets_plain_gcode(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles" / "printer"
    profiles.mkdir(parents=True)
    (profiles / "klipper-trident.ini").write_text(
        "; printfarm.product_name = Voron Trident\n; printfarm.models = Trident\n; printfarm.output = gcode\n"
        "; printfarm.max_nozzle_temperature = 300\n; printfarm.max_bed_temperature = 120\n"
        "bed_shape = 0x0,300x0,300x300,0x300\nmax_print_height = 280\nnozzle_diameter = 0.4\n"
    )
    library = ProfileLibrary(load_profile_files(tmp_path / "profiles"))
    made = await pipeline(tmp_path, library).make_printable(job(NAME_TAG_SCAD, printer_model="trident"), NAME_TAG_SCAD)
    assert made.kind == "gcode" and made.filename == "Name_Tag.gcode"
    assert made.content == prusa_gcode(layers=10)
    assert made.profile == "klipper-trident/petg"


@pytest.mark.parametrize(
    ("source", "kind", "expected"),
    [
        ("Name Tag.scad", "gcode.3mf", "Name_Tag.gcode.3mf"),
        ("../../etc/passwd", "gcode", "passwd.gcode"),
        ("C:\\parts\\bracket.STL", "gcode.3mf", "bracket.gcode.3mf"),
        ("...", "gcode", "part.gcode"),
        ("x" * 300 + ".3mf", "gcode", "x" * 64 + ".gcode"),
    ],
)
def test_output_filenames(source: str, kind: str, expected: str) -> None:
    assert output_filename(source, kind) == expected


def test_binary_stl_that_looks_like_text_gets_a_high_byte() -> None:
    from slicer.adapters.prusa_slicer import readable_stl

    plain = box_stl(12, 12, 3)  # zero normals and small round coordinates: all bytes below 128
    assert all(b <= 127 for b in plain[80:208])
    fixed = readable_stl(plain)
    assert len(fixed) == len(plain) and any(b > 127 for b in fixed[80:208])
    assert fixed[:132] == plain[:132] and fixed[134:] == plain[134:]  # only the first facet's attribute bytes
    assert readable_stl(box_stl(20, 15, 4)) == box_stl(20, 15, 4)
    assert readable_stl(b"solid x\nendsolid x\n") == b"solid x\nendsolid x\n"
