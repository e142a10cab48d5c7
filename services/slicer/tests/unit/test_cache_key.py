"""The slice cache key: stable for the same inputs, different when anything that changes the file does."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from slicer.adapters.profile_files import shipped_profile_files
from slicer.domain.cache_key import slice_cache_key
from slicer.domain.job import SliceJob
from slicer.domain.profiles import ProfileLibrary

LIBRARY = ProfileLibrary(shipped_profile_files())
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


def key(job: SliceJob, library: ProfileLibrary = LIBRARY) -> str:
    return slice_cache_key(job, library.select(job.printer_model, job.material_type, job.fabmatic))


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
