from __future__ import annotations

import io
import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skus.domain.files import Filament, FileKind, FileRejected, Plate, inspect_file
from skus.domain.files import threemf as threemf_module

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">
 <resources><object id="1" type="model"><mesh>
  <vertices><vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>
  <vertex x="0" y="0" z="1"/></vertices>
  <triangles><triangle v1="0" v2="1" v3="2"/><triangle v1="0" v2="1" v3="3"/>
  <triangle v1="0" v2="2" v3="3"/><triangle v1="1" v2="2" v3="3"/></triangles>
 </mesh></object></resources>
 <build><item objectid="1"/></build>
</model>
"""

SLICE_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<config>
  <header><header_item key="X-BBL-Client-Type" value="slicer"/></header>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="prediction" value="3600"/>
    <metadata key="weight" value="10.50"/>
    <object identify_id="77" name="Cube" skipped="false"/>
    <filament id="1" tray_info_idx="GFA00" type="PLA" color="#FFFFFFFF" used_m="3.5" used_g="10.50"/>
  </plate>
  <plate>
    <metadata key="index" value="2"/>
    <metadata key="prediction" value="1800"/>
    <metadata key="weight" value="6.00"/>
    <filament id="1" type="PLA" color="#FFFFFF" used_m="1.5" used_g="4.00"/>
    <filament id="2" type="PETG" color="#000000" used_m="0.5" used_g="2.00"/>
  </plate>
</config>
"""

PLATE_GCODE = """; HEADER_BLOCK_START
; model printing time: 20m; total estimated time: 25m 30s
; total filament weight [g] : 3.25
; HEADER_BLOCK_END
; filament_type = PETG
; filament_colour = #123456
G28
G1 X1 Y1 E1
"""

PROJECT_SETTINGS = json.dumps(
    {"filament_type": ["PLA", "ABS"], "filament_colour": ["#FF0000", "#00ff00"], "layer_height": "0.2"}
)

MODEL_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<config>
  <object id="2"><metadata key="name" value="Cube"/></object>
  <plate><metadata key="plater_id" value="1"/><metadata key="plater_name" value=""/></plate>
  <plate><metadata key="plater_id" value="2"/></plate>
