"""Does a mesh fit the printer? PrusaSlicer 2.5 slices a part hanging off the bed without a word, so
the pipeline checks the mesh's size (from `prusa-slicer --info`) against the profile's bed first."""

from __future__ import annotations

from dataclasses import dataclass

from slicer.domain.errors import SliceError
from slicer.domain.profiles import Bed

TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class MeshInfo:
    size_x: float
    size_y: float
    size_z: float
    facets: int
    manifold: bool | None = None
    volume: float | None = None


def placement_rotation(mesh: MeshInfo, bed: Bed, model: str) -> int:
    """Degrees about Z to place the part (0, or 90 when only the turned footprint fits); raises a
    `slice` SliceError naming both sizes when it fits neither way or is taller than the printer."""
    if mesh.facets <= 0 or max(mesh.size_x, mesh.size_y, mesh.size_z) <= 0:
        raise SliceError("slice", "the mesh is empty: it has no triangles to print")
    if mesh.size_z <= 0:
        raise SliceError("slice", "the mesh is flat: it has no height to print")
    size = f"{mesh.size_x:.1f} × {mesh.size_y:.1f} × {mesh.size_z:.1f} mm"
    limit = f"{bed.width:g} × {bed.depth:g} × {bed.max_height:g} mm"
    if mesh.size_z > bed.max_height + TOLERANCE_MM:
        raise SliceError("slice", f"the part does not fit the {model}: it is {size}, the printer takes at most {limit}")
    if mesh.size_x <= bed.width + TOLERANCE_MM and mesh.size_y <= bed.depth + TOLERANCE_MM:
        return 0
    if mesh.size_y <= bed.width + TOLERANCE_MM and mesh.size_x <= bed.depth + TOLERANCE_MM:
        return 90
    raise SliceError("slice", f"the part does not fit the {model}: it is {size}, the printer takes at most {limit}")
