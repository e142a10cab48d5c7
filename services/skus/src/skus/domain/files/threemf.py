"""3MF and Bambu/Orca .gcode.3mf reading from the zip, one member stream at a time.

Time and weight come from `Metadata/slice_info.config` (what the slicer shows), falling back to the
comments of each plate's G-code; filament colours from `Metadata/project_settings.config` or a
PrusaSlicer config when the project is not sliced.

An archive is hostile until read: each member is admitted from its declared sizes before any byte is
decompressed (ratio, size), every decompressed byte is charged to the inspection's budget, and XML is
parsed with defusedxml (no DTD, no entities) and a depth limit.
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser

from contracts.colours import canonical_color

from .budget import ByteSource, InspectionBudget, InspectionLimits
from .errors import FileRejected
from .gcode import GcodeSummary, summarise_lines, summarise_stream
from .model import Filament, FileInfo, FileKind, Plate

_PLATE_GCODE = re.compile(r"^Metadata/plate_(\d+)\.gcode$", re.IGNORECASE)
_TRIANGLE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?triangle[\s/>]")
_SLICE_INFO = "metadata/slice_info.config"
_MODEL_SETTINGS = "metadata/model_settings.config"
_PROJECT_SETTINGS = "metadata/project_settings.config"
_PRUSA_CONFIG = "metadata/slic3r_pe.config"
_MAX_CONFIG_BYTES = 32 << 20
_CHUNK = 1 << 20
_MAX_TAG_BYTES = 1 << 16
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError)


def _not_archive(why: str = "") -> FileRejected:
    return FileRejected("file", "not a valid 3MF archive" + (f": {why}" if why else ""))


@dataclass
class _PlateData:
    number: int
    gcode: str | None = None
    seconds: float | None = None
    grams: float | None = None
    filaments: tuple[Filament, ...] = ()


@dataclass
class _Reading:
    plates: dict[int, _PlateData] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def plate(self, number: int) -> _PlateData:
        return self.plates.setdefault(number, _PlateData(number))


def read_3mf(source: BinaryIO, kind: FileKind, budget: InspectionBudget | None = None) -> FileInfo:
    """`source` stays open: the caller owns it (closing the archive leaves a given stream alone)."""
    budget = budget or InspectionBudget(InspectionLimits())
    try:
        archive = zipfile.ZipFile(source)
    except _ZIP_ERRORS:
        raise _not_archive() from None
    with archive:
        try:
            return _read_archive(_Archive(archive, budget), kind)
        except _ZIP_ERRORS as exc:
            raise _not_archive(f"a member is damaged ({exc})") from None


class _Archive:
    """The zip with the inspection's budget: members are opened only through `open`, which admits them."""

    def __init__(self, archive: zipfile.ZipFile, budget: InspectionBudget) -> None:
        self.zip, self.budget = archive, budget
        budget.admit_members(len(archive.infolist()))

    @contextlib.contextmanager
    def open(self, info: zipfile.ZipInfo) -> Iterator[ByteSource]:
        self.budget.admit_member(info.filename, info.file_size, info.compress_size)
        with self.zip.open(info) as member:
            yield self.budget.metered(member, compressed=True)

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self.zip.infolist()


