"""Envelopes the outbox encodes around JSON a bulk writer rendered (`Outbox.encoded`) mean what the same
`Envelope` dumped by pydantic means, field by field and type by type, inside a trace or outside one; the relay
sends such text as it is when it can, else as an `Envelope` (claim check), whether handed over at commit or
read back from its row."""

from __future__ import annotations

import itertools
import json
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from contracts.envelope import MAX_INLINE_PAYLOAD, Envelope
from servicekit.outbox import Outbox, OutboxRelay

texts = st.none() | st.sampled_from(["", "é", 'q"uote', "new\nline", "\u2028", "🖨"]) | st.text(max_size=8)
data = st.dictionaries(st.text(max_size=4), st.none() | st.integers() | st.floats(allow_nan=False,
                       allow_infinity=False) | st.booleans() | st.text(max_size=4), max_size=4)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))]),
)
TABLE = sa.Table("outbox", sa.MetaData(), sa.Column("message_id", sa.Text))


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


@given(
    st.lists(st.tuples(texts, data), max_size=4), texts, texts, moments, st.booleans(),
    st.sampled_from(["queue.v1.job.changed", "x"]),
)
def test_an_encoded_envelope_means_what_pydantic_dumps(
    items: list[tuple[str | None, dict[str, Any]]], correlation: str | None, causation: str | None,
    now: datetime, traced: bool, subject: str,
) -> None:
    counter = itertools.count()
    outbox = Outbox(TABLE, source="/services/t\"est", ids=lambda: f"id-{next(counter)}", clock=lambda: now)
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    with trace.use_span(span) if traced else nullcontext():
        encoded = outbox.encoded(
            subject, [(sid, json.dumps(d)) for sid, d in items], correlation_id=correlation, causation_id=causation
        )
    assert [e.id for e in encoded] == [f"id-{n}" for n in range(len(items))]
    for e, (sid, d) in zip(encoded, items, strict=True):
        expected = Envelope(
            id=e.id, type=subject, source="/services/t\"est", time=now, subject=sid, data=d,
            correlationid=correlation, causationid=causation,
            traceparent=f"00-{0xABC:032x}-{0xDEF:016x}-01" if traced else None,
        )
        assert (e.type, e.traceparent) == (subject, expected.traceparent)
        assert typed(json.loads(e.text)) == typed(json.loads(expected.model_dump_json()))
        assert e.envelope() == expected



class Sent:
    """The relay's two ways out, recorded: `publish` (an Envelope, by claim check when big) and `publish_encoded`."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.texts: list[tuple[str, str, bytes, str | None]] = []

    async def publish(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    async def publish_encoded(self, subject: str, message_id: str, payload: bytes, traceparent: str | None) -> None:
        self.texts.append((subject, message_id, payload, traceparent))


async def test_encoded_text_goes_as_is_within_the_inline_limit_else_as_an_envelope_at_commit_and_from_a_row(
) -> None:
    outbox = Outbox(TABLE, source="/t", ids=iter(["small", "big"]).__next__, clock=lambda: datetime(2026, 1, 1))
    small, big = outbox.encoded(
        "x.v1.thing.happened", [(None, '{"v":"é"}'), (None, json.dumps({"v": "x" * MAX_INLINE_PAYLOAD}))]
    )
    for text_capable in (True, False):
        sent = Sent()
        relay = OutboxRelay(
            None, TABLE, sent.publish,  # type: ignore[arg-type]
            publish_encoded=sent.publish_encoded if text_capable else None,
        )
        for envelope in (small, big):
            await relay._publish_one(envelope)
            row = SimpleNamespace(subject=envelope.type, message_id=envelope.id, text=envelope.text, traceparent=None)
            await relay._publish_text(row.subject, row.message_id, row.text, row.traceparent)
        if text_capable:
            assert sent.texts == [("x.v1.thing.happened", "small", small.text.encode(), None)] * 2
            assert sent.envelopes == [big.envelope()] * 2
        else:
            assert sent.texts == []
            assert sent.envelopes == [small.envelope(), small.envelope(), big.envelope(), big.envelope()]
