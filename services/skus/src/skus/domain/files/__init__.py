"""Pure readers for part files (STL, 3MF, G-code 3MF, G-code, OpenSCAD): they read the binary stream they
are given and open nothing themselves (adapters open the stored or uploaded file)."""

from .budget import InspectionLimits
from .errors import FileRejected, FileTooLarge
from .inspection import inspect_file, kind_from_filename
from .model import BoundingBox, Filament, FileInfo, FileKind, Option, Parameter, Plate
from .scad import ScadParameters, parse_scad, parse_scad_text

__all__ = [
    "BoundingBox",
    "Filament",
    "FileInfo",
    "FileKind",
    "FileRejected",
    "FileTooLarge",
    "InspectionLimits",
    "Option",
    "Parameter",
    "Plate",
    "ScadParameters",
    "inspect_file",
    "kind_from_filename",
    "parse_scad",
    "parse_scad_text",
]
