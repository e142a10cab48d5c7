"""Status reports that wait for a writer go together in one transaction; at most `writers` transactions at once;
a failed batch fails only the reports that fail alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from printer_gateway.domain.commands import ObserveStatus
from printer_gateway.domain.printer_status import PrinterStatus
from printer_gateway.service_layer.status_batches import StatusBatches
from servicekit.testing import wait_until

IDLE = PrinterStatus(online=True, state="idle", gcode_state="IDLE")


def report(printer_id: str, epoch: int = 1) -> ObserveStatus:
    return ObserveStatus(printer_id, IDLE, epoch, "gw-1")


class Database:
    """Each transaction waits until let through; records which printers it wrote."""

    def __init__(self, *, stale: frozenset[str] = frozenset(), bad: frozenset[str] = frozenset()) -> None:
        self.transactions: list[list[str]] = []
        self.in_flight, self.most = 0, 0
        self.gate = asyncio.Event()
        self.stale, self.bad = stale, bad

    async def write(self, cmds: Sequence[ObserveStatus]) -> frozenset[str]:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.gate.wait()
            ids = [cmd.printer_id for cmd in cmds]
            if self.bad & set(ids):
                raise ValueError("a report the database refuses")
            self.transactions.append(ids)
            return self.stale & set(ids)
        finally:
            self.in_flight -= 1


async def begun(batches: StatusBatches, database: Database, printer_id: str) -> asyncio.Task[bool]:
    """A report whose transaction has begun (and waits for the database)."""
    busy = database.in_flight
    write = asyncio.create_task(batches.write(report(printer_id)))
    await wait_until(lambda: database.in_flight == busy + 1, 5, f"{printer_id}'s transaction began", interval=0.001)
    return write


async def test_reports_waiting_for_a_busy_writer_go_together_in_the_next_transaction() -> None:
    database = Database()
    batches = StatusBatches(database.write, writers=2, most=64)

    first = await begun(batches, database, "a")
    second = await begun(batches, database, "b")
    rest = [asyncio.create_task(batches.write(report(f"p{n:02}"))) for n in range(20)]
    await wait_until(lambda: all(not t.done() for t in rest), 5, "the rest waiting", interval=0.001)
    database.gate.set()

    assert await asyncio.gather(first, second, *rest) == [True] * 22
    assert database.most == 2
    assert sorted(database.transactions) == [["a"], ["b"], [f"p{n:02}" for n in range(20)]]


async def test_a_transaction_writes_at_most_the_batch_limit() -> None:
    database = Database()
    batches = StatusBatches(database.write, writers=1, most=3)
    writes = [asyncio.create_task(batches.write(report(f"p{n}"))) for n in range(7)]
    database.gate.set()

    assert await asyncio.gather(*writes) == [True] * 7
    assert [len(t) for t in database.transactions] == [3, 3, 1]


async def test_a_printer_a_newer_lease_holds_is_answered_false_and_the_others_true() -> None:
    database = Database(stale=frozenset({"b"}))
    database.gate.set()
    batches = StatusBatches(database.write, writers=1, most=64)

    assert await asyncio.gather(*(batches.write(report(p)) for p in "abc")) == [True, False, True]


async def test_a_report_that_fails_fails_alone_and_the_rest_of_its_batch_is_written() -> None:
    database = Database(bad=frozenset({"b"}))
    database.gate.set()
    batches = StatusBatches(database.write, writers=1, most=64)

    outcomes = await asyncio.gather(*(batches.write(report(p)) for p in "abc"), return_exceptions=True)

    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], ValueError)
    assert sorted(p for transaction in database.transactions for p in transaction) == ["a", "c"]


async def test_a_report_whose_caller_left_before_its_turn_is_not_written() -> None:
    database = Database()
    batches = StatusBatches(database.write, writers=1, most=64)
    first = await begun(batches, database, "a")
    gone = asyncio.create_task(batches.write(report("gone")))
    kept = asyncio.create_task(batches.write(report("kept")))
    await wait_until(lambda: len(batches._waiting) == 2, 5, "both waiting", interval=0.001)
    gone.cancel()
    database.gate.set()

    assert await first is True and await kept is True
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert database.transactions == [["a"], ["kept"]]
    await wait_until(lambda: batches.in_flight == 0, 5, "the writer ended", interval=0.001)


async def test_a_report_right_after_the_last_writer_finished_is_written() -> None:
    """The caller of the last report resumes before its writer's task is done: its next report must start a
    writer, not wait for one that has already stopped looking."""
    database = Database()
    database.gate.set()
    batches = StatusBatches(database.write, writers=1, most=64)

    assert await batches.write(report("a")) is True
    async with asyncio.timeout(5):  # not wait_for: its new task would start only after the writer's task ended
        assert await batches.write(report("b")) is True
    assert database.transactions == [["a"], ["b"]]


async def test_a_writer_stopped_mid_write_does_not_leave_its_callers_waiting() -> None:
    database = Database()  # never let through
    batches = StatusBatches(database.write, writers=1, most=64)
    caller = await begun(batches, database, "a")

    for writer in list(batches._tasks):
        writer.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 5)
    assert batches.in_flight == 0
