"""The profile library: which printer, material and print settings slice a job, and their content hash.

Profiles are PrusaSlicer INI files shipped with the service (`slicer/profiles/`), each replaced by a
same-named file in a farm's override folder. What the pipeline needs besides PrusaSlicer's own keys
(the model spellings a printer answers to, Bambu's model id, the output kind, heater limits, the
material types a filament file covers) sits in `; printfarm.<key> = <value>` comment lines, which
PrusaSlicer ignores. Selection is pure: file texts in, one `SelectedProfile` (or a `SliceError` with
stage `profile` saying why nothing fits) out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from slicer.domain.errors import SliceError

PRINTER_DIR = "printer"
FABMATIC_DIR = "fabmatic"
FILAMENT_DIR = "filament"
PROCESS_FILE = "print/standard-0.20mm.ini"
OutputKind = Literal["gcode.3mf", "gcode"]

_META = re.compile(r"^\s*;\s*printfarm\.(?P<key>[a-z_]+)\s*=\s*(?P<value>.*?)\s*$")
_KEY = re.compile(r"^\s*(?P<key>[a-z0-9_]+)\s*=\s?(?P<value>.*?)\s*$")
_VENDOR_PREFIX = re.compile(
    r"^(BAMBU\s*LAB|BAMBULAB|BAMBU|BBL|ORIGINAL\s*PRUSA|PRUSA\s*RESEARCH|PRUSA|CREALITY)[\s_-]*", re.IGNORECASE
)
"""Brand words operators write or leave out ("Bambu Lab X1C", "Original Prusa MK4", "Creality K1"); a model
is known by what follows them. "Voron" is part of the model's name, not a brand prefix."""


class ProfileConfigError(Exception):
    """The profile files themselves are wrong (a farm's override): the service refuses to start."""


def normalise_model(model: str) -> str:
    """`"Bambu Lab X1-Carbon"` and `"x1 carbon"` → `"X1CARBON"`, `"Original Prusa MK4"` → `"MK4"`: the key
    model spellings are compared by."""
    text = _VENDOR_PREFIX.sub("", model.strip())
    return re.sub(r"[\s_-]+", "", text).upper()


def normalise_material(material_type: str) -> str:
    """`"pla basic"` → `"PLA-BASIC"`, `"PETG_HF"` → `"PETG-HF"`."""
    return re.sub(r"[\s_-]+", "-", material_type.strip()).upper()


