"""Wire-level Bambu Lab printer simulator: TLS MQTT broker + implicit FTPS per printer, with fault switches."""

from printer_simulator.catalog import (
    MaterialSpec,
    PrinterSpec,
    default_fleet,
    parse_fleet,
    parse_materials,
    parse_printer,
)
from printer_simulator.control import ControlServer
from printer_simulator.fleet import Fleet
from printer_simulator.printer import SimulatedPrinter
from printer_simulator.project import build_project

__all__ = [
    "ControlServer",
    "Fleet",
    "MaterialSpec",
    "PrinterSpec",
    "SimulatedPrinter",
    "build_project",
    "default_fleet",
    "parse_fleet",
    "parse_materials",
    "parse_printer",
]
