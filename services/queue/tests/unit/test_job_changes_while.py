"""A big order's JobChanged are built, in their envelopes, while its COPY runs: the messages are each job's own,
in order, the write finishes before they are used, and a failed build stops the write instead of leaving it
running."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from contracts.envelope import ContractMessage, Envelope
from contracts.queue.v1 import JobChanged
from printqueue.adapters import orm
from printqueue.domain.model import Assignment, Job, Material
from printqueue.service_layer import handlers, messages
from servicekit.outbox import EncodedEnvelope, Outbox

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(index: int) -> Job:
    return Job(
        id=f"j{index:04d}", order_id="o", order_number="1", line_item_id="l", line_position=0, sku_id="s", sku="S",
        part_id="p", part_index=0, part_name="P", copy_number=index + 1, material=Material("PLA"), parameters={},
        file={"kind": "gcode.3mf", "sha256": "a" * 64}, assignment=Assignment(), order_created_at=T0,
        created_at=T0, updated_at=T0,
    )


class Encoding:
    """The one part of a unit of work the build uses: envelopes made by the real outbox, not emitted."""

    outbox = Outbox(orm.outbox, source="/services/queue")

    def encode(self, message_type: type[ContractMessage], data: list[tuple[str | None, str]]) -> list[EncodedEnvelope]:
        return self.outbox.encoded(message_type.SUBJECT, data)


async def test_the_messages_are_each_jobs_own_in_order_and_the_write_has_finished() -> None:
    jobs = [job(i) for i in range(2 * handlers._BUILD_STEP + 7)]
    steps: list[int] = []

    async def writing() -> None:
        for step in range(5):  # a write that needs the loop several times, as a COPY does
            steps.append(step)
            await asyncio.sleep(0)

    built = await handlers._job_changes_while(writing(), jobs, Encoding())  # type: ignore[arg-type]
    envelopes = [Envelope.model_validate_json(e.text) for e in built]
    assert [e.open(JobChanged) for e in envelopes] == [messages.job_changed(j) for j in jobs]
    assert [(e.type, e.subject) for e in envelopes] == [(JobChanged.SUBJECT, j.id) for j in jobs]
    assert steps == [0, 1, 2, 3, 4]


async def test_a_failed_build_cancels_the_write_and_raises() -> None:
    steps = handlers._BUILD_STEP + 3
    broken = replace(job(steps), status="no-such-status")  # type: ignore[arg-type]
    jobs = [job(i) for i in range(steps)] + [broken]  # fails after the write started
    stopped = asyncio.Event()
    started = asyncio.Event()

    async def writing() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    with pytest.raises(ValueError):
        await handlers._job_changes_while(writing(), jobs, Encoding())  # type: ignore[arg-type]
    assert started.is_set() and stopped.is_set()


async def test_a_failed_write_raises_after_the_build() -> None:
    async def writing() -> None:
        raise RuntimeError("COPY failed")

    with pytest.raises(RuntimeError, match="COPY failed"):
        await handlers._job_changes_while(writing(), [job(0)], Encoding())  # type: ignore[arg-type]
