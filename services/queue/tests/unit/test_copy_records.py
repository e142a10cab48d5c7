"""COPY records of jobs: each is `job_values` in `COPY_COLUMNS` order, its JSON columns as the text
`json.dumps` makes of each job's own value, however the encoded texts are shared between jobs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from printqueue.adapters.mappers import COPY_COLUMNS, copy_records, job_values
from printqueue.domain.model import Assignment, Job, Material

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JSON_COLUMNS = {"parameters", "file", "assignment", "sliced_file"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, -1.0, 2.5]),
    st.sampled_from(["", "a", "1"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=6,
)
json_objects = st.dictionaries(st.sampled_from(["size", "kind", "key"]), values, max_size=3)


def job(index: int, parameters: dict[str, Any], file: dict[str, Any], sliced: dict[str, Any] | None) -> Job:
    return Job(
        id=f"j{index}", order_id="o", order_number="1", line_item_id="l", line_position=0, sku_id="s", sku="S",
        part_id="p", part_index=0, part_name="P", copy_number=index + 1, material=Material("PLA"),
        parameters=parameters, file=file, assignment=Assignment(), order_created_at=T0, created_at=T0,
        updated_at=T0, sliced_file=sliced,
    )


@given(st.lists(st.tuples(json_objects, json_objects, st.none() | json_objects), max_size=12))
def test_every_record_is_the_jobs_values_with_its_own_json_text(
    specs: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]],
) -> None:
    jobs = [job(i, *spec) for i, spec in enumerate(specs)]
    records = list(copy_records(jobs))
    assert len(records) == len(jobs)
    for record, one in zip(records, jobs, strict=True):
        values = job_values(one)
        assert list(values) == list(COPY_COLUMNS)
        for column, field in zip(COPY_COLUMNS, record, strict=True):
            if column in JSON_COLUMNS and values[column] is not None:
                assert field == json.dumps(values[column]), column
            else:
                assert field == values[column], column


def test_equal_but_differently_typed_values_keep_their_own_text() -> None:
    """1 == 1.0 == True in Python, but JSON tells them apart: each job's text is its own value's."""
    jobs = [job(i, {"n": n}, {"kind": "gcode"}, None) for i, n in enumerate([1, 1.0, True, 1])]
    assert [record[COPY_COLUMNS.index("parameters")] for record in copy_records(jobs)] == [
        '{"n": 1}', '{"n": 1.0}', '{"n": true}', '{"n": 1}'
    ]
