"""A 3MF file's printable geometry as one binary STL, for slicers that cannot read the file as it is.

PrusaSlicer 2.5 refuses the 3MFs Bambu Studio and OrcaSlicer write (objects kept in
`3D/Objects/*.model` through the production extension: "Found component with invalid object id"), and
would apply the print settings a PrusaSlicer 3MF carries over the farm's profiles. So every 3MF is
flattened here: each build item (unless `printable="0"`), its components followed into other model
files, every transform applied, units converted to millimetres, into one STL mesh. Read as a stream
with limits on sizes, nesting and triangles, so a hostile archive costs bounded memory.
"""

from __future__ import annotations

import io
import math
import posixpath
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree import ElementTree

from slicer.domain.errors import SliceError

CORE = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
PRODUCTION = "{http://schemas.microsoft.com/3dmanufacturing/production/2015/06}"
RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
DEFAULT_ROOT = "/3D/3dmodel.model"
UNITS_MM = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}
MAX_MEMBER_BYTES = 1024 * 1024 * 1024
MAX_TRIANGLES = 5_000_000
MAX_VERTICES = 3 * MAX_TRIANGLES
MAX_DEPTH = 16

Matrix = tuple[float, float, float, float, float, float, float, float, float, float, float, float]
Point = tuple[float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def _refused(message: str) -> SliceError:
    return SliceError("slice", f"the 3MF file cannot be read: {message}")


@dataclass
class _Object:
    vertices: list[Point] = field(default_factory=list)
    triangles: list[tuple[int, int, int]] = field(default_factory=list)
    components: list[tuple[str, str, Matrix]] = field(default_factory=list)
    """(model path, object id, transform) of each component."""


@dataclass
class _Model:
    scale: float
    objects: dict[str, _Object]
    build: list[tuple[str, Matrix]]


def parse_transform(text: str | None) -> Matrix:
    if not text or not text.strip():
        return IDENTITY
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        raise _refused(f"transform {text[:80]!r} is not 12 numbers") from None
    if len(values) != 12 or not all(math.isfinite(v) for v in values):
        raise _refused(f"transform {text[:80]!r} is not 12 finite numbers")
    return values  # type: ignore[return-value]


def compose(first: Matrix, then: Matrix) -> Matrix:
    """The transform applying `first`, then `then` (3MF's row-vector convention: p · first · then)."""
    a, b = first, then
    out: list[float] = []
    for row in range(4):
        r = a[row * 3 : row * 3 + 3]
        for col in range(3):
            value = r[0] * b[col] + r[1] * b[3 + col] + r[2] * b[6 + col]
            if row == 3:
                value += b[9 + col]
            out.append(value)
    return tuple(out)  # type: ignore[return-value]


def apply(m: Matrix, p: Point) -> Point:
    x, y, z = p
    return (
        x * m[0] + y * m[3] + z * m[6] + m[9],
        x * m[1] + y * m[4] + z * m[7] + m[10],
        x * m[2] + y * m[5] + z * m[8] + m[11],
    )


def _root_path(archive: zipfile.ZipFile) -> str:
    try:
        rels = archive.read("_rels/.rels")
    except KeyError:
        return DEFAULT_ROOT
    try:
        root = ElementTree.fromstring(rels)
    except ElementTree.ParseError:
        return DEFAULT_ROOT
    for rel in root.iter(f"{RELATIONSHIPS}Relationship"):
        if rel.get("Type") == MODEL_RELATIONSHIP and rel.get("Target"):
            return "/" + rel.get("Target", "").lstrip("/")
    return DEFAULT_ROOT


def _member(archive: zipfile.ZipFile, path: str) -> zipfile.ZipInfo:
    name = posixpath.normpath(path).lstrip("/")
    try:
        info = archive.getinfo(name)
    except KeyError:
        # Some writers differ in case; the package names are case-insensitive.
        matches = [i for i in archive.infolist() if i.filename.lower() == name.lower()]
        if not matches:
            raise _refused(f"it names {path!r}, which is not in the archive") from None
        info = matches[0]
    if info.file_size > MAX_MEMBER_BYTES:
        raise _refused(f"{info.filename} is larger than {MAX_MEMBER_BYTES // 2**20} MB")
    return info


def _parse_model(archive: zipfile.ZipFile, path: str, budget: list[int]) -> _Model:
    info = _member(archive, path)
    objects: dict[str, _Object] = {}
    build: list[tuple[str, Matrix]] = []
    scale = 1.0
    current: _Object | None = None
    container: ElementTree.Element | None = None
    try:
        with archive.open(info) as stream:
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                tag = element.tag
                if event == "start":
                    if tag == f"{CORE}model":
                        unit = element.get("unit", "millimeter")
                        if unit not in UNITS_MM:
                            raise _refused(f"unknown unit {unit!r}")
                        scale = UNITS_MM[unit]
                    elif tag == f"{CORE}object":
                        current = _Object()
                        objects[element.get("id", "")] = current
                    elif tag in (f"{CORE}vertices", f"{CORE}triangles"):
                        container = element
                    continue
                if tag == f"{CORE}vertex" and current is not None:
                    budget[1] -= 1
                    if budget[1] < 0:
                        raise _refused(f"more than {MAX_VERTICES} vertices")
                    current.vertices.append(_point(element))
                elif tag == f"{CORE}triangle" and current is not None:
                    budget[0] -= 1
                    if budget[0] < 0:
                        raise _refused(f"more than {MAX_TRIANGLES} triangles")
                    current.triangles.append(_triangle(element))
                elif tag == f"{CORE}component" and current is not None:
                    target = element.get(f"{PRODUCTION}path") or path
                    current.components.append(
                        (target, element.get("objectid", ""), parse_transform(element.get("transform")))
                    )
                elif tag == f"{CORE}object":
                    current = None
                elif tag == f"{CORE}item" and element.get("printable", "1") not in ("0", "false"):
                    target = element.get(f"{PRODUCTION}path") or path
                    if target != path:
                        raise _refused("a build item may only name objects of the root model")
                    build.append((element.get("objectid", ""), parse_transform(element.get("transform"))))
                if tag in (f"{CORE}vertex", f"{CORE}triangle") and container is not None:
                    container.clear()  # what was read is kept as tuples: the tree holds no million elements
                elif tag in (f"{CORE}component", f"{CORE}item"):
                    element.clear()
    except ElementTree.ParseError as error:
        raise _refused(f"{info.filename} is not well-formed XML ({error})") from None
    return _Model(scale=scale, objects=objects, build=build)


def _point(element: ElementTree.Element) -> Point:
    try:
        point = (float(element.get("x", "")), float(element.get("y", "")), float(element.get("z", "")))
    except ValueError:
        raise _refused("a vertex is not three numbers") from None
    if not all(math.isfinite(c) for c in point):
        raise _refused("a vertex is not three finite numbers")
    return point


def _triangle(element: ElementTree.Element) -> tuple[int, int, int]:
    try:
        return (int(element.get("v1", "")), int(element.get("v2", "")), int(element.get("v3", "")))
    except ValueError:
        raise _refused("a triangle does not name three vertices") from None


class _Flattener:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.models: dict[str, _Model] = {}
        self.budget = [MAX_TRIANGLES, MAX_VERTICES]

    def model(self, path: str) -> _Model:
        if path not in self.models:
            self.models[path] = _parse_model(self.archive, path, self.budget)
        return self.models[path]

    def triangles(self, path: str, object_id: str, transform: Matrix, depth: int) -> Iterator[tuple[Point, ...]]:
        if depth > MAX_DEPTH:
            raise _refused(f"components nest deeper than {MAX_DEPTH} levels (a cycle?)")
        model = self.model(path)
        obj = model.objects.get(object_id)
        if obj is None:
            raise _refused(f"object {object_id!r} is not in {path}")
        unit = model.scale
        to_mm: Matrix = (unit, 0.0, 0.0, 0.0, unit, 0.0, 0.0, 0.0, unit, 0.0, 0.0, 0.0)
        placed = compose(to_mm, transform) if unit != 1.0 else transform
        points = [apply(placed, vertex) for vertex in obj.vertices]  # each vertex once, not per triangle
        count = len(points)
        for v1, v2, v3 in obj.triangles:
            if not (0 <= v1 < count and 0 <= v2 < count and 0 <= v3 < count):
                raise _refused(f"a triangle of object {object_id!r} names a vertex it does not have")
            yield (points[v1], points[v2], points[v3])
        for component_path, component_id, component_transform in obj.components:
            # A component's own unit is its model file's; its transform is in the parent's space.
            yield from self.triangles(component_path, component_id, compose(component_transform, transform), depth + 1)


def _normal(a: Point, b: Point, c: Point) -> Point:
    ux, uy, uz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    vx, vy, vz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    return (nx / length, ny / length, nz / length) if length > 0 else (0.0, 0.0, 0.0)


def threemf_to_stl(data: bytes) -> bytes:
    """The printable build of a 3MF as binary STL bytes; SliceError(stage="slice") when unreadable or empty."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise _refused("it is not a zip archive") from None
    with archive:
        flattener = _Flattener(archive)
        root = _root_path(archive)
        body = bytearray()
        count = 0
        try:
            for object_id, transform in flattener.model(root).build:
                for a, b, c in flattener.triangles(root, object_id, transform, 0):
                    body += struct.pack("<12fH", *_normal(a, b, c), *a, *b, *c, 0)
                    count += 1
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as error:
            raise _refused(f"a member could not be unpacked ({error})") from None
    if count == 0:
        raise SliceError("slice", "the 3MF file holds no printable mesh (no build item with triangles)")
    return b"printfarm: flattened 3MF build".ljust(80, b" ") + struct.pack("<I", count) + bytes(body)
