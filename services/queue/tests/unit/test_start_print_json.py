"""StartPrint's JSON rendered from a dispatched job's columns (`messages.StartPrintJson`) means what the pydantic
message's does, value by value and type by type (1, 1.0 and true stay apart), for varied jobs encoded one after
another by one encoder (its caches shared between them), and it refuses a file the contract refuses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.queue.v1 import StartPrint
from printqueue.domain.model import Assignment, Job, Material
from printqueue.service_layer import messages

from .json_values import T0, materials, moments, texts, typed, values

file_refs = st.fixed_dictionaries(
    {"sha256": texts, "filename": texts, "kind": st.sampled_from(["stl", "3mf", "gcode.3mf", "gcode", "scad"]),
     "size_bytes": st.integers(0, 2**40)},
    optional={"plate": st.none() | texts, "bucket": st.none() | texts, "unknown": values},
)


@st.composite
def dispatched_jobs(draw: st.DrawFn) -> Job:
    sliced = draw(st.booleans())
    return Job(
        id=draw(texts), order_id="o", order_number=draw(texts), line_item_id="l", line_position=0, sku_id="s",
        sku="S", part_id="p", part_index=0, part_name=draw(texts), copy_number=1, material=draw(materials),
        parameters=draw(st.dictionaries(texts, values, max_size=4)), file=draw(file_refs),
        assignment=Assignment(), order_created_at=T0, created_at=T0, updated_at=T0,
        fulfillment_date=draw(st.none() | st.dates(date(2000, 1, 1), date(2100, 1, 1))),
        status="assigned", printer_id=draw(texts), command_id=draw(texts),
        dispatch_attempts=draw(st.integers(0, 10**6)),
        slice_basis="basis" if sliced else None,
        sliced_file={"file": draw(file_refs), "profile": draw(st.none() | texts)} if sliced else None,
    )


@given(
    st.lists(st.tuples(dispatched_jobs(), moments, st.lists(st.integers(0, 254), max_size=5)), min_size=1, max_size=6),
    st.sampled_from([600, 600.0, 0.5, 1e20]),
)
def test_the_rendered_json_means_what_the_pydantic_message_does(
    batch: list[tuple[Job, datetime, list[int]]], deadline: float
) -> None:
    encode = messages.StartPrintJson(deadline)
    for job, issued_at, slots in batch + batch:  # encoded twice: the second time from the encoder's caches
        expected = messages.start_print(job, deadline, issued_at, slots)
        rendered = encode(job, issued_at, slots)
        assert typed(json.loads(rendered)) == typed(json.loads(expected.model_dump_json()))
        assert StartPrint.model_validate_json(rendered) == expected


def plain_job() -> Job:
    return Job(
        id="j", order_id="o", order_number="1", line_item_id="l", line_position=0, sku_id="s", sku="S", part_id="p",
        part_index=0, part_name="P", copy_number=1, material=Material("PLA"), parameters={},
        file={"kind": "gcode", "sha256": "a" * 64, "filename": "p.gcode", "size_bytes": 1}, assignment=Assignment(),
        order_created_at=T0, created_at=T0, updated_at=T0, status="assigned", printer_id="pr", command_id="c",
    )


@pytest.mark.parametrize("file", [{"kind": "pdf", "sha256": "a", "filename": "f", "size_bytes": 1}, {"kind": "stl"}])
def test_a_file_the_contract_refuses_is_refused(file: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        messages.StartPrintJson(600)(replace(plain_job(), file=file), T0)


def test_a_deadline_that_is_not_a_number_is_written_as_pydantic_writes_it() -> None:
    rendered = messages.StartPrintJson(float("inf"))(plain_job(), T0)
    assert json.loads(rendered) == json.loads(messages.start_print(plain_job(), float("inf"), T0).model_dump_json())
