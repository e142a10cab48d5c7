"""Printer models, material specs and the fleet file format (pure data, no I/O)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

EXTERNAL_SLOT = 254
"""Global tray id of the external spool (``vt_tray``) in fleet files and ``ams_mapping``."""

_SERIAL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX_COLOR_RE = re.compile(r"^#?([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?$")


@dataclass(frozen=True)
class ModelProfile:
    """What differs between Bambu models on the wire."""

    code: str
    product_name: str
    project_name: str
    full_reports: bool
    ota_version: str


MODELS: dict[str, ModelProfile] = {
    "X1C": ModelProfile("X1C", "Bambu Lab X1-Carbon", "BL-P001", True, "01.08.02.00"),
    "X1E": ModelProfile("X1E", "Bambu Lab X1E", "C13", True, "01.01.02.00"),
    "P1P": ModelProfile("P1P", "Bambu Lab P1P", "C11", False, "01.07.00.00"),
    "P1S": ModelProfile("P1S", "Bambu Lab P1S", "C12", False, "01.07.00.00"),
    "A1": ModelProfile("A1", "Bambu Lab A1", "N2S", False, "01.04.00.00"),
    "A1M": ModelProfile("A1M", "Bambu Lab A1 mini", "N1", False, "01.04.00.00"),
}
_MODEL_ALIASES = {"X1": "X1C", "X1CARBON": "X1C", "A1MINI": "A1M"}


def model_profile(model: str) -> ModelProfile:
    """Known models by code or alias; unknown ones behave like a P1 (delta reports)."""
    key = re.sub(r"[\s_-]", "", model).upper()
    key = _MODEL_ALIASES.get(key, key)
    known = MODELS.get(key)
    if known is not None:
        return known
    return ModelProfile(model, f"Bambu Lab {model}", "C11", False, "01.07.00.00")


# Default filament profile ids (tray_info_idx) per material type: Bambu's "Generic" profiles.
_GENERIC_PROFILES = {
    "PLA": "GFL99",
    "PETG": "GFG99",
    "ABS": "GFB99",
    "ASA": "GFB98",
    "TPU": "GFU99",
    "PA": "GFN99",
    "PC": "GFC99",
    "PVA": "GFS99",
}
_PROFILE_NAMES = {
    "GFA00": "PLA Basic",
    "GFA01": "PLA Matte",
    "GFA02": "PLA Metal",
    "GFA05": "PLA Silk",
    "GFG00": "PETG Basic",
    "GFG02": "PETG HF",
    "GFB00": "ABS",
    "GFB01": "ASA",
    "GFU01": "TPU 95A",
}
# (nozzle_temp_min, nozzle_temp_max, print nozzle target, bed target) per material type.
_TEMPERATURES = {
    "PLA": (190, 230, 220, 55),
    "PETG": (230, 260, 250, 70),
    "ABS": (240, 270, 260, 90),
    "ASA": (240, 270, 260, 90),
    "TPU": (200, 240, 230, 35),
    "PA": (260, 290, 280, 100),
    "PC": (260, 290, 280, 100),
    "PVA": (190, 230, 220, 55),
}


def material_temperatures(material_type: str) -> tuple[int, int, int, int]:
    base = material_type.split("-")[0].upper()
    return _TEMPERATURES.get(base, (190, 240, 220, 60))


@dataclass(frozen=True)
class MaterialSpec:
    """One loaded spool: ``slot`` is the global tray id (ams_id * 4 + tray, 128+ AMS HT, 254 external)."""

    slot: int
    type: str
    color: str  # RRGGBBAA, upper case
    profile: str
    remain_percent: int = 100
    sub_brand: str = ""

    @property
    def rgb(self) -> str:
        return "#" + self.color[:6]

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "type": self.type,
            "color": self.rgb,
            "tray_color": self.color,
            "profile": self.profile,
            "remain_percent": self.remain_percent,
        }


def normalize_color(value: str) -> str:
    match = _HEX_COLOR_RE.match(value.strip())
    if match is None:
        raise ValueError(f"colour must be #RRGGBB or RRGGBBAA, got {value!r}")
    return (match.group(1) + (match.group(2) or "FF")).upper()


def parse_material(raw: Any) -> MaterialSpec:
    if not isinstance(raw, dict):
        raise ValueError("a material must be an object")
    try:
        slot = int(raw["slot"])
        material_type = str(raw["type"]).strip()
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"material needs an integer 'slot' and a 'type': {raw!r}") from exc
    if not (0 <= slot < 16 or 128 <= slot < 136 or slot == EXTERNAL_SLOT):
        raise ValueError(f"slot {slot} is not an AMS tray (0-15, 128-135) or the external spool (254)")
    if not material_type:
        raise ValueError("material 'type' must not be empty")
    color = normalize_color(str(raw.get("color", "#FFFFFF")))
    profile = str(raw.get("profile") or _GENERIC_PROFILES.get(material_type.upper(), "GFL99"))
    remain = int(raw.get("remain_percent", 100))
    sub_brand = str(raw.get("sub_brand") or _PROFILE_NAMES.get(profile, ""))
    return MaterialSpec(slot, material_type.upper(), color, profile, max(-1, min(100, remain)), sub_brand)


def parse_materials(raw: Any) -> tuple[MaterialSpec, ...]:
    if isinstance(raw, dict) and "materials" in raw:
        raw = raw["materials"]
    if not isinstance(raw, list):
        raise ValueError("materials must be a list")
    materials = tuple(parse_material(item) for item in raw)
    slots = [m.slot for m in materials]
    if len(set(slots)) != len(slots):
        raise ValueError(f"duplicate material slots: {sorted(slots)}")
    return materials


@dataclass(frozen=True)
class PrinterSpec:
    """One entry of the fleet file; ports 0 mean "any free port"."""

    name: str
    serial: str
    model: str
    access_code: str
    host: str | None = None
    mqtt_port: int = 0
    ftp_port: int = 0
    materials: tuple[MaterialSpec, ...] = ()
    tags: tuple[str, ...] = ()
    fabmatic: bool = False
    report_mode: str | None = None  # "full" | "delta"; None = by model
    vt_tray_id: int = EXTERNAL_SLOT
    ams_units: int = 0  # AMS units present even when no slot of them is listed
    print_seconds: float | None = None  # real seconds per print; None = from the file and time scale
    prepare_seconds: float | None = None  # real seconds of PREPARE; None = 120 s / time scale
    time_scale: float | None = None
    report_interval: float | None = None
    passthrough: dict[str, Any] = field(default_factory=dict)
    protocol: str = "bambu_lan"
    camera_port: int = 0
    api_key: str = field(default="", repr=False)
    spoolman: bool = False
    """A Klipper printer whose Moonraker has Spoolman: its first material is the active spool."""

    @property
    def profile(self) -> ModelProfile:
        return model_profile(self.model)

    @property
    def has_jpeg_camera(self) -> bool:
        """P1 and A1 printers stream JPEG frames over TLS (port 6000); X1/H2 stream RTSPS instead."""
        return self.protocol == "bambu_lan" and not self.profile.code.startswith(("X1", "H2"))

    @property
    def has_rtsps_camera(self) -> bool:
        """X1 and H2 printers stream H.264 over RTSPS (port 322)."""
        return self.protocol == "bambu_lan" and self.profile.code.startswith(("X1", "H2"))

    @property
    def full_reports(self) -> bool:
        if self.report_mode is not None:
            return self.report_mode == "full"
        return self.profile.full_reports

    def with_ports(self, mqtt_port: int, ftp_port: int, camera_port: int = 0) -> PrinterSpec:
        return replace(self, mqtt_port=mqtt_port, ftp_port=ftp_port, camera_port=camera_port)


_KNOWN_KEYS = {
    "name",
    "serial",
    "model",
    "access_code",
    "host",
    "mqtt_port",
    "port",
    "ftp_port",
    "materials",
    "tags",
    "fabmatic",
    "report_mode",
    "vt_tray_id",
    "ams_units",
    "print_seconds",
    "prepare_seconds",
    "time_scale",
    "report_interval",
    "protocol",
    "camera_port",
    "api_key",
    "spoolman",
}
PROTOCOLS = ("bambu_lan", "moonraker", "prusalink", "octoprint")


def _optional_float(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    result = float(value)
    if result <= 0:
        raise ValueError(f"{key} must be positive")
    return result


def parse_printer(raw: Any) -> PrinterSpec:
    """Validates one fleet entry; a missing access code gets a random 8-digit one."""
    if not isinstance(raw, dict):
        raise ValueError("a printer must be an object")
    serial = str(raw.get("serial", "")).strip()
    if not _SERIAL_RE.match(serial):
        raise ValueError(f"serial must be 1-64 letters, digits, '-' or '_', got {serial!r}")
    model = str(raw.get("model", "P1S")).strip() or "P1S"
    access_code = str(raw.get("access_code") or f"{secrets.randbelow(10**8):08d}")
    report_mode = raw.get("report_mode")
    if report_mode not in (None, "full", "delta"):
        raise ValueError("report_mode must be 'full' or 'delta'")
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError("tags must be a list")
    protocol = str(raw.get("protocol") or "bambu_lan")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if protocol != "bambu_lan" and "model" not in raw:
        model = {"moonraker": "Voron 2.4", "prusalink": "Prusa MK4", "octoprint": "Ender 3"}[protocol]
    vt_tray_id = int(raw.get("vt_tray_id", EXTERNAL_SLOT))
    if vt_tray_id not in (254, 255):
        raise ValueError("vt_tray_id must be 254 or 255")
    return PrinterSpec(
        name=str(raw.get("name") or serial),
        serial=serial,
        model=model,
        access_code=access_code,
        host=str(raw["host"]) if raw.get("host") else None,
        mqtt_port=int(raw.get("mqtt_port", raw.get("port", 0)) or 0),
        ftp_port=int(raw.get("ftp_port", 0) or 0),
        materials=parse_materials(raw.get("materials", [])),
        tags=tuple(str(t) for t in tags),
        fabmatic=bool(raw.get("fabmatic", False)),
        report_mode=report_mode,
        vt_tray_id=vt_tray_id,
        ams_units=int(raw.get("ams_units", 0)),
        print_seconds=_optional_float(raw, "print_seconds"),
        prepare_seconds=_optional_float(raw, "prepare_seconds"),
        time_scale=_optional_float(raw, "time_scale"),
        report_interval=_optional_float(raw, "report_interval"),
        passthrough={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
        protocol=protocol,
        camera_port=int(raw.get("camera_port", 0) or 0),
        api_key=str(raw.get("api_key") or (secrets.token_hex(16) if protocol in ("prusalink", "octoprint") else "")),
        spoolman=bool(raw.get("spoolman", False)),
    )


def parse_fleet(raw: Any) -> list[PrinterSpec]:
    if isinstance(raw, dict) and "printers" in raw:
        raw = raw["printers"]
    if not isinstance(raw, list):
        raise ValueError("a fleet file holds a list of printers")
    specs = [parse_printer(item) for item in raw]
    serials = [s.serial for s in specs]
    if len(set(serials)) != len(serials):
        raise ValueError("duplicate serials in fleet")
    return specs


def default_fleet() -> list[PrinterSpec]:
    """Four Bambu models with overlapping and unique materials (ABS only on the P1P, TPU only on the A1),
    a Klipper printer whose Spoolman spool is the only ASA, and a Prusa MK4 (PrusaLink) that reports no
    filament and holds the only PC, as its operator registers it."""
    return parse_fleet(
        [
            {
                "name": "x1c-01",
                "serial": "00M09A350100001",
                "model": "X1C",
                "access_code": "11111111",
                "tags": ["big"],
                "materials": [
                    {"slot": 0, "type": "PLA", "color": "#000000", "profile": "GFA00", "remain_percent": 90},
                    {"slot": 1, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 75},
                    {"slot": 2, "type": "PETG", "color": "#C12E1F", "profile": "GFG00", "remain_percent": 60},
                    {"slot": 3, "type": "PLA", "color": "#000000", "profile": "GFA01", "remain_percent": 100},
                ],
            },
            {
                "name": "p1s-01",
                "serial": "01P09A3A1900002",
                "model": "P1S",
                "access_code": "22222222",
                "fabmatic": True,
                "materials": [
                    {"slot": 0, "type": "PLA", "color": "#FFFFFF", "profile": "GFA00", "remain_percent": 80},
                    {"slot": 1, "type": "PETG", "color": "#000000", "profile": "GFG00", "remain_percent": 55},
                    {"slot": 2, "type": "PLA", "color": "#C12E1F", "profile": "GFA00", "remain_percent": 40},
                ],
            },
            {
                "name": "p1p-01",
                "serial": "01S00C371400003",
                "model": "P1P",
                "access_code": "33333333",
                "materials": [
                    {"slot": 254, "type": "ABS", "color": "#000000", "profile": "GFB00", "remain_percent": 70},
                ],
            },
            {
                "name": "a1-01",
                "serial": "03919A3B0100004",
                "model": "A1",
                "access_code": "44444444",
                "materials": [
                    {"slot": 254, "type": "TPU", "color": "#FFFFFF", "profile": "GFU01", "remain_percent": 95},
                ],
            },
            {
                "name": "voron-01",
                "serial": "voron24-350-0001",
                "model": "Voron 2.4",
                "protocol": "moonraker",
                "api_key": "5a1e0b7c2d9f4e3a8b6c1d0e9f8a7b6c",
                "spoolman": True,
                "materials": [{"slot": 0, "type": "ASA", "color": "#1E90FF", "remain_percent": 65}],
            },
            {
                "name": "mk4-01",
                "serial": "10589-3742441632141",
                "model": "Prusa MK4",
                "protocol": "prusalink",
                "api_key": "pXtR3kq9WmB2",
                "materials": [{"slot": 0, "type": "PC", "color": "#F5F5F5"}],
            },
        ]
    )
