"""Envelopes the outbox encodes around JSON a bulk writer rendered (`Outbox.encoded`) mean what the same
`Envelope` dumped by pydantic means, field by field and type by type, inside a trace or outside one."""

from __future__ import annotations

import itertools
import json
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from contracts.envelope import Envelope
from servicekit.outbox import Outbox

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