def _read_archive(archive: _Archive, kind: FileKind) -> FileInfo:
    members = {info.filename.lower(): info for info in archive.infolist() if not info.is_dir()}
    models = [info for name, info in members.items() if name.endswith(".model")]
    gcodes = {
        int(m.group(1)): info for info in members.values() if (m := _PLATE_GCODE.match(info.filename)) is not None
    }
    if kind is FileKind.GCODE_3MF and not gcodes:
        raise FileRejected("file", "not a valid G-code 3MF: it contains no plate G-code (Metadata/plate_N.gcode)")
    if not models and not gcodes:
        raise _not_archive("it contains neither a 3D model nor G-code")

    reading = _Reading()
    for number, info in gcodes.items():
        reading.plate(number).gcode = info.filename
    _read_slice_info(archive, members.get(_SLICE_INFO), reading)
    _read_model_settings(archive, members.get(_MODEL_SETTINGS), reading)
    for number, info in sorted(gcodes.items()):
        plate = reading.plate(number)
        if plate.seconds is None or plate.grams is None or not plate.filaments:
            _fill_from_gcode(archive, info, plate, reading.warnings)

    plates = tuple(
        Plate(
            number=p.number,
            gcode=p.gcode,
            print_minutes=None if p.seconds is None else round(p.seconds / 60.0, 2),
            grams=None if p.grams is None else round(p.grams, 2),
            filaments=p.filaments,
        )
        for p in sorted(reading.plates.values(), key=lambda p: p.number)
    )
    sliced = [p for p in plates if p.gcode is not None] or [p for p in plates if p.print_minutes is not None]
    filaments = _merge_filaments(sliced) or _configured_filaments(archive, members, reading.warnings)
    if len(sliced) > 1:
        reading.warnings.append(f"{len(sliced)} sliced plates: time and weight are totals over all of them")
    triangles = _count_triangles(archive, models, reading.warnings)
    return FileInfo(
        kind=kind,
        plates=plates,
        filaments=filaments,
        print_minutes=_total(p.print_minutes for p in sliced),
        grams=_total(p.grams for p in sliced),
        triangle_count=triangles,
        warnings=tuple(reading.warnings),
    )


def _total(values: Iterator[float | None]) -> float | None:
    known = list(values)
    if not known or any(v is None for v in known):
        return None
    return round(sum(v for v in known if v is not None), 2)


def _read_small(archive: _Archive, info: zipfile.ZipInfo, warnings: list[str]) -> bytes | None:
    if info.file_size > _MAX_CONFIG_BYTES:
        warnings.append(f"{info.filename} is too large to read; ignored")
        return None
    with archive.open(info) as member:
        data = member.read(_MAX_CONFIG_BYTES + 1)
    if len(data) > _MAX_CONFIG_BYTES:
        warnings.append(f"{info.filename} is too large to read; ignored")
        return None
    return data


class _DepthLimitedBuilder(ElementTree.TreeBuilder):
    def __init__(self, max_depth: int, name: str) -> None:
        super().__init__()
        self._depth, self._max_depth, self._name = 0, max_depth, name

    def start(self, tag: str, attrs: dict[str, str]) -> ElementTree.Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise FileRejected("file", f"{self._name} nests XML deeper than {self._max_depth} levels; refused")
        return super().start(tag, attrs)

    def end(self, tag: str) -> ElementTree.Element:
        self._depth -= 1
        return super().end(tag)


