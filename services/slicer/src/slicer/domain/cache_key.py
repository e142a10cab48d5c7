"""The key that makes "the same part, values, profile and material is sliced once" true.

sha256 over a canonical JSON document of every input that changes the printed file. Parameter values
keep their JSON type (`1`, `1.0`, `true` and `"1"` are different keys: OpenSCAD may treat them
differently), names are sorted, the material is normalised. A mesh (STL, 3MF) ignores parameters.
What changes the output besides the inputs is in the key too: the content of every profile file loaded
and the versions of the tools (OpenSCAD, the slicer) as they report them. `FORMAT` is bumped whenever
the pipeline's own output for the same inputs changes (packaging, header).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping

from slicer.domain.job import SliceJob
from slicer.domain.profiles import SelectedProfile, normalise_material

FORMAT = 1


def _canonical_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return {"repr": repr(value)}


def canonical_parameters(parameters: Mapping[str, object]) -> list[list[object]]:
    return [[str(name), _canonical_value(parameters[name])] for name in sorted(parameters, key=str)]


def slice_cache_key(job: SliceJob, profile: SelectedProfile, tool_versions: Mapping[str, str]) -> str:
    """`tool_versions`: {role: what the tool says its version is}, read once at start."""
    document = {
        "format": FORMAT,
        "source_sha256": job.source_sha256.lower(),
        "source_kind": job.source_kind,
        "parameters": canonical_parameters(job.parameters) if job.source_kind == "scad" else [],
        "profile": profile.name,
        "profile_sha256": profile.digest,
        "material_type": normalise_material(job.material_type),
        "material_color": (job.material_color or "").strip().upper(),
        "fabmatic": job.fabmatic,
        "tools": [[str(role), str(tool_versions[role])] for role in sorted(tool_versions)],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