def parse_ini(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(PrusaSlicer keys, printfarm metadata) of one INI text."""
    keys: dict[str, str] = {}
    meta: dict[str, str] = {}
    for line in text.splitlines():
        meta_match = _META.match(line)
        if meta_match:
            meta[meta_match["key"]] = meta_match["value"]
            continue
        if line.lstrip().startswith((";", "#")) or not line.strip():
            continue
        key_match = _KEY.match(line)
        if key_match:
            keys[key_match["key"]] = key_match["value"]
    return keys, meta


@dataclass(frozen=True)
class ProfileFile:
    name: str
    """Its path inside the profile folder, e.g. `printer/bambu-x1c.ini`."""
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Bed:
    """The printable rectangle (PrusaSlicer's `bed_shape` bounding box) and height, in mm."""

    min_x: float
    min_y: float
    max_x: float
    max_y: float
    max_height: float

    @property
    def width(self) -> float:
        return self.max_x - self.min_x

    @property
    def depth(self) -> float:
        return self.max_y - self.min_y

    @property
    def center(self) -> tuple[float, float]:
        return (self.min_x + self.max_x) / 2, (self.min_y + self.max_y) / 2


@dataclass(frozen=True)
class PrinterProfile:
    id: str
    file: ProfileFile
    fabmatic: ProfileFile | None
    product_name: str
    model_id: str
    output: OutputKind
    spellings: tuple[str, ...]
    bed: Bed
    nozzle_diameter: float
    max_nozzle_temperature: float
    max_bed_temperature: float


@dataclass(frozen=True)
class MaterialProfile:
    id: str
    file: ProfileFile
    filament_type: str
    types: tuple[str, ...]
    nozzle_temperature: float
    bed_temperature: float
    density: float
    diameter: float


@dataclass(frozen=True)
class SelectedProfile:
    name: str
    """`bambu-x1c/pla`, `bambu-p1s/petg+fabmatic`."""
    printer: PrinterProfile
    material: MaterialProfile
    fabmatic: bool
    files: tuple[ProfileFile, ...]
    """In PrusaSlicer `--load` order: later files override earlier ones."""

    @property
    def digest(self) -> str:
        """sha256 over every loaded file's name and content, in load order."""
        hasher = hashlib.sha256()
        for file in self.files:
            hasher.update(file.name.encode("utf-8") + b"\0" + file.digest.encode("ascii") + b"\n")
        return hasher.hexdigest()


def _number(keys: Mapping[str, str], key: str, file: str) -> float:
    raw = keys.get(key)
    if raw is None:
        raise ProfileConfigError(f"{file}: {key} is missing")
    try:
        return float(raw.split(",")[0].strip().rstrip("%"))
    except ValueError:
        raise ProfileConfigError(f"{file}: {key} = {raw!r} is not a number") from None


def _meta(meta: Mapping[str, str], key: str, file: str) -> str:
    value = meta.get(key)
    if not value:
        raise ProfileConfigError(f"{file}: '; printfarm.{key} = ...' is missing")
    return value


def _bed(keys: Mapping[str, str], file: str) -> Bed:
    raw = keys.get("bed_shape", "")
    try:
        points = [tuple(float(c) for c in point.split("x")) for point in raw.split(",")]
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
    except (ValueError, IndexError):
        raise ProfileConfigError(f"{file}: bed_shape = {raw!r} is not a list of XxY points") from None
    if len(points) < 3 or any(len(p) != 2 for p in points):
        raise ProfileConfigError(f"{file}: bed_shape = {raw!r} is not a polygon")
    return Bed(min(xs), min(ys), max(xs), max(ys), _number(keys, "max_print_height", file))


def _printer(file: ProfileFile, fabmatic: ProfileFile | None) -> PrinterProfile:
    keys, meta = parse_ini(file.text)
    output = meta.get("output", "gcode")
    if output not in ("gcode.3mf", "gcode"):
        raise ProfileConfigError(f"{file.name}: printfarm.output must be gcode.3mf or gcode, not {output!r}")
    printer_id = file.name.removeprefix(f"{PRINTER_DIR}/").removesuffix(".ini")
    spellings = tuple(s.strip() for s in _meta(meta, "models", file.name).split(",") if s.strip())
    return PrinterProfile(
        id=printer_id,
        file=file,
        fabmatic=fabmatic,
        product_name=_meta(meta, "product_name", file.name),
        model_id=meta.get("model_id", ""),
        output="gcode.3mf" if output == "gcode.3mf" else "gcode",
        spellings=spellings,
        bed=_bed(keys, file.name),
        nozzle_diameter=_number(keys, "nozzle_diameter", file.name),
        max_nozzle_temperature=float(_meta(meta, "max_nozzle_temperature", file.name)),
        max_bed_temperature=float(_meta(meta, "max_bed_temperature", file.name)),
    )


def _material(file: ProfileFile) -> MaterialProfile:
    keys, meta = parse_ini(file.text)
    filament_type = keys.get("filament_type", "").strip() or _meta(meta, "types", file.name).split(",")[0]
    types = tuple(normalise_material(t) for t in _meta(meta, "types", file.name).split(",") if t.strip())
    return MaterialProfile(
        id=file.name.removeprefix(f"{FILAMENT_DIR}/").removesuffix(".ini"),
        file=file,
        filament_type=filament_type,
        types=types,
        nozzle_temperature=max(
            _number(keys, "temperature", file.name), _number(keys, "first_layer_temperature", file.name)
        ),
        bed_temperature=max(
            _number(keys, "bed_temperature", file.name), _number(keys, "first_layer_bed_temperature", file.name)
        ),
        density=_number(keys, "filament_density", file.name),
        diameter=_number(keys, "filament_diameter", file.name),
    )


class ProfileLibrary:
    """Every printer, material and the print profile, indexed by model spelling and material type."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = {name: ProfileFile(name, text) for name, text in files.items()}
        if PROCESS_FILE not in self.files:
            raise ProfileConfigError(f"{PROCESS_FILE} is missing")
        self.process = self.files[PROCESS_FILE]
        self.printers: dict[str, PrinterProfile] = {}
        self.materials: dict[str, MaterialProfile] = {}
        by_spelling: dict[str, PrinterProfile] = {}
        by_type: dict[str, MaterialProfile] = {}
        for name, file in sorted(self.files.items()):
            if name.startswith(f"{PRINTER_DIR}/") and name.endswith(".ini"):
                fabmatic = self.files.get(f"{FABMATIC_DIR}/{name.removeprefix(PRINTER_DIR + '/')}")
                printer = _printer(file, fabmatic)
                self.printers[printer.id] = printer
                for spelling in (*printer.spellings, printer.id, printer.product_name, printer.model_id):
                    key = normalise_model(spelling)
                    if not key:
                        continue
                    other = by_spelling.get(key)
                    if other is not None and other.id != printer.id:
                        raise ProfileConfigError(f"model {spelling!r} is claimed by both {other.id} and {printer.id}")
                    by_spelling[key] = printer
            elif name.startswith(f"{FILAMENT_DIR}/") and name.endswith(".ini"):
                material = _material(file)
                self.materials[material.id] = material
                for material_type in material.types:
                    other_material = by_type.get(material_type)
                    if other_material is not None:
                        raise ProfileConfigError(
                            f"material {material_type!r} is claimed by both {other_material.id} and {material.id}"
                        )
                    by_type[material_type] = material
        self._by_spelling = by_spelling
        self._by_type = by_type

    def printer_for(self, printer_model: str) -> PrinterProfile:
        printer = self._by_spelling.get(normalise_model(printer_model))
        if printer is None:
            known = ", ".join(sorted({p.spellings[0] for p in self.printers.values() if p.spellings}))
            raise SliceError("profile", f"no printer profile for model {printer_model!r} (known: {known})")
        return printer

    def material_for(self, material_type: str) -> MaterialProfile:
        material = self._by_type.get(normalise_material(material_type))
        if material is None:
            known = ", ".join(sorted(m.filament_type for m in self.materials.values()))
            raise SliceError("profile", f"no material profile for {material_type!r} (known: {known})")
        return material

    def select(self, printer_model: str, material_type: str, fabmatic: bool) -> SelectedProfile:
        printer = self.printer_for(printer_model)
        material = self.material_for(material_type)
        model = printer.spellings[0] if printer.spellings else printer.id
        if material.nozzle_temperature > printer.max_nozzle_temperature:
            raise SliceError(
                "profile",
                f"{material.filament_type} prints at {material.nozzle_temperature:g} °C; the {model} nozzle heats "
                f"to {printer.max_nozzle_temperature:g} °C",
            )
        if material.bed_temperature > printer.max_bed_temperature:
            raise SliceError(
                "profile",
                f"{material.filament_type} needs a {material.bed_temperature:g} °C bed; the {model} bed heats to "
                f"{printer.max_bed_temperature:g} °C",
            )
        files: tuple[ProfileFile, ...] = (printer.file,)
        if fabmatic:
            if printer.fabmatic is None:
                raise SliceError("profile", f"no FabMatic profile for the {model} ({FABMATIC_DIR}/{printer.id}.ini)")
            files += (printer.fabmatic,)
        files += (material.file, self.process)
        name = f"{printer.id}/{material.id}" + ("+fabmatic" if fabmatic else "")
        return SelectedProfile(name=name, printer=printer, material=material, fabmatic=fabmatic, files=files)
