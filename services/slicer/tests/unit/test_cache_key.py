"""The slice cache key: stable for the same inputs, different when anything that changes the file does
(the inputs, the profile files' content, the tools' versions)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicer.adapters.openscad import OpenScad
from slicer.adapters.profile_files import shipped_profile_files
from slicer.adapters.prusa_slicer import PrusaSlicer
from slicer.adapters.tool_versions import NOT_INSTALLED, read_tool_version, version_line
from slicer.domain.cache_key import slice_cache_key
from slicer.domain.job import SliceJob
from slicer.domain.profiles import ProfileLibrary
from slicer.service_layer.pipeline import SlicePipeline, ToolLimits, build_pipeline

LIBRARY = ProfileLibrary(shipped_profile_files())
TOOLS = {"openscad": "OpenSCAD version 2021.01", "slicer": "PrusaSlicer-2.5.0+UNKNOWN based on Slic3r"}
JOB = SliceJob(
    source_sha256="a" * 64,
    source_kind="scad",
    source_filename="tag.scad",
    parameters={"label": "Ann", "size": 5, "bold": True},
    printer_model="X1C",
    fabmatic=False,
    material_type="PLA",
    material_color="#FF0000",
)


def key(job: SliceJob, library: ProfileLibrary = LIBRARY, tools: dict[str, str] = TOOLS) -> str:
    return slice_cache_key(job, library.select(job.printer_model, job.material_type, job.fabmatic), tools)


def test_stable_and_hex() -> None:
    reordered = dataclasses.replace(JOB, parameters={"bold": True, "size": 5, "label": "Ann"})
    assert key(JOB) == key(reordered) == key(JOB)
    assert len(key(JOB)) == 64 and int(key(JOB), 16) >= 0


def test_spellings_of_the_same_inputs_share_a_key() -> None:
    same = dataclasses.replace(JOB, printer_model="Bambu Lab X1 Carbon", material_type="pla", material_color="#ff0000")
    assert key(same) == key(JOB)


def test_every_input_changes_the_key() -> None:
    variants = [
        dataclasses.replace(JOB, source_sha256="b" * 64),
        dataclasses.replace(JOB, parameters={**JOB.parameters, "label": "Bob"}),
        dataclasses.replace(JOB, parameters={**JOB.parameters, "size": 5.0}),
        dataclasses.replace(JOB, parameters={**JOB.parameters, "size": "5"}),
        dataclasses.replace(JOB, parameters={**JOB.parameters, "bold": 1}),
        dataclasses.replace(JOB, parameters={"label": "Ann", "size": 5}),
        dataclasses.replace(JOB, printer_model="P1S"),
        dataclasses.replace(JOB, fabmatic=True),
        dataclasses.replace(JOB, material_type="PETG"),
        dataclasses.replace(JOB, material_color="#00FF00"),
        dataclasses.replace(JOB, material_color=None),
        dataclasses.replace(JOB, source_kind="stl"),
    ]
    keys = {key(v) for v in variants} | {key(JOB)}
    assert len(keys) == len(variants) + 1


def test_a_changed_profile_file_changes_the_key() -> None:
    files = shipped_profile_files()
    files["print/standard-0.20mm.ini"] += "\nfill_density = 20%\n"
    assert key(JOB, ProfileLibrary(files)) != key(JOB)


def test_every_profile_file_s_content_is_in_the_key() -> None:
    selected = LIBRARY.select(JOB.printer_model, JOB.material_type, JOB.fabmatic)
    assert len(selected.files) >= 3, "printer, filament and print settings are loaded"
    keys = {key(JOB)}
    for loaded in selected.files:
        files = shipped_profile_files()
        files[loaded.name] += "\n; a comment changes nothing PrusaSlicer does, yet the file is another\n"
        keys.add(key(JOB, ProfileLibrary(files)))
    assert len(keys) == len(selected.files) + 1


def test_the_tools_versions_are_in_the_key() -> None:
    variants = [
        {**TOOLS, "openscad": "OpenSCAD version 2021.02"},
        {**TOOLS, "slicer": "PrusaSlicer-2.6.0+linux-x64-GTK3"},
        {**TOOLS, "slicer": NOT_INSTALLED},
        {"openscad": TOOLS["openscad"]},
    ]
    keys = {key(JOB, tools=v) for v in variants} | {key(JOB)}
    assert len(keys) == len(variants) + 1
    assert key(JOB, tools=dict(reversed(list(TOOLS.items())))) == key(JOB), "the roles' order does not matter"
    stl = dataclasses.replace(JOB, source_kind="stl", parameters={})
    assert key(stl, tools={**TOOLS, "slicer": "PrusaSlicer-2.6.0"}) != key(stl), "a mesh is keyed by its slicer too"


def test_the_pipeline_keys_with_the_versions_it_was_built_with(tmp_path: Path) -> None:
    def pipeline(tools: dict[str, str]) -> SlicePipeline:
        return SlicePipeline(LIBRARY, OpenScad(), PrusaSlicer(), tmp_path, ToolLimits(), tools)

    assert pipeline(TOOLS).cache_key(JOB) == key(JOB)
    assert pipeline({**TOOLS, "openscad": "OpenSCAD version 2025.01"}).cache_key(JOB) != key(JOB)


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("OpenSCAD version 2021.01\n", "OpenSCAD version 2021.01"),
        ("[2026-12-05 00:39:17.176120] [0x00007f7b712d0d80] [trace]   Initializing StaticPrintConfigs\n"
         "PrusaSlicer-2.5.0+UNKNOWN based on Slic3r (with GUI support)\nhttps://github.com/prusa3d/PrusaSlicer\n\n"
         "Usage: prusa-slicer [ ACTIONS ] [ TRANSFORM ] [ OPTIONS ] [ file.stl ... ]\n",
         "PrusaSlicer-2.5.0+UNKNOWN based on Slic3r (with GUI support)"),
        ("PrusaSlicer-2.8.1+linux-x64-GTK3\n", "PrusaSlicer-2.8.1+linux-x64-GTK3"),
        ("Unknown option --version\n", None),
        ("", None),
    ],
)
def test_the_version_is_the_first_line_naming_one(output: str, line: str | None) -> None:
    assert version_line(output) == line


def test_the_installed_tools_report_a_version_and_a_missing_one_says_so(tmp_path: Path) -> None:
    assert read_tool_version("printfarm-no-such-tool") == NOT_INSTALLED
    built = build_pipeline(None, tmp_path)
    assert set(built.tool_versions) == {"openscad", "slicer"}
    for tool in ("openscad", "prusa-slicer"):
        if shutil.which(tool) is None:
            continue
        reported = read_tool_version(tool)
        assert re.search(r"\d+\.\d+", reported), (tool, reported)
        assert read_tool_version(tool) == reported, "the same binary reports the same version"
        role = "openscad" if tool == "openscad" else "slicer"
        assert built.tool_versions[role] == reported


def test_a_mesh_ignores_parameters() -> None:
    stl = dataclasses.replace(JOB, source_kind="stl", parameters={})
    assert key(dataclasses.replace(stl, parameters={"label": "x"})) == key(stl)


@given(
    st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(), st.floats(), st.booleans()), max_size=4)
)
def test_any_parameters_give_a_stable_key(parameters: dict[str, object]) -> None:
    job = dataclasses.replace(JOB, parameters=parameters)
    again = dataclasses.replace(JOB, parameters=dict(reversed(list(parameters.items()))))
    assert key(job) == key(again)
