"""Transactional outbox: messages are rows committed with the change, then relayed to JetStream.

The relay publishes every unpublished row with `Nats-Msg-Id` = the envelope id, so a crash between
publish and marking the row published only yields a duplicate that JetStream's duplicate window
drops. Several relays (replicas) share the table through `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import MAX_INLINE_PAYLOAD, ContractMessage, Envelope
from servicekit.driver_statements import DriverStatement
from servicekit.ids import Clock, IdFactory, new_id, utc_now
from servicekit.json_text import dumps, quote, time_text
from servicekit.metrics import ServiceMetrics
from servicekit.tracing import current_traceparent

log = logging.getLogger(__name__)

Publish = Callable[[Envelope], Awaitable[None]]
PublishEncoded = Callable[[str, str, bytes, str | None], Awaitable[None]]
"""(subject, message id, the envelope's JSON, its traceparent): `Bus.publish_encoded`."""


class EncodedEnvelope(NamedTuple):
    """An envelope already rendered as JSON text, for a bulk writer that renders its messages' `data` from a
    template: validating and dumping 20,000 pydantic messages and envelopes was most of a big order's CPU. The
    outbox stores the text as it stores an `Envelope`'s (the column is `json`: the relay sends it as written). A
    tuple: a frozen dataclass's construction alone cost a tenth of the encoding."""

    id: str
    type: str
    text: str
    traceparent: str | None

    def envelope(self) -> Envelope:
        return Envelope.model_validate_json(self.text)


Pending = Envelope | EncodedEnvelope
"""What a unit of work hands the outbox: envelopes, or envelopes already encoded."""

class Outbox:
    """Writes envelopes into the outbox table inside the caller's transaction."""

    def __init__(self, table: sa.Table, source: str, ids: IdFactory = new_id, clock: Clock = utc_now) -> None:
        self.table, self.source, self.ids, self.clock = table, source, ids, clock
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        self._insert = DriverStatement(
            sa.text(
                f"INSERT INTO {name} (message_id, subject, envelope, traceparent) SELECT m, s, CAST(e AS json), t"
                " FROM unnest(CAST(:ids AS text[]), CAST(:subjects AS text[]), CAST(:envelopes AS text[]),"
                " CAST(:traceparents AS text[])) AS x(m, s, e, t)"
            )
        )
        """Built once, run on the driver: every transaction that emits runs it."""

    def envelope(
        self,
        message: ContractMessage,
        *,
        subject_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Envelope:
        return Envelope(
            id=self.ids(),
            type=message.SUBJECT,
            source=self.source,
            time=self.clock(),
            subject=subject_id,
            data=message.model_dump(mode="json"),
            correlationid=correlation_id,
            causationid=causation_id,
            traceparent=current_traceparent(),
        )

    def encoded(
        self,
        subject: str,
        data: Iterable[tuple[str | None, str]],
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> list[EncodedEnvelope]:
        """Envelopes of one subject around `data`, (subject id, the message's JSON) pairs the caller rendered:
        the fields they share (source, time, trace, causation) are encoded once for all of them."""
        traceparent = current_traceparent()
        shared = (
            f',"type":{dumps(subject)},"source":{dumps(self.source)},"time":{time_text(self.clock())}'
            f',"datacontenttype":"application/json","dataref":null,"correlationid":{dumps(correlation_id)}'
            f',"causationid":{dumps(causation_id)},"traceparent":{dumps(traceparent)},"subject":'
        )
        out: list[EncodedEnvelope] = []
        for subject_id, text in data:
            message_id = self.ids()
            about = "null" if subject_id is None else quote(subject_id)
            out.append(EncodedEnvelope(
                message_id,
                subject,
                f'{{"specversion":"1.0","id":{quote(message_id)}{shared}{about},"data":{text}}}',
                traceparent,
            ))
        return out

    async def add(self, session: AsyncSession, envelopes: Sequence[Pending]) -> None:
        """One statement however many messages, each envelope serialised by pydantic straight to JSON text.
        Big batches (a 20,000-job order writes 20,000) go by COPY, serialised as the driver sends them, so
        PostgreSQL parses the first envelopes' JSON while later ones are still being serialised."""
        if not envelopes:
            return
        if len(envelopes) >= COPY_FROM:
            connection = await session.connection()
            driver: Any = (await connection.get_raw_connection()).driver_connection
            if driver.is_in_transaction():  # a COPY outside the caller's transaction would commit on its own
                await driver.copy_records_to_table(
                    self.table.name,
                    schema_name=self.table.schema,
                    columns=_COPY_COLUMNS,
                    records=((e.id, e.type, _text(e), e.traceparent) for e in envelopes),
                )
                return
        await self._insert.execute(
            session,
            {
                "ids": [e.id for e in envelopes],
                "subjects": [e.type for e in envelopes],
                "envelopes": [_text(e) for e in envelopes],
                "traceparents": [e.traceparent for e in envelopes],
            },
        )


def _text(envelope: Pending) -> str:
    return envelope.text if isinstance(envelope, EncodedEnvelope) else envelope.model_dump_json()


COPY_FROM = 500
"""From this many envelopes in one transaction, `Outbox.add` writes them by COPY instead of one INSERT."""

_COPY_COLUMNS = ("message_id", "subject", "envelope", "traceparent")


class OutboxRelay:
    """Background task that drains the outbox into JetStream; `wake()` after a commit makes it immediate."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: sa.Table,
        publish: Publish,
        *,
        batch_size: int = 200,
        idle_poll_seconds: float = 0.5,
        keep_published_for: float = 3600.0,
        in_flight: int = 64,
        metrics: ServiceMetrics | None = None,
        publish_encoded: PublishEncoded | None = None,
    ) -> None:
        """Given `publish_encoded`, the relay sends each row's stored JSON text as it is instead of decoding it,
        validating an Envelope and encoding that again: most of a big backlog's CPU. A row over the inline limit
        still goes through `publish` (its claim check)."""
        self.sessions, self.table, self.publish = sessions, table, publish
        self.publish_encoded = publish_encoded
        self.batch_size, self.idle_poll_seconds = batch_size, idle_poll_seconds
        self.keep_published_for = keep_published_for
        self.in_flight = in_flight
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._direct: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.published = 0
        self._mark_published = (
            f"UPDATE {table.fullname} SET published_at = now()"
            " WHERE message_id = ANY($1::text[]) AND published_at IS NULL"
        )

    def wake(self) -> None:
        self._wake.set()

    def publish_committed(self, envelopes: list[Pending]) -> None:
        """A transaction that wrote `envelopes` to the outbox has committed: publish them now, from memory, and
        mark their rows published. Saves the relay's round trip (read the rows back, then publish) on the path
        of every message, e.g. a printer ready → its start command. Big batches, a stopping relay and any
        failure fall back to the relay, which publishes whatever is still unmarked (a message published twice
        has one `Nats-Msg-Id`, so JetStream keeps one)."""
        if self._stopping or len(envelopes) > self.in_flight:
            self.wake()
            return
        task = asyncio.create_task(self._publish_direct(envelopes), name="outbox-direct")
        self._direct.add(task)
        task.add_done_callback(self._direct.discard)

    async def _publish_direct(self, envelopes: list[Pending]) -> None:
        results = await asyncio.gather(*(self._publish_one(e) for e in envelopes), return_exceptions=True)
        sent = [e.id for e, r in zip(envelopes, results, strict=True) if not isinstance(r, BaseException)]
        if len(sent) < len(envelopes):
            self.wake()
        if not sent:
            return
        try:
            async with self.sessions() as session:
                # One statement, its own transaction, straight on the driver: a session's BEGIN, UPDATE and COMMIT
                # (and building an IN statement for each set of ids) were most of the relay's CPU per message.
                connection = await session.connection()
                driver: Any = (await connection.get_raw_connection()).driver_connection
                await driver.execute(self._mark_published, sent)
        except Exception:
            log.warning("marking %s directly published outbox rows failed; the relay publishes them again", len(sent))
            self.wake()
            return
        self.published += len(sent)
        if self.metrics is not None:
            self.metrics.outbox_published.inc(len(sent))

    async def _publish_one(self, envelope: Pending) -> None:
        if not isinstance(envelope, EncodedEnvelope):
            await self.publish(envelope)
            return
        await self._publish_text(envelope.type, envelope.id, envelope.text, envelope.traceparent)

    async def _publish_text(self, subject: str, message_id: str, text: str, traceparent: str | None) -> None:
        """An envelope's JSON (encoded at commit, or a row as stored) is sent as it is when it fits inline and
        the bus can send text; otherwise it is decoded into an `Envelope` for `publish` (its claim check)."""
        payload = text.encode()
        if self.publish_encoded is not None and len(payload) <= MAX_INLINE_PAYLOAD:
            await self.publish_encoded(subject, message_id, payload, traceparent)
        else:
            await self.publish(Envelope.model_validate_json(payload))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._direct:
            await asyncio.wait(list(self._direct), timeout=5)
        if self._task:
            await asyncio.wait([self._task], timeout=5)
            self._task.cancel()

    async def _run(self) -> None:
        cycles = 0
        while not self._stopping:
            try:
                sent = await self.relay_once()
                cycles += 1
                if cycles % 200 == 0:
                    await self.prune()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                sent = 0
                await asyncio.sleep(1.0)
            if sent < self.batch_size:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_seconds)
                except TimeoutError:
                    pass
                self._wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch, oldest first, with up to `in_flight` publishes awaiting their stream acks at
        once (one at a time, 20,000 rows would take a round trip each). A window stops the batch at its
        first failure; the failed rows stay unpublished and go out again on a later pass. Returns rows sent."""
        t = self.table
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(
                        t.c.seq, t.c.message_id, t.c.subject, sa.cast(t.c.envelope, sa.Text).label("text"),
                        t.c.traceparent,
                    )
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            sent: list[int] = []
            for start in range(0, len(rows), self.in_flight):
                window = rows[start : start + self.in_flight]
                results = await asyncio.gather(
                    *(self._publish_text(row.subject, row.message_id, row.text, row.traceparent) for row in window),
                    return_exceptions=True,
                )
                failed = [(row.seq, r) for row, r in zip(window, results, strict=True) if isinstance(r, BaseException)]
                sent += [row.seq for row, r in zip(window, results, strict=True) if not isinstance(r, BaseException)]
                for seq, exc in failed:
                    log.warning("publish of outbox row %s failed: %s", seq, exc)
                    await session.execute(
                        sa.update(t).where(t.c.seq == seq).values(attempts=t.c.attempts + 1, last_error=str(exc))
                    )
                if failed:
                    if self.metrics is not None:
                        self.metrics.outbox_publish_failures.inc(len(failed))
                    break
            if sent:
                await session.execute(sa.update(t).where(t.c.seq.in_(sent)).values(published_at=sa.func.now()))
        self.published += len(sent)
        if self.metrics is not None:
            self.metrics.outbox_published.inc(len(sent))
        return len(sent)

    async def refresh_backlog(self, metrics: ServiceMetrics) -> None:
        """Backlog and oldest unpublished row's age, for the gauges (the partial index makes this cheap)."""
        t = self.table
        async with self.sessions() as session:
            count, age = (
                await session.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(sa.func.extract("epoch", sa.func.now() - sa.func.min(t.c.created_at)), 0),
                    ).where(t.c.published_at.is_(None))
                )
            ).one()
        metrics.outbox_backlog.set(count)
        metrics.outbox_oldest_age.set(max(0.0, float(age)))

    async def prune(self) -> None:
        t = self.table
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.delete(t).where(
                    t.c.published_at < sa.func.now() - sa.text(f"interval '{int(self.keep_published_for)} seconds'")
                )
            )


def encode(envelope: Envelope) -> bytes:
    return json.dumps(envelope.model_dump(mode="json"), separators=(",", ":")).encode()
