"""Small, valid part files built in code, so tests need no binary fixtures."""

from __future__ import annotations

import io
import struct
import zipfile

GCODE = """; HEADER_BLOCK_START
; model printing time: 1h 2m 3s; total estimated time: 1h 5m 0s
; total filament weight [g] : 12.5
; filament_type = PLA
; filament_colour = #FF0000
; HEADER_BLOCK_END
G28
G1 X10 Y10 Z0.2 E1
M104 S0
"""

SLICE_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<config>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="prediction" value="3900"/>
    <metadata key="weight" value="12.50"/>
    <filament id="1" type="PLA" color="#FF0000" used_m="4.1" used_g="12.50"/>
  </plate>
</config>
"""

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">
 <resources><object id="1" type="model"><mesh>
  <vertices><vertex x="0" y="0" z="0"/><vertex x="10" y="0" z="0"/><vertex x="0" y="10" z="0"/></vertices>
  <triangles><triangle v1="0" v2="1" v3="2"/></triangles>
 </mesh></object></resources>
 <build><item objectid="1"/></build>
</model>
"""

SCAD = """/* [Size] */
// Width of the box
width = 20; // [10:5:50]
// Label text
label = "hi";
// Finish
finish = "matte"; // [matte, gloss]
hollow = true;

module box() { cube([width, width, 10]); }
box();
"""


def gcode_3mf(gcode: str = GCODE) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("3D/3dmodel.model", MODEL)
        z.writestr("Metadata/plate_1.gcode", gcode)
        z.writestr("Metadata/slice_info.config", SLICE_INFO)
    return out.getvalue()


def model_3mf() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("3D/3dmodel.model", MODEL)
    return out.getvalue()


def binary_stl(triangles: int = 2) -> bytes:
    body = b"".join(
        struct.pack("<12fH", 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 10 + i, 5, 0) for i in range(triangles)
    )
    return b"\0" * 80 + struct.pack("<I", triangles) + body


ASCII_STL = """solid cube
facet normal 0 0 1
 outer loop
  vertex 0 0 0
  vertex 1 0 0
  vertex 0 1 0
 endloop
endfacet
endsolid cube
"""
