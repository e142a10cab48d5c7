"""3MF builds flattened into one STL: components in other model files, transforms, units, limits."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicer.domain.errors import SliceError
from slicer.domain.threemf_mesh import IDENTITY, apply, compose, parse_transform, threemf_to_stl

NS = (
    'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02" '
    'xmlns:p="http://schemas.microsoft.com/3dmanufacturing/production/2015/06"'
)
TETRA = (
    "<mesh><vertices>"
    '<vertex x="0" y="0" z="0"/><vertex x="10" y="0" z="0"/><vertex x="0" y="10" z="0"/><vertex x="0" y="0" z="10"/>'
    "</vertices><triangles>"
    '<triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/>'
    '<triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/>'
    "</triangles></mesh>"
)


def archive(files: dict[str, str], rels_target: str | None = "/3D/3dmodel.model") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        if rels_target:
            z.writestr(
                "_rels/.rels",
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Target="{rels_target}" Id="rel-1" '
                'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>',
            )
        for name, text in files.items():
            z.writestr(name, text)
    return buffer.getvalue()


def model(body: str, unit: str = "millimeter") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><model unit="{unit}" {NS}>{body}</model>'


def triangles(stl: bytes) -> list[tuple[tuple[float, ...], ...]]:
    (count,) = struct.unpack_from("<I", stl, 80)
    assert len(stl) == 84 + 50 * count
    out = []
    for i in range(count):
        values = struct.unpack_from("<12f", stl, 84 + 50 * i)
        out.append((values[3:6], values[6:9], values[9:12]))
    return out


def bounds(stl: bytes) -> tuple[list[float], list[float]]:
    points = [p for tri in triangles(stl) for p in tri]
    return [min(p[i] for p in points) for i in range(3)], [max(p[i] for p in points) for i in range(3)]


def test_a_plain_mesh_with_a_build_transform() -> None:
    data = archive({"3D/3dmodel.model": model(
        f'<resources><object id="1" type="model">{TETRA}</object></resources>'
        '<build><item objectid="1" transform="1 0 0 0 1 0 0 0 1 100 50 0"/></build>'
    )})  # fmt: skip
    stl = threemf_to_stl(data)
    assert len(triangles(stl)) == 4
    assert bounds(stl) == ([100, 50, 0], [110, 60, 10])


def test_bambu_style_components_in_another_file_and_units() -> None:
    data = archive({
        "3D/3dmodel.model": model(
            '<resources><object id="2" type="model"><components>'
            '<component p:path="/3D/Objects/object_1.model" objectid="1" transform="2 0 0 0 2 0 0 0 2 0 0 0"/>'
            '<component p:path="/3D/Objects/object_1.model" objectid="1" transform="1 0 0 0 1 0 0 0 1 50 0 0"/>'
            "</components></object></resources>"
            '<build><item objectid="2" transform="1 0 0 0 1 0 0 0 1 10 10 0"/>'
            '<item objectid="2" printable="0" transform="1 0 0 0 1 0 0 0 1 900 900 0"/></build>'
        ),
        "3D/Objects/object_1.model": model(
            f'<resources><object id="1" type="model">{TETRA}</object></resources><build/>', unit="centimeter"
        ),
    })  # fmt: skip
    stl = threemf_to_stl(data)
    assert len(triangles(stl)) == 8  # two components, the non-printable item left out
    low, high = bounds(stl)
    assert low == [10, 10, 0]
    assert high == [10 + 200, 10 + 200, 200]  # the 10 cm tetrahedron doubled; the other one shifted by 50 mm
    shifted = [tri for tri in triangles(stl) if min(p[0] for p in tri) >= 60 - 1e-6]
    assert len(shifted) == 4 and max(p[0] for tri in shifted for p in tri) == 160


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zip"),
        (archive({}), "not in the archive"),
        (archive({"3D/3dmodel.model": "<model"}), "not well-formed"),
        (archive({"3D/3dmodel.model": model("<resources/><build/>")}), "no printable mesh"),
        (archive({"3D/3dmodel.model": model('<resources/><build><item objectid="7"/></build>')}), "object '7'"),
        (
            archive({"3D/3dmodel.model": model(
                '<resources><object id="1"><components><component objectid="1"/></components></object></resources>'
                '<build><item objectid="1"/></build>'
            )}),
            "nest deeper",
        ),
        (
            archive({"3D/3dmodel.model": model(
                '<resources><object id="1"><mesh><vertices><vertex x="0" y="0" z="0"/></vertices>'
                '<triangles><triangle v1="0" v2="1" v3="2"/></triangles></mesh></object></resources>'
                '<build><item objectid="1"/></build>'
            )}),
            "vertex it does not have",
        ),
        (archive({"3D/3dmodel.model": model("<resources/>", unit="parsec")}), "unknown unit"),
        (
            archive({"3D/3dmodel.model": model(
                f'<resources><object id="1">{TETRA}</object></resources>'
                '<build><item objectid="1" transform="1 2"/></build>'
            )}),
            "is not 12",
        ),
    ],
)  # fmt: skip
def test_unreadable_3mfs_say_why(data: bytes, message: str) -> None:
    with pytest.raises(SliceError, match=message) as error:
        threemf_to_stl(data)
    assert error.value.stage == "slice"


def test_the_root_model_follows_the_package_relationship() -> None:
    data = archive(
        {
            "3D/part.model": model(
                f'<resources><object id="1">{TETRA}</object></resources><build><item objectid="1"/></build>'
            )
        },
        rels_target="/3D/part.model",
    )
    assert len(triangles(threemf_to_stl(data))) == 4


MATRICES = st.tuples(*[st.floats(-10, 10, allow_nan=False) for _ in range(12)])
POINTS = st.tuples(*[st.floats(-100, 100, allow_nan=False) for _ in range(3)])


@given(MATRICES, MATRICES, POINTS)
def test_compose_applies_first_then_then(
    first: tuple[float, ...], then: tuple[float, ...], p: tuple[float, ...]
) -> None:
    composed = apply(compose(first, then), p)  # type: ignore[arg-type]
    stepwise = apply(then, apply(first, p))  # type: ignore[arg-type]
    assert composed == pytest.approx(stepwise, rel=1e-9, abs=1e-6)


def test_identity() -> None:
    assert parse_transform(None) == IDENTITY == parse_transform("  ")
    assert compose(IDENTITY, IDENTITY) == IDENTITY
