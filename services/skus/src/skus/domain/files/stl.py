"""STL reading: triangle count and bounding box, streamed so a large file never sits in memory."""

from __future__ import annotations

import math
import struct
import sys
from array import array

from .budget import ByteSource, InspectionBudget, InspectionLimits, size_of
from .errors import FileRejected
from .model import BoundingBox, FileInfo, FileKind

_HEADER_END = 84
_RECORD = 50
_CHUNK_TRIANGLES = 65_536
_SNIFF = 1024
_MAX_ASCII_LINE = 4096
_ASCII_CHUNK = 1 << 20
# Bytes that never appear in a text file; binary floats nearly always contain some.
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\v")
_NEEDS_BYTESWAP = sys.byteorder != "little"
_TOP_EXPONENT_BYTES = b"\x7f\xff"


def _invalid(why: str) -> FileRejected:
    return FileRejected("file", f"not a valid STL: {why}")


class _Extent:
    """Running min/max per axis, fed whole arrays so the loop over values stays in C."""

    def __init__(self) -> None:
        self.low = [math.inf, math.inf, math.inf]
        self.high = [-math.inf, -math.inf, -math.inf]

    def feed(self, axis: int, values: array[float] | list[float], maybe_non_finite: bool = True) -> None:
        if not values:
            return
        if maybe_non_finite and not math.isfinite(sum(values)):
            raise _invalid("a vertex coordinate is not a finite number")
        self.low[axis] = min(self.low[axis], min(values))
        self.high[axis] = max(self.high[axis], max(values))

    def box(self) -> BoundingBox:
        return BoundingBox((self.low[0], self.low[1], self.low[2]), (self.high[0], self.high[1], self.high[2]))


def read_stl(source: ByteSource, budget: InspectionBudget | None = None) -> FileInfo:
    budget = budget or InspectionBudget(InspectionLimits())
    size = size_of(source)
    stream = budget.metered(source, compressed=False)
    head = stream.read(_SNIFF)
    if size == 0:
        raise _invalid("the file is empty")
    declared = struct.unpack_from("<I", head, 80)[0] if size >= _HEADER_END else None
    if declared is not None and size == _HEADER_END + _RECORD * declared:
        return _read_binary(stream, declared, [])
    if head.lstrip()[:5].lower() == b"solid" and len(head.translate(None, _CONTROL)) == len(head):
        return _read_ascii(stream)
    if declared is None:
        raise _invalid(f"too short for a binary STL ({size} bytes) and not ASCII STL")
    expected = _HEADER_END + _RECORD * declared
    if declared == 0:
        raise _invalid("it contains no triangles")
    if size < expected:
        raise _invalid(
            f"truncated: the header declares {declared} triangles ({expected} bytes) but the file has {size} bytes"
        )
    return _read_binary(stream, declared, [f"{size - expected} bytes after the last triangle ignored"])


def _read_binary(stream: ByteSource, count: int, warnings: list[str]) -> FileInfo:
    if count == 0:
        raise _invalid("it contains no triangles")
    extent = _Extent()
    stream.seek(_HEADER_END)
    remaining = count
    while remaining:
        take = min(_CHUNK_TRIANGLES, remaining)
        chunk = stream.read(take * _RECORD)
        if len(chunk) != take * _RECORD:
            raise _invalid("truncated while reading triangles")
        _feed_binary_chunk(extent, memoryview(chunk), take)
        remaining -= take
    return FileInfo(kind=FileKind.STL, triangle_count=count, bounding_box=extent.box(), warnings=tuple(warnings))


def _feed_binary_chunk(extent: _Extent, chunk: memoryview, count: int) -> None:
    """Gather each axis' nine-per-triangle floats into a contiguous buffer with strided byte copies.

    A record is 12 little-endian floats (normal, three vertices) plus a 2-byte attribute, so floats
    are not 4-byte aligned across records; strided slices move the bytes at C speed instead of
    unpacking a tuple per triangle.
    """
    stride = 4 * count
    for axis in range(3):
        gathered = bytearray(3 * stride)
        for vertex in range(3):
            offset = 12 + 12 * vertex + 4 * axis
            for byte in range(4):
                start = vertex * stride + byte
                gathered[start : start + stride : 4] = chunk[offset + byte :: _RECORD]
        values = array("f")
        values.frombytes(gathered)
        if _NEEDS_BYTESWAP:
            values.byteswap()
        extent.feed(axis, values, maybe_non_finite=_has_top_exponent(gathered))


