"""A JobChanged's file is built once per distinct file and shared: it must equal what validating the job's
own view gives, for every job (numbers of any type included)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from contracts.queue.v1 import JobFile
from printqueue.domain import slicing
from printqueue.domain.model import Assignment, Job, Material
from printqueue.service_layer import messages

T0 = datetime(2026, 1, 1, tzinfo=UTC)
numbers = st.none() | st.sampled_from([0, 1, 1.0, 2.5, 30]) | st.floats(0, 100, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["gcode.3mf", "gcode"]), st.sampled_from(["a", "b"]), numbers, numbers),
                max_size=8))
def test_a_job_changed_file_is_the_validated_view_of_that_job(specs: list[tuple[str, str, object, object]]) -> None:
    for index, (kind, digest, minutes, grams) in enumerate(specs):
        job = Job(
            id=f"j{index}", order_id="o", order_number="1", line_item_id="l", line_position=0, sku_id="s", sku="S",
            part_id="p", part_index=0, part_name="P", copy_number=index + 1, material=Material("PLA"),
            parameters={}, file={"kind": kind, "sha256": digest * 64}, assignment=Assignment(), order_created_at=T0,
            created_at=T0, updated_at=T0, print_minutes=minutes, grams=grams,  # type: ignore[arg-type]
        )
        built = messages.job_changed(job).file
        expected = JobFile.model_validate(slicing.job_file(job))
        assert built == expected
        assert built is not None and built.model_dump_json() == expected.model_dump_json()
