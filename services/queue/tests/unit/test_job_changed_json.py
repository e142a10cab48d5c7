"""JobChanged's JSON rendered from a job's columns (`messages.JobChangedJson`) means what the pydantic message's
does, value by value and type by type (1, 1.0 and true stay apart), for varied jobs encoded one after another
by one encoder (its caches shared between them), and it refuses what validation would refuse."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.queue.v1 import JobChanged
from printqueue.domain.model import Assignment, Job, Material
from printqueue.service_layer import messages

from .json_values import T0, materials, moments, texts, typed, values

numbers = st.none() | st.sampled_from([0, 1, 1.0, 2.5, 30]) | st.floats(0, 1e6, allow_nan=False)
assignments = st.one_of(
    st.just(Assignment()),
    st.builds(Assignment, st.just("printer"), texts, st.just(())),
    st.builds(Assignment, st.just("tags"), st.none(), st.lists(texts, max_size=3).map(tuple)),
)
files = st.one_of(
    st.fixed_dictionaries({"kind": st.sampled_from(["gcode.3mf", "gcode"]), "sha256": texts}),
    st.fixed_dictionaries({"kind": st.sampled_from(["scad", "stl", "3mf"]), "sha256": texts}),
)
sliced_files = st.none() | st.fixed_dictionaries(
    {"file": st.none() | st.fixed_dictionaries({"kind": st.just("gcode.3mf"), "sha256": texts}),
     "profile": st.none() | texts, "print_minutes": numbers, "grams": numbers}
)


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    file = draw(files)
    sliced = draw(sliced_files)
    return Job(
        id=draw(texts), order_id=draw(texts), order_number=draw(texts), line_item_id=draw(texts), line_position=0,
        sku_id=draw(texts), sku="S", part_id=draw(texts), part_index=0, part_name=draw(texts),
        copy_number=draw(st.integers(1, 10**6)), material=draw(materials),
        parameters=draw(st.dictionaries(texts, values, max_size=4)), file=file, assignment=draw(assignments),
        order_created_at=T0, created_at=draw(moments), updated_at=T0,
        grams=draw(numbers), print_minutes=draw(numbers),  # type: ignore[arg-type]
        priority=draw(st.sampled_from(["normal", "low"])),
        status=draw(st.sampled_from(["queued", "slicing", "assigned", "printing", "paused", "completed", "failed",
                                     "cancelled"])),
        printer_id=draw(st.none() | texts), progress_percent=draw(st.sampled_from([0, 0.0, 50, 12.5, 100.0])),
        error=draw(st.none() | texts), revision=draw(st.integers(1, 10**9)),
        started_at=draw(st.none() | moments), finished_at=draw(st.none() | moments),
        slice_basis=draw(st.none() | st.just("basis")) if sliced is not None else None, sliced_file=sliced,
    )


@given(st.lists(jobs(), min_size=1, max_size=6))
def test_the_rendered_json_means_what_the_pydantic_message_does(batch: list[Job]) -> None:
    encode = messages.JobChangedJson()
    for job in batch + batch:  # encoded twice: the second time from the encoder's caches
        expected = messages.job_changed(job)
        rendered = encode(job)
        assert typed(json.loads(rendered)) == typed(json.loads(expected.model_dump_json()))
        assert JobChanged.model_validate_json(rendered) == expected


def plain_job() -> Job:
    return Job(
        id="j", order_id="o", order_number="1", line_item_id="l", line_position=0, sku_id="s", sku="S", part_id="p",
        part_index=0, part_name="P", copy_number=1, material=Material("PLA"), parameters={},
        file={"kind": "gcode", "sha256": "a" * 64}, assignment=Assignment(), order_created_at=T0, created_at=T0,
        updated_at=T0,
    )


def test_equal_but_differently_typed_values_keep_their_own_text() -> None:
    encode = messages.JobChangedJson()
    rendered = [json.loads(encode(replace(plain_job(), parameters={"n": n}))) for n in (1, 1.0, True, 1)]
    assert [typed(r["parameters"]) for r in rendered] == [
        {"n": ("int", 1)}, {"n": ("float", 1.0)}, {"n": ("bool", True)}, {"n": ("int", 1)}
    ]


def test_the_same_moment_at_two_offsets_keeps_each_its_own_text() -> None:
    """Found by the property test: 00:59+02:00 == 22:59Z as dict keys, so the second took the first's text."""
    encode = messages.JobChangedJson()
    utc = datetime(2005, 12, 31, 22, 59, 59, 999999, tzinfo=UTC)
    for moment in (utc, utc.astimezone(timezone(timedelta(hours=2))), utc):
        job = replace(plain_job(), created_at=moment)
        assert json.loads(encode(job))["created_at"] == json.loads(messages.job_changed(job).model_dump_json())[
            "created_at"
        ]


@pytest.mark.parametrize("progress", [float("nan"), float("inf"), float("-inf")])
def test_a_progress_that_is_not_a_number_is_written_as_pydantic_writes_it(progress: float) -> None:
    job = replace(plain_job(), progress_percent=progress)
    rendered = messages.JobChangedJson()(job)
    assert json.loads(rendered) == json.loads(messages.job_changed(job).model_dump_json())
    assert json.loads(rendered)["progress_percent"] is None


@pytest.mark.parametrize("change", [{"status": "lost"}, {"priority": "urgent"}])
def test_a_status_or_priority_outside_the_contract_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        messages.JobChangedJson()(replace(plain_job(), **change))  # type: ignore[arg-type]
