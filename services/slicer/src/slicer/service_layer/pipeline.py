"""The one entry the slicer service calls: a job and its source bytes in, a printable file out.

`.scad` sources are rendered with the order line's values (OpenSCAD), 3MF builds are flattened into one
STL (`threemf_mesh`), meshes are sliced with the
selected profiles (a `MeshSlicer`, PrusaSlicer by default), the estimates are read from the slicer's
own output and the G-code is packaged for the printer (a Bambu `.gcode.3mf`, or plain `.gcode`).
Every refusal is a `SliceError` naming its stage; anything else (disk full, a missing work folder) is
an infrastructure error the caller may retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

from slicer.adapters.limited_process import ToolLimits
from slicer.adapters.openscad import OpenScad
from slicer.adapters.profile_files import load_profile_library
from slicer.adapters.prusa_slicer import PrusaSlicer, SlicedMesh
from slicer.adapters.tool_versions import read_tool_versions
from slicer.domain.bambu_project import PlateInfo, build_bambu_project
from slicer.domain.cache_key import slice_cache_key
from slicer.domain.errors import SliceError
from slicer.domain.gcode_estimates import EstimateMissing, read_estimates
from slicer.domain.job import SlicedFile, SliceJob
from slicer.domain.profiles import ProfileLibrary, SelectedProfile, parse_ini
from slicer.domain.threemf_mesh import threemf_to_stl

__all__ = ["MeshSlicer", "ScadRenderer", "SliceError", "SlicePipeline", "ToolLimits", "build_pipeline"]

_STEM = re.compile(r"[^A-Za-z0-9._-]+")
_SOURCE_SUFFIXES = (".scad", ".stl", ".3mf")


class ScadRenderer(Protocol):
    """Renders an OpenSCAD source with parameter values to binary STL bytes."""

    async def render(
        self,
        source: bytes,
        parameters: Mapping[str, object],
        *,
        source_filename: str,
        work_dir: Path,
        limits: ToolLimits,
    ) -> bytes: ...


class MeshSlicer(Protocol):
    """Slices a mesh with the selected profiles into G-code carrying the slicer's estimate comments."""

    async def slice(
        self,
        mesh: bytes,
        mesh_format: Literal["stl", "3mf"],
        profile: SelectedProfile,
        *,
        object_name: str,
        work_dir: Path,
        limits: ToolLimits,
    ) -> SlicedMesh: ...


def output_filename(source_filename: str, kind: str) -> str:
    """`Name Tag.scad` → `Name_Tag.gcode.3mf`: a name the printer's screen and FTP both take."""
    name = Path(source_filename.replace("\\", "/")).name
    lowered = name.lower()
    for suffix in _SOURCE_SUFFIXES:
        if lowered.endswith(suffix):
            name = name[: -len(suffix)]
            break
    stem = _STEM.sub("_", name).strip("._-")[:64] or "part"
    return f"{stem}.{kind}"