def _parse_xml(data: bytes, name: str, budget: InspectionBudget, warnings: list[str]) -> ElementTree.Element | None:
    """Slicer configs are small plain XML. A DTD, entity or external reference is refused outright
    (billion laughs, external entities; in any encoding), and so is absurd nesting."""
    parser = XMLParser(
        target=_DepthLimitedBuilder(budget.limits.max_xml_depth, name),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(data)
        root: ElementTree.Element = parser.close()
    except DefusedXmlException:
        raise FileRejected("file", f"{name} declares a DTD or entities, which are not accepted in a 3MF") from None
    except ElementTree.ParseError:
        warnings.append(f"{name} is not well-formed XML; ignored")
        return None
    return root


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") and value >= 0 else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _metadata(element: ElementTree.Element) -> dict[str, str]:
    return {m.get("key", ""): m.get("value", "") for m in element if m.tag.rpartition("}")[2] == "metadata"}


def _read_slice_info(archive: _Archive, info: zipfile.ZipInfo | None, reading: _Reading) -> None:
    if info is None:
        return
    data = _read_small(archive, info, reading.warnings)
    root = _parse_xml(data, info.filename, archive.budget, reading.warnings) if data is not None else None
    if root is None:
        return
    for element in root.iter("plate"):
        meta = _metadata(element)
        number = _int(meta.get("index"))
        if number is None:
            reading.warnings.append(f"{info.filename}: a plate without an index; ignored")
            continue
        plate = reading.plate(number)
        plate.seconds = _float(meta.get("prediction"))
        plate.grams = _float(meta.get("weight"))
        plate.filaments = tuple(
            Filament(
                type=f.get("type") or None,
                color=canonical_color(f.get("color", "")),
                grams=_float(f.get("used_g")),
            )
            for f in element.iter("filament")
        )


def _read_model_settings(archive: _Archive, info: zipfile.ZipInfo | None, reading: _Reading) -> None:
    """Bambu/Orca projects list their plates here even when nothing is sliced."""
    if info is None:
        return
    data = _read_small(archive, info, reading.warnings)
    root = _parse_xml(data, info.filename, archive.budget, reading.warnings) if data is not None else None
    if root is None:
        return
    for element in root.iter("plate"):
        number = _int(_metadata(element).get("plater_id"))
        if number is not None and number > 0:
            reading.plate(number)


def _fill_from_gcode(archive: _Archive, info: zipfile.ZipInfo, plate: _PlateData, warnings: list[str]) -> None:
    with archive.open(info) as member:
        summary, has_commands = summarise_stream(member, info.file_size)
    if not has_commands:
        warnings.append(f"{info.filename} contains no G-code commands")
    _apply_summary(plate, summary)
    warnings.extend(f"{info.filename}: {w}" for w in summary.warnings)


def _apply_summary(plate: _PlateData, summary: GcodeSummary) -> None:
    if plate.seconds is None:
        plate.seconds = summary.print_seconds
    if plate.grams is None:
        plate.grams = summary.grams
    if not plate.filaments:
        plate.filaments = summary.filaments


def _merge_filaments(plates: list[Plate]) -> tuple[Filament, ...]:
    """One entry per (type, colour) over all plates, grams summed when every plate knows them."""
    merged: dict[tuple[str | None, str | None], float | None] = {}
    for plate in plates:
        for f in plate.filaments:
            key = (f.type, f.color)
            if key in merged:
                previous = merged[key]
                merged[key] = None if previous is None or f.grams is None else previous + f.grams
            else:
                merged[key] = f.grams
    return tuple(Filament(type=t, color=c, grams=None if g is None else round(g, 2)) for (t, c), g in merged.items())


def _configured_filaments(
    archive: _Archive, members: dict[str, zipfile.ZipInfo], warnings: list[str]
) -> tuple[Filament, ...]:
    """Filaments set up in an unsliced project: types and colours, no weights."""
    info = members.get(_PROJECT_SETTINGS)
    if info is not None:
        data = _read_small(archive, info, warnings)
        settings = _json_object(data, info.filename, warnings) if data is not None else None
        if settings is not None:
            types = _string_list(settings.get("filament_type"))
            colours = _string_list(settings.get("filament_colour"))
            if types or colours:
                count = max(len(types), len(colours))
                return tuple(
                    Filament(
                        type=types[i] if i < len(types) and types[i] else None,
                        color=canonical_color(colours[i]) if i < len(colours) else None,
                    )
                    for i in range(count)
                )
    info = members.get(_PRUSA_CONFIG)
    if info is not None:
        data = _read_small(archive, info, warnings)
        if data is not None:
            lines = data.decode("utf-8", "replace").splitlines()
            return tuple(Filament(type=f.type, color=f.color) for f in summarise_lines(lines).filaments)
    return ()


def _json_object(data: bytes, name: str, warnings: list[str]) -> dict[str, object] | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        warnings.append(f"{name} is not valid JSON; ignored")
        return None
    if not isinstance(value, dict):
        warnings.append(f"{name} is not a JSON object; ignored")
        return None
    return value


def _string_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else "" for v in value]
    return []


def _count_triangles(archive: _Archive, models: list[zipfile.ZipInfo], warnings: list[str]) -> int | None:
    """Counts `<triangle` tags as bytes; parsing millions of XML elements would cost seconds."""
    if not models:
        return None
    total = 0
    for info in models:
        with archive.open(info) as member:
            total += _count_in_stream(member)
    return total


def _count_in_stream(stream: ByteSource) -> int:
    count = 0
    carry = b""
    while chunk := stream.read(_CHUNK):
        buffer = carry + chunk
        cut = buffer.rfind(b"<")
        if cut < 0 or (cut == 0 and len(buffer) > _MAX_TAG_BYTES):
            cut = len(buffer)
        count += len(_TRIANGLE.findall(buffer, 0, cut))
        carry = buffer[cut:]
    return count + len(_TRIANGLE.findall(carry + b" "))
