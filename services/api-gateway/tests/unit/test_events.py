"""The live event stream: framing, resume from Last-Event-ID without gaps, heartbeats, slow clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from api_gateway.domain.events import (
    SOURCE_STREAMS,
    LoggedMessage,
    decode_position,
    encode_position,
    is_event_id,
    to_event,
)
from api_gateway.service_layer.event_hub import EventHub
from servicekit.testing import wait_until

from .api_gateway_fakes import MemoryEventLog
from .conftest import TOKEN, Harness, serving


@given(st.fixed_dictionaries({s: st.integers(min_value=0, max_value=2**53) for s in SOURCE_STREAMS}))
def test_positions_round_trip(position: dict[str, int]) -> None:
    assert decode_position(encode_position(position)) == position


def test_foreign_ids_are_not_positions() -> None:
    assert decode_position("") is None
    assert decode_position("o1.q2") is None
    assert decode_position("o1.q2.px") is None
    assert decode_position("hello world") is None
    assert decode_position("o\u00b2.q1.p1") is None  # isdigit() but not int()
    assert decode_position("o\u0661.q1.p1") is None  # an Arabic-Indic digit: int() would take it


def test_an_event_id_has_ascii_digits_in_range_whatever_its_streams() -> None:
    assert is_event_id("o1.q2.p3") and is_event_id("o1.q2") and is_event_id(" o0.x9 ")
    for text in ("", "o\u00b2.q1.p1", "o\u0661.q1.p1", "o1..q2", "o-1", "1.q2", "o99999999999999999999", "a b"):
        assert not is_event_id(text), text
    assert is_event_id(f"o{2**63 - 1}") and not is_event_id(f"o{2**63}")


@given(st.text())
def test_whatever_a_client_sends_decoding_it_never_raises(text: str) -> None:
    position = decode_position(text)
    assert position is None or is_event_id(text)


def test_only_public_changes_become_events() -> None:
    position = {"ORDERS": 3, "QUEUE": 1, "PRINTERS": 0}
    event = to_event(LoggedMessage("ORDERS", 3, "orders.v1.order.changed", {"id": "o1", "status": "queued"}), position)
    assert event is not None
    assert event.frame() == 'id: o3.q1.p0\nevent: order.updated\ndata: {"id":"o1","status":"queued"}\n\n'
    assert to_event(LoggedMessage("ORDERS", 4, "orders.v1.order.print_requested", {"x": 1}), position) is None
    names = {
        "orders.v1.order.completed": "order.completed",
        "queue.v1.job.changed": "job.updated",
        "printers.v1.printer.changed": "printer.updated",
    }
    for subject, name in names.items():
        converted = to_event(LoggedMessage("QUEUE", 1, subject, {"id": "x"}), position)
        assert converted is not None and converted.event == name


async def _next_event(frames: AsyncIterator[str]) -> tuple[str, str, dict[str, Any]]:
    """The next real event from a frame iterator, skipping comments and retry hints."""
    while True:
        frame = await asyncio.wait_for(anext(frames), timeout=5)
        fields = dict(line.split(": ", 1) for line in frame.strip().splitlines() if not line.startswith(":")
                      and ": " in line)
        if "event" in fields:
            return fields["id"], fields["event"], json.loads(fields["data"])


async def test_resume_replays_what_was_missed_then_goes_live_without_duplicates() -> None:
    log = MemoryEventLog()
    log.append("ORDERS", "orders.v1.order.changed", {"id": "old"})
    hub = EventHub(log, heartbeat_seconds=5)
    await hub.start()
    try:
        first = hub.frames(None)
        await anext(first)
        log.append("ORDERS", "orders.v1.order.changed", {"id": "o1"})
        seen_id, _, data = await _next_event(first)
        assert data == {"id": "o1"}
        await first.aclose()

        log.append("QUEUE", "queue.v1.job.changed", {"id": "j1"})
        log.append("ORDERS", "orders.v1.order.print_requested", {"id": "internal"})
        log.append("PRINTERS", "printers.v1.printer.changed", {"id": "p1"})
        await wait_until(lambda: hub.position["PRINTERS"] == 1, 5, "the hub to reach PRINTERS position 1")

        resumed = hub.frames(seen_id)
        await anext(resumed)
        replayed = [(await _next_event(resumed))[2]["id"] for _ in range(2)]
        assert sorted(replayed) == ["j1", "p1"]
        log.append("ORDERS", "orders.v1.order.completed", {"id": "o1"})
        last_id, name, data = await _next_event(resumed)
        assert (name, data) == ("order.completed", {"id": "o1"})
        assert decode_position(last_id) == {"ORDERS": 4, "QUEUE": 1, "PRINTERS": 1}
        await resumed.aclose()
    finally:
        await hub.stop()


async def test_a_slow_client_is_disconnected_not_buffered_forever() -> None:
    log = MemoryEventLog()
    hub = EventHub(log, client_queue=3, heartbeat_seconds=5)
    await hub.start()
    try:
        frames = hub.frames(None)
        await anext(frames)
        for n in range(10):
            hub.publish(LoggedMessage("QUEUE", n + 1, "queue.v1.job.changed", {"id": f"j{n}"}))
        rest = [frame async for frame in frames]
        assert rest == []
        assert hub.subscriptions == set()
    finally:
        await hub.stop()


async def test_heartbeats_keep_an_idle_stream_alive() -> None:
    hub = EventHub(MemoryEventLog(), heartbeat_seconds=0.01)
    await hub.start()
    try:
        frames = hub.frames(None)
        await anext(frames)
        assert await asyncio.wait_for(anext(frames), timeout=5) == ": heartbeat\n\n"
        await frames.aclose()
    finally:
        await hub.stop()


async def test_sse_over_http_with_last_event_id(harness: Harness) -> None:
    async with serving(harness.app()) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        refused = await client.get("/api/v1/events")
        assert refused.status_code == 401
        async with client.stream("GET", "/api/v1/events", headers=headers) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            lines = reply.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            harness.events.append("PRINTERS", "printers.v1.printer.changed", {"id": "p1", "state": "idle"})
            block = await _read_event(lines)
        assert block["event"] == "printer.updated"
        assert json.loads(block["data"]) == {"id": "p1", "state": "idle"}

        harness.events.append("QUEUE", "queue.v1.job.changed", {"id": "j1", "status": "queued"})
        async with client.stream("GET", "/api/v1/events", headers={**headers, "Last-Event-ID": block["id"]}) as again:
            missed = await _read_event(again.aiter_lines())
        assert missed["event"] == "job.updated"
        assert json.loads(missed["data"])["id"] == "j1"


async def _read_event(lines: AsyncIterator[str]) -> dict[str, str]:
    block: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(anext(lines), timeout=5)
        if line == "" and "event" in block:
            return block
        if line and not line.startswith(":") and ": " in line:
            key, value = line.split(": ", 1)
            block[key] = value


def test_job_events_carry_the_api_field_names() -> None:
    message = LoggedMessage(stream="QUEUE", seq=7, subject="queue.v1.job.changed", data={"id": "j1", "copy_number": 2})
    event = to_event(message, {"ORDERS": 0, "QUEUE": 7, "PRINTERS": 0})
    assert event is not None and event.event == "job.updated"
    assert event.data["copy"] == 2 and event.data["id"] == "j1"