def _has_top_exponent(floats: bytearray) -> bool:
    """Whether any little-endian float32 might be inf/NaN: its top byte is 0x7F or 0xFF.

    Checking one byte in four with C-speed slicing avoids summing every value; finite values
    with that top byte (|x| >= 2**127) are rare and only cost the exact check.
    """
    top = bytes(floats[3::4])
    return len(top.translate(None, _TOP_EXPONENT_BYTES)) != len(top)


def _read_ascii(stream: ByteSource) -> FileInfo:
    stream.seek(0)
    reader = _AsciiReader()
    carry = b""
    while True:
        chunk = stream.read(_ASCII_CHUNK)
        if not chunk:
            if carry:
                reader.line(carry)
            break
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        if len(carry) > _MAX_ASCII_LINE:
            raise _invalid(f"line {reader.lineno + len(lines) + 1} is too long for ASCII STL")
        for line in lines:
            reader.line(line)
    return reader.finish()


class _AsciiReader:
    """Checks the facet/loop/vertex structure line by line and tracks the extent."""

    def __init__(self) -> None:
        self.lineno = 0
        self.facets = 0
        self.in_facet = False
        self.in_loop = False
        self.vertices_in_facet = 0
        self.solid_open = False
        self.axes: tuple[list[float], list[float], list[float]] = ([], [], [])
        self.extent = _Extent()

    def line(self, raw: bytes) -> None:
        self.lineno += 1
        parts = raw.split()
        if not parts:
            return
        keyword = parts[0].lower()
        if keyword == b"vertex":
            self._vertex(parts)
        elif keyword == b"facet":
            self._expect(not self.in_facet, "'facet' inside another facet")
            self._expect(len(parts) >= 2 and parts[1].lower() == b"normal", "'facet' without 'normal'")
            self.in_facet = True
            self.vertices_in_facet = 0
            self.solid_open = True
        elif keyword == b"outer":
            self._expect(self.in_facet and not self.in_loop, "'outer loop' outside a facet")
            self.in_loop = True
        elif keyword == b"endloop":
            self._expect(self.in_loop, "'endloop' without 'outer loop'")
            self.in_loop = False
        elif keyword == b"endfacet":
            self._expect(self.in_facet and not self.in_loop, "'endfacet' without a closed facet")
            self._expect(self.vertices_in_facet == 3, f"a facet has {self.vertices_in_facet} vertices, not 3")
            self.in_facet = False
            self.facets += 1
        elif keyword == b"solid":
            self._expect(not self.in_facet, "'solid' inside a facet")
            self.solid_open = True
        elif keyword == b"endsolid":
            self._expect(not self.in_facet, "'endsolid' inside a facet")
            self.solid_open = False
        else:
            shown = parts[0][:20].decode("ascii", "replace")
            raise _invalid(f"unexpected {shown!r} on line {self.lineno}")

    def _vertex(self, parts: list[bytes]) -> None:
        self._expect(self.in_loop, "'vertex' outside 'outer loop'")
        self._expect(len(parts) == 4, "a vertex needs three coordinates")
        try:
            x, y, z = float(parts[1]), float(parts[2]), float(parts[3])
        except ValueError:
            raise _invalid(f"a vertex coordinate on line {self.lineno} is not a number") from None
        xs, ys, zs = self.axes
        xs.append(x)
        ys.append(y)
        zs.append(z)
        self.vertices_in_facet += 1
        if len(xs) >= _CHUNK_TRIANGLES:
            self._flush()

    def _flush(self) -> None:
        for axis, values in enumerate(self.axes):
            self.extent.feed(axis, values)
            values.clear()

    def _expect(self, condition: bool, why: str) -> None:
        if not condition:
            raise _invalid(f"{why} on line {self.lineno}")

    def finish(self) -> FileInfo:
        if self.in_facet:
            raise _invalid("truncated inside a facet")
        if self.facets == 0:
            raise _invalid("it contains no triangles")
        self._flush()
        warnings = ("ASCII STL without a closing 'endsolid'",) if self.solid_open else ()
        return FileInfo(
            kind=FileKind.STL,
            triangle_count=self.facets,
            bounding_box=self.extent.box(),
            warnings=warnings,
        )
