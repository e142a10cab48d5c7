from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skus.domain.files import FileKind, FileRejected, inspect_file
from skus.domain.files import stl as stl_module

Triangle = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

CUBE_CORNER: list[Triangle] = [
    ((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 20.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 20.0, 0.0), (-5.0, 0.0, 30.5)),
]


def binary_stl(triangles: Sequence[Triangle], header: bytes = b"binary stl") -> bytes:
    out = bytearray(header.ljust(80, b" ")[:80])
    out += struct.pack("<I", len(triangles))
    for a, b, c in triangles:
        out += struct.pack("<12fH", 0.0, 0.0, 1.0, *a, *b, *c, 0)
    return bytes(out)


def ascii_stl(triangles: Sequence[Triangle], name: str = "part", upper: bool = False) -> str:
    lines = [f"solid {name}"]
    for tri in triangles:
        lines += ["  facet normal 0 0 1", "    outer loop"]
        lines += [f"      vertex {x!r} {y!r} {z!r}" for x, y, z in tri]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    text = "\n".join(lines) + "\n"
    return text.upper() if upper else text


def stream(data: bytes | str) -> io.BytesIO:
    """The readers take a binary stream; an upload arrives as bytes."""
    return io.BytesIO(data.encode() if isinstance(data, str) else data)


def rejected(source: io.BytesIO) -> str:
    with pytest.raises(FileRejected) as caught:
        inspect_file(source, "part.stl")
    assert caught.value.field == "file"
    return caught.value.reason


def test_binary_stl_counts_triangles_and_bounds() -> None:
    info = inspect_file(stream(binary_stl(CUBE_CORNER)), "Part.STL")
    assert info.kind is FileKind.STL
    assert info.triangle_count == 2
    assert info.bounding_box is not None
    assert info.bounding_box.min_xyz == (-5.0, 0.0, 0.0)
    assert info.bounding_box.max_xyz == (10.0, 20.0, 30.5)
    assert info.bounding_box.size == (15.0, 20.0, 30.5)
    assert info.warnings == ()


def test_binary_stl_whose_header_starts_with_solid_is_read_as_binary() -> None:
    info = inspect_file(stream(binary_stl(CUBE_CORNER, header=b"solid exported by CAD")), "a.stl")
    assert info.triangle_count == 2


def test_truncated_binary_stl_with_solid_header_is_reported_as_truncated() -> None:
    data = binary_stl(CUBE_CORNER, header=b"solid exported by CAD")[:-10]
    assert "truncated" in rejected(stream(data))


def test_ascii_stl() -> None:
    info = inspect_file(stream(ascii_stl(CUBE_CORNER)), "a.stl")
    assert info.triangle_count == 2
    assert info.bounding_box is not None
    assert info.bounding_box.min_xyz == (-5.0, 0.0, 0.0)
    assert info.bounding_box.max_xyz == (10.0, 20.0, 30.5)


def test_ascii_stl_in_upper_case_with_crlf_and_two_solids() -> None:
    text = (ascii_stl(CUBE_CORNER[:1], upper=True) + ascii_stl(CUBE_CORNER[1:])).replace("\n", "\r\n")
    info = inspect_file(stream(text), "a.stl")
    assert info.triangle_count == 2


def test_ascii_stl_without_endsolid_warns() -> None:
    text = ascii_stl(CUBE_CORNER).replace("endsolid part\n", "")
    info = inspect_file(stream(text), "a.stl")
    assert info.triangle_count == 2
    assert any("endsolid" in w for w in info.warnings)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("solid x\n  facet normal 0 0 1\n    outer loop\n      vertex 0 0 0\n", "truncated"),
        ("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nendloop\nendfacet\n", "2 vertices"),
        ("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 zero 0\n", "not a number"),
        (
            "solid x\nfacet normal 0 0 1\nouter loop\nvertex nan 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
            "endloop\nendfacet\nendsolid x\n",
            "finite",
        ),
        ("solid x\nhello world\n", "unexpected 'hello' on line 2"),
        ("solid x\nvertex 0 0 0\n", "outside"),
        ("solid x\nendsolid x\n", "no triangles"),
    ],
)
def test_broken_ascii_stl_is_rejected(text: str, why: str) -> None:
    reason = rejected(stream(text))
    assert reason.startswith("not a valid STL: ")
    assert why in reason


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x01\x02garbage", "too short"),
        (b"\x00" * 80 + struct.pack("<I", 0), "no triangles"),
        (binary_stl(CUBE_CORNER)[:-1], "truncated"),
        (b"\x00" * 80 + struct.pack("<I", 10**9) + b"\x00" * 100, "truncated"),
    ],
)
def test_broken_binary_stl_is_rejected(data: bytes, why: str) -> None:
    reason = rejected(stream(data))
    assert reason.startswith("not a valid STL: ")
    assert why in reason


def test_binary_stl_with_nan_is_rejected() -> None:
    triangles: list[Triangle] = [((math.nan, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))]
    assert "finite" in rejected(stream(binary_stl(triangles)))


def test_trailing_bytes_after_binary_triangles_are_a_warning() -> None:
    info = inspect_file(stream(binary_stl(CUBE_CORNER) + b"\x00" * 7), "a.stl")
    assert info.triangle_count == 2
    assert info.warnings == ("7 bytes after the last triangle ignored",)


def test_binary_stl_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stl_module, "_CHUNK_TRIANGLES", 3)
    triangles: list[Triangle] = [
        ((float(i), -float(i), 0.5 * i), (float(i) + 1, 0.0, 0.0), (0.0, 0.0, -float(i))) for i in range(10)
    ]
    info = inspect_file(stream(binary_stl(triangles)), "a.stl")
    assert info.triangle_count == 10
    assert info.bounding_box is not None
    assert info.bounding_box.min_xyz == (0.0, -9.0, -9.0)
    assert info.bounding_box.max_xyz == (10.0, 0.0, 4.5)


def as_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


coordinate = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)
point = st.tuples(coordinate, coordinate, coordinate)
triangles_strategy = st.lists(st.tuples(point, point, point), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(triangles=triangles_strategy, ascii_format=st.booleans())
def test_bounds_match_a_plain_computation(triangles: list[Triangle], ascii_format: bool) -> None:
    data: bytes | str = ascii_stl(triangles) if ascii_format else binary_stl(triangles)
    info = inspect_file(stream(data), "p.stl")
    vertices = [v for tri in triangles for v in tri]
    assert info.triangle_count == len(triangles)
    assert info.bounding_box is not None
    for axis in range(3):
        assert info.bounding_box.min_xyz[axis] == as_float32(min(v[axis] for v in vertices))
        assert info.bounding_box.max_xyz[axis] == as_float32(max(v[axis] for v in vertices))


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600), solid_prefix=st.booleans())
def test_arbitrary_bytes_never_raise_anything_but_file_rejected(data: bytes, solid_prefix: bool) -> None:
    try:
        info = inspect_file(stream((b"solid " if solid_prefix else b"") + data), "p.stl")
    except FileRejected as exc:
        assert exc.reason.startswith("not a valid STL")
    else:
        assert info.triangle_count is not None and info.triangle_count > 0