class SlicePipeline:
    def __init__(
        self,
        profiles: ProfileLibrary,
        openscad: ScadRenderer,
        slicer: MeshSlicer,
        work_dir: Path,
        limits: ToolLimits,
        tool_versions: Mapping[str, str],
    ) -> None:
        """`tool_versions`: what `openscad` and `slicer` say their versions are (part of every cache key)."""
        self.profiles = profiles
        self.openscad = openscad
        self.slicer = slicer
        self.work_dir = work_dir
        self.limits = limits
        self.tool_versions = dict(tool_versions)

    def selected_profile(self, job: SliceJob) -> SelectedProfile:
        return self.profiles.select(job.printer_model, job.material_type, job.fabmatic)

    def cache_key(self, job: SliceJob) -> str:
        """Raises SliceError(stage="profile") when no profile fits: there is nothing to key."""
        return slice_cache_key(job, self.selected_profile(job), self.tool_versions)

    def profile_for(self, job: SliceJob) -> str:
        return self.selected_profile(job).name

    async def make_printable(self, job: SliceJob, source: bytes) -> SlicedFile:
        profile = self.selected_profile(job)
        if hashlib.sha256(source).hexdigest() != job.source_sha256.lower():
            raise SliceError("fetch", "the source file's content does not match its sha256", transient=True)
        if job.source_kind == "scad":
            mesh = await self.openscad.render(
                source,
                job.parameters,
                source_filename=job.source_filename,
                work_dir=self.work_dir,
                limits=self.limits,
            )
            mesh_format: Literal["stl", "3mf"] = "stl"
        elif job.source_kind == "stl":
            mesh, mesh_format = source, "stl"
        elif job.source_kind == "3mf":
            mesh, mesh_format = await asyncio.to_thread(threemf_to_stl, source), "stl"
        else:
            raise SliceError("slice", f"a {job.source_kind!r} source cannot be sliced (scad, stl or 3mf only)")
        sliced = await self.slicer.slice(
            mesh,
            mesh_format,
            profile,
            object_name=job.source_filename,
            work_dir=self.work_dir,
            limits=self.limits,
        )
        return self._package(job, profile, sliced)

    def _package(self, job: SliceJob, profile: SelectedProfile, sliced: SlicedMesh) -> SlicedFile:
        material = profile.material
        try:
            estimate = read_estimates(sliced.gcode, density_g_cm3=material.density, diameter_mm=material.diameter)
        except EstimateMissing as error:
            raise SliceError("slice", f"{sliced.slicer} wrote G-code without its estimates: {error}") from None
        kind: Literal["gcode.3mf", "gcode"] = profile.printer.output
        if kind == "gcode.3mf":
            process_keys, _ = parse_ini(profile.files[-1].text)
            info = PlateInfo(
                printer_model_id=profile.printer.model_id,
                printer_name=profile.printer.product_name,
                nozzle_diameter=profile.printer.nozzle_diameter,
                prediction_seconds=estimate.print_seconds,
                weight_g=estimate.grams,
                filament_type=material.filament_type,
                filament_color=job.material_color,
                filament_mm=estimate.filament_mm,
                filament_density=material.density,
                filament_diameter=material.diameter,
                layer_height=float(process_keys.get("layer_height", "0.2") or 0.2),
                max_z=estimate.max_z,
                object_name=output_filename(job.source_filename, "stl").removesuffix(".stl"),
                bbox=sliced.bbox,
                generator=f"printfarm slicer ({sliced.slicer})",
            )
            try:
                content = build_bambu_project(sliced.gcode, info)
            except (ValueError, OSError) as error:
                raise SliceError("package", f"the Bambu project could not be written: {error}") from None
        else:
            content = sliced.gcode
        return SlicedFile(
            content=content,
            filename=output_filename(job.source_filename, kind),
            kind=kind,
            sha256=hashlib.sha256(content).hexdigest(),
            profile=profile.name,
            print_minutes=estimate.print_minutes,
            grams=estimate.grams,
            layers=estimate.layers,
            filament_mm=estimate.filament_mm,
        )


def build_pipeline(
    profiles_override_dir: Path | None, work_dir: Path, limits: ToolLimits | None = None
) -> SlicePipeline:
    """The pipeline with the real binaries (`openscad`, `prusa-slicer` on PATH) and the shipped profiles
    (each replaced by a same-named file in `profiles_override_dir`). The tools' versions are read here,
    once: a tool upgraded under a running replica is keyed as the old one until the replica restarts."""
    openscad, slicer = OpenScad(), PrusaSlicer()
    return SlicePipeline(
        profiles=load_profile_library(profiles_override_dir),
        openscad=openscad,
        slicer=slicer,
        work_dir=work_dir,
        limits=limits or ToolLimits(),
        tool_versions=read_tool_versions({"openscad": openscad.executable, "slicer": slicer.executable}),
    )