</config>
"""


def make_zip(members: dict[str, str | bytes]) -> io.BytesIO:
    """A 3MF archive in memory: the readers take a binary stream."""
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    source.seek(0)
    return source


def rejected(source: io.BytesIO, filename: str) -> str:
    with pytest.raises(FileRejected) as caught:
        inspect_file(source, filename)
    assert caught.value.field == "file"
    return caught.value.reason


def test_bambu_gcode_3mf_reads_slice_info_per_plate() -> None:
    source = make_zip(
        {
            "3D/3dmodel.model": MODEL,
            "Metadata/plate_1.gcode": PLATE_GCODE,
            "Metadata/plate_2.gcode": PLATE_GCODE,
            "Metadata/slice_info.config": SLICE_INFO,
            "Metadata/project_settings.config": PROJECT_SETTINGS,
        }
    )
    info = inspect_file(source, "Part.GCODE.3MF")
    assert info.kind is FileKind.GCODE_3MF
    assert info.plates == (
        Plate(1, "Metadata/plate_1.gcode", 60.0, 10.5, (Filament("PLA", "#FFFFFF", 10.5),)),
        Plate(
            2,
            "Metadata/plate_2.gcode",
            30.0,
            6.0,
            (Filament("PLA", "#FFFFFF", 4.0), Filament("PETG", "#000000", 2.0)),
        ),
    )
    assert info.print_minutes == 90.0
    assert info.grams == 16.5
    assert info.filaments == (Filament("PLA", "#FFFFFF", 14.5), Filament("PETG", "#000000", 2.0))
    assert info.triangle_count == 4
    assert info.warnings == ("2 sliced plates: time and weight are totals over all of them",)


def test_plate_gcode_comments_fill_in_without_slice_info() -> None:
    source = make_zip({"Metadata/plate_3.gcode": PLATE_GCODE})
    info = inspect_file(source, "p.gcode.3mf")
    assert info.plates == (Plate(3, "Metadata/plate_3.gcode", 25.5, 3.25, (Filament("PETG", "#123456", None),)),)
    assert info.print_minutes == 25.5
    assert info.grams == 3.25
    assert info.triangle_count is None


def test_slice_info_with_a_dtd_is_refused() -> None:
    """No slicer writes a DTD into its configs; one that does is an entity-expansion attempt."""
    bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><config>&lol;</config>'
    source = make_zip({"Metadata/plate_1.gcode": PLATE_GCODE, "Metadata/slice_info.config": bomb})
    with pytest.raises(FileRejected, match="DTD or entities"):
        inspect_file(source, "p.gcode.3mf")


def test_malformed_slice_info_is_a_warning() -> None:
    source = make_zip({"Metadata/plate_1.gcode": PLATE_GCODE, "Metadata/slice_info.config": "<config><plate>"})
    info = inspect_file(source, "p.gcode.3mf")
    assert info.print_minutes == 25.5
    assert any("not well-formed" in w for w in info.warnings)


def test_unsliced_project_lists_plates_and_configured_filaments() -> None:
    source = make_zip(
        {
            "3D/3dmodel.model": MODEL,
            "Metadata/model_settings.config": MODEL_SETTINGS,
            "Metadata/project_settings.config": PROJECT_SETTINGS,
        },
    )
    info = inspect_file(source, "part.3mf")
    assert info.kind is FileKind.THREEMF
    assert info.plates == (Plate(1), Plate(2))
    assert info.filaments == (Filament("PLA", "#FF0000"), Filament("ABS", "#00FF00"))
    assert info.print_minutes is None and info.grams is None
    assert info.triangle_count == 4


def test_prusaslicer_project_config_gives_filaments() -> None:
    config = "; filament_type = PETG\n; filament_colour = #FF8000\n; layer_height = 0.2\n"
    source = make_zip({"3D/3dmodel.model": MODEL, "Metadata/Slic3r_PE.config": config})
    info = inspect_file(source, "part.3mf")
    assert info.filaments == (Filament("PETG", "#FF8000"),)
    assert info.plates == ()


def test_plain_3mf_mesh() -> None:
    info = inspect_file(make_zip({"3D/3dmodel.model": MODEL}), "part.3mf")
    assert info.triangle_count == 4
    assert info.filaments == ()
    assert info.warnings == ()


def test_gcode_3mf_without_plate_gcode_is_rejected() -> None:
    source = make_zip({"3D/3dmodel.model": MODEL, "Metadata/slice_info.config": SLICE_INFO})
    assert "no plate G-code" in rejected(source, "part.gcode.3mf")


def test_zip_without_model_or_gcode_is_rejected() -> None:
    source = make_zip({"readme.txt": "hello"})
    assert rejected(source, "part.3mf") == "not a valid 3MF archive: it contains neither a 3D model nor G-code"


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 broken", b"solid cube\n", b"\x00" * 100])
def test_not_a_zip_is_rejected(data: bytes) -> None:
    assert rejected(io.BytesIO(data), "part.3mf") == "not a valid 3MF archive"


def test_damaged_member_is_rejected() -> None:
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("3D/3dmodel.model", MODEL)
    data = bytearray(written.getvalue())
    index = data.find(b"<triangles>")
    data[index + 1] ^= 0xFF
    assert rejected(io.BytesIO(bytes(data)), "part.3mf").startswith("not a valid 3MF archive: a member is damaged")


@settings(max_examples=60, deadline=None)
@given(
    triangles=st.integers(min_value=0, max_value=60),
    chunk=st.integers(min_value=1, max_value=64),
    prefixed=st.booleans(),
)
def test_triangle_count_is_independent_of_chunking(triangles: int, chunk: int, prefixed: bool) -> None:
    tag = "m:triangle" if prefixed else "triangle"
    body = "<triangles>" + "".join(f'<{tag} v1="{i}" v2="1" v3="2"/>\n' for i in range(triangles)) + "</triangles>"
    original = threemf_module._CHUNK
    threemf_module._CHUNK = chunk
    try:
        counted = threemf_module._count_in_stream(io.BytesIO(body.encode()))
    finally:
        threemf_module._CHUNK = original
    assert counted == triangles


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_file_rejected(data: bytes) -> None:
    try:
        inspect_file(io.BytesIO(b"PK\x03\x04" + data), "p.3mf")
    except FileRejected as exc:
        assert exc.reason.startswith("not a valid")


@settings(max_examples=60, deadline=None)
@given(slice_info=st.text(max_size=300), settings_json=st.text(max_size=100))
def test_arbitrary_configs_inside_a_valid_zip_never_crash(slice_info: str, settings_json: str) -> None:
    source = make_zip(
        {
            "Metadata/plate_1.gcode": PLATE_GCODE,
            "Metadata/slice_info.config": "<config><plate>" + slice_info,
            "Metadata/project_settings.config": settings_json,
        },
    )
    info = inspect_file(source, "p.gcode.3mf")
    assert [p.number for p in info.plates][:1] == [1]
