"""The outbox/inbox pair against real NATS JetStream and PostgreSQL (issue 2's messaging promises)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.js.api import DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from contracts.envelope import DEAD_LETTER_PREFIX, Envelope
from devstack.nats_server import NatsServer
from devstack.ports import free_ports
from devstack.postgres import EmbeddedPostgres, database_url, ensure_databases
from servicekit import dead_letters
from servicekit.database import create_engine, session_factory
from servicekit.inbox import Inbox, claiming
from servicekit.messaging import Bus
from servicekit.outbox import COPY_FROM, EncodedEnvelope, Outbox, OutboxRelay
from servicekit.testing import wait_until

from .messaging_probe import ProbeHappened, ProbeUnitOfWork, effects, inbox, metadata, outbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[str, str]]:
    """(nats url, postgres server url): the `*_URL` servers when set, else embedded ones.

    In a folder outside pytest's temp root: as root PostgreSQL runs as another account, which needs to pass
    through that root, and each pytest starting beside this one (`make test` runs three) closes it again."""
    root = Path(tempfile.mkdtemp(prefix="printfarm-messaging-"))
    started: list[Any] = []
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        port, monitor = free_ports(2)
        server = NatsServer(port, monitor, root / "nats", root / "nats.log")
        await server.start(timeout=30)
        started.append(server)
        nats_url = server.url
    pg_url = os.environ.get("DATABASE_URL")
    if not pg_url:
        pg = EmbeddedPostgres(root / "pg", root / "pg.log", fsync=False, reuse_initdb=True)
        await pg.start(timeout=60)
        started.append(pg)
        pg_url = pg.server_url
    yield nats_url, pg_url
    for server in reversed(started):
        await server.stop(timeout=20)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def database(servers: tuple[str, str]) -> str:
    name = f"probe_{uuid.uuid4().hex[:12]}"
    await ensure_databases(servers[1], [name])
    url = database_url(servers[1], name)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    return url


class Probe:
    """A bus, an outbox relay and a consumer around the probe schema, like one service process."""

    def __init__(self, nats_url: str, db_url: str, durable: str) -> None:
        self.engine = create_engine(db_url)
        self.sessions = session_factory(self.engine)
        self.bus = Bus(nats_url, "probe", max_deliver=3, ack_wait=5)
        self.outbox = Outbox(outbox, source="/probe")
        self.relay = OutboxRelay(
            self.sessions, outbox, self.bus.publish, idle_poll_seconds=0.1, publish_encoded=self.bus.publish_encoded
        )
        self.durable = durable
        self.calls = 0

    def uow(self) -> ProbeUnitOfWork:
        return ProbeUnitOfWork(self.sessions, self.outbox, Inbox(metadata.tables["inbox"]), self.relay.wake)

    async def effects(self, probe_id: str) -> list[int]:
        async with self.sessions() as session:
            rows = await session.execute(sa.select(effects.c.value).where(effects.c.probe_id == probe_id))
            return [r[0] for r in rows]

    async def close(self) -> None:
        await self.bus.close()
        await self.relay.stop()
        await self.engine.dispose()


@pytest.fixture
async def probe(servers: tuple[str, str], database: str) -> AsyncIterator[Probe]:
    p = Probe(servers[0], database, f"probe__{uuid.uuid4().hex[:8]}")
    await p.bus.connect()
    yield p
    await p.close()


async def stream_messages(nats_url: str, subject: str, probe_id: str, timeout: float = 1.0) -> list[Any]:
    """Every message on `subject` whose data names `probe_id`, read from the stream's start."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, deliver_policy=DeliverPolicy.ALL, ordered_consumer=True)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                return found
            if probe_id.encode() in msg.data:
                found.append(msg)
    finally:
        await nc.close()


async def test_committed_message_is_published_after_the_process_died_before_publishing(
    probe: Probe, database: str, servers: tuple[str, str]
) -> None:
    probe_id = uuid.uuid4().hex
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from messaging_probe import ProbeHappened, outbox, ProbeUnitOfWork, metadata
        from servicekit.database import create_engine, session_factory
        from servicekit.inbox import Inbox, claiming
        from servicekit.outbox import Outbox

        async def main():
            engine = create_engine({database!r})
            uow = ProbeUnitOfWork(session_factory(engine), Outbox(outbox, "/probe"), Inbox(metadata.tables["inbox"]))
            async with uow:
                await uow.record({probe_id!r}, 1)
                uow.emit(ProbeHappened(probe_id={probe_id!r}, value=1))
                await uow.commit()
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == -9, stderr.decode()[-2000:]
    assert await probe.effects(probe_id) == [1]
    assert await stream_messages(servers[0], ProbeHappened.SUBJECT, probe_id) == []

    probe.relay.start()
    published = await wait_until(
        lambda: stream_messages(servers[0], ProbeHappened.SUBJECT, probe_id), 20, "relay to publish the row"
    )
    assert len(published) == 1
    envelope = Envelope.model_validate_json(published[0].data)
    assert published[0].headers["Nats-Msg-Id"] == envelope.id


async def test_a_second_publish_of_the_same_envelope_is_dropped_by_jetstream(
    probe: Probe, servers: tuple[str, str]
) -> None:
    probe_id = uuid.uuid4().hex
    envelope = probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=1))
    await probe.bus.publish(envelope)
    await probe.bus.publish(envelope)  # the relay crashed after publishing, before marking the row
    assert len(await stream_messages(servers[0], ProbeHappened.SUBJECT, probe_id)) == 1


async def publish_raw(nats_url: str, envelope: Envelope, msg_id: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id}
        )
    finally:
        await nc.close()


async def test_redelivered_and_duplicated_messages_change_nothing_the_second_time(
    probe: Probe, servers: tuple[str, str]
) -> None:
    probe_id = uuid.uuid4().hex

    async def handle(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        probe.calls += 1
        await uow.record(msg.probe_id, msg.value)

    probe.bus.consume(ProbeHappened, probe.durable, handle, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    await _delivered_twice(probe, servers, ProbeHappened(probe_id=probe_id, value=7))
    assert await probe.effects(probe_id) == [7]
    assert probe.calls == 2, "the duplicate must not reach the handler"


async def _delivered_twice(probe: Probe, servers: tuple[str, str], message: ProbeHappened) -> None:
    """`message` published as two copies JetStream cannot recognise as one (as after the duplicate window: the
    inbox must), then a marker; returns once the marker was applied, so both copies were handled before it."""
    envelope = probe.outbox.envelope(message)
    await publish_raw(servers[0], envelope, "a-" + envelope.id)
    await publish_raw(servers[0], envelope, "b-" + envelope.id)
    marker = uuid.uuid4().hex
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=marker, value=1)))
    await wait_until(lambda: probe.effects(marker), 20, "the marker published after both copies")


@pytest.mark.parametrize("carried", [True, False], ids=["read carries the claim", "no statement carries it"])
async def test_a_handler_left_the_inbox_claim_applies_a_message_once(
    probe: Probe, servers: tuple[str, str], carried: bool
) -> None:
    """With `claim_in_handler` the handler's first read claims the delivery (`claiming`): a duplicate's read raises
    and the bus acks it, rolled back. A handler that ran no such statement is claimed after it, and a duplicate's
    work is rolled back."""
    probe_id = uuid.uuid4().hex
    read = claiming(
        inbox, sa.select(effects.c.value).where(effects.c.probe_id == sa.bindparam("probe_id")).with_for_update()
    )
    before: list[list[int]] = []

    async def handle(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if carried:
            assert uow.inbox_claim is not None and not uow.inbox_claim.claimed
            rows = await uow.inbox_claim.fetch(uow.session, read, {"probe_id": msg.probe_id})
            before.append([row.value for row in rows])
        await uow.record(msg.probe_id, msg.value)

    probe.bus.consume(ProbeHappened, probe.durable, handle, probe.uow, deliver_new_only=True, claim_in_handler=True)
    await probe.bus.start()
    await _delivered_twice(probe, servers, ProbeHappened(probe_id=probe_id, value=7))
    assert await probe.effects(probe_id) == [7]
    assert before == ([[], []] if carried else []), "the duplicate's read raised before returning"


async def test_a_handler_that_fails_once_is_retried_not_dropped(probe: Probe, servers: tuple[str, str]) -> None:
    probe_id = uuid.uuid4().hex
    failures: list[int] = []

    async def flaky(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id != probe_id:
            return
        await uow.record(msg.probe_id, msg.value)
        if not failures:
            failures.append(1)
            raise RuntimeError("transient failure")

    probe.bus.consume(ProbeHappened, probe.durable, flaky, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=3)))
    assert await wait_until(lambda: probe.effects(probe_id), 20, "the retry to apply the message") == [3]
    assert failures == [1]


async def test_a_poison_message_ends_on_the_dead_letter_subject(probe: Probe, servers: tuple[str, str]) -> None:
    probe_id = uuid.uuid4().hex

    async def always_fails(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id == probe_id:
            probe.calls += 1
            raise ValueError("cannot apply this")

    probe.bus.consume(ProbeHappened, probe.durable, always_fails, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=1)))
    subject = probe.bus.dead_letter_subject(probe.durable)
    assert subject == f"{DEAD_LETTER_PREFIX}.probe.{probe.durable}"
    dead = await wait_until(lambda: stream_messages(servers[0], subject, probe_id), 30, "a dead letter")
    assert len(dead) == 1
    assert dead[0].headers["Printfarm-Original-Subject"] == ProbeHappened.SUBJECT
    assert "cannot apply this" in dead[0].headers["Printfarm-Error"]
    assert probe.calls == probe.bus.max_deliver
    assert await probe.effects(probe_id) == []


async def test_a_dead_letter_replayed_after_the_fix_is_applied_once_by_the_consumer_that_gave_up(
    probe: Probe, servers: tuple[str, str]
) -> None:
    """Inside the duplicate window (JetStream would drop the original `Nats-Msg-Id`), with a second
    consumer that had applied the message: it skips the replay by its inbox."""
    probe_id = uuid.uuid4().hex
    fixed = asyncio.Event()
    other_calls: list[str] = []

    async def broken_until_fixed(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id == probe_id and not fixed.is_set():
            raise LookupError("no such sku yet")
        await uow.record(msg.probe_id, msg.value)

    async def fine(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        other_calls.append(msg.probe_id)

    probe.bus.consume(ProbeHappened, probe.durable, broken_until_fixed, probe.uow, deliver_new_only=True)
    probe.bus.consume(ProbeHappened, probe.durable + "_other", fine, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    envelope = probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=5))
    await probe.bus.publish(envelope)
    subject = probe.bus.dead_letter_subject(probe.durable)
    dead = await wait_until(lambda: stream_messages(servers[0], subject, probe_id), 30, "a dead letter")
    headers = dead[0].headers
    assert headers[dead_letters.CONSUMER] == probe.durable
    assert headers[dead_letters.MESSAGE_ID] == envelope.id
    assert headers[dead_letters.DEAD_LETTERS] == "1"
    assert headers[dead_letters.DELIVERIES] == str(probe.bus.max_deliver)
    assert other_calls == [probe_id]

    fixed.set()
    seq = dead[0].metadata.sequence.stream
    assert await probe.bus.replay(ProbeHappened.SUBJECT, dead[0].data, dead_letters.replay_headers(seq, 1))
    assert await wait_until(lambda: probe.effects(probe_id), 20, "the replay to be applied") == [5]
    assert not await probe.bus.replay(ProbeHappened.SUBJECT, dead[0].data, dead_letters.replay_headers(seq, 1))
    marker = uuid.uuid4().hex
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=marker, value=1)))
    await wait_until(lambda: probe.effects(marker), 20, "a marker published after the replays")
    assert await probe.effects(probe_id) == [5]
    await wait_until(lambda: asyncio.sleep(0, marker in other_calls), 20, "the other consumer to see the marker")
    assert other_calls == [probe_id, marker], "the consumer that had applied it must skip the replay"
    assert len(await stream_messages(servers[0], subject, probe_id)) == 1


async def test_a_replay_that_fails_again_is_dead_lettered_again_with_its_count(
    probe: Probe, servers: tuple[str, str]
) -> None:
    probe_id = uuid.uuid4().hex

    async def always_fails(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id == probe_id:
            raise LookupError("still broken")

    probe.bus.consume(ProbeHappened, probe.durable, always_fails, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=1)))
    subject = probe.bus.dead_letter_subject(probe.durable)
    first = (await wait_until(lambda: stream_messages(servers[0], subject, probe_id), 30, "a dead letter"))[0]
    headers = dead_letters.replay_headers(first.metadata.sequence.stream, 1)
    await probe.bus.replay(ProbeHappened.SUBJECT, first.data, headers)

    async def two() -> list[Any]:
        found = await stream_messages(servers[0], subject, probe_id)
        return found if len(found) == 2 else []

    second = (await wait_until(two, 30, "the replay dead-lettered again"))[1]
    assert second.headers[dead_letters.DEAD_LETTERS] == "2"
    assert second.headers[dead_letters.MESSAGE_ID] == first.headers[dead_letters.MESSAGE_ID]
    assert "still broken" in second.headers[dead_letters.ERROR]


async def test_a_payload_over_the_nats_limit_travels_by_claim_check(probe: Probe, servers: tuple[str, str]) -> None:
    probe_id = uuid.uuid4().hex
    seen: list[ProbeHappened] = []

    async def handle(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id == probe_id:
            seen.append(msg)

    probe.bus.consume(ProbeHappened, probe.durable, handle, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    big = "x" * (3 * 1024 * 1024)
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=1, blob=big)))
    await wait_until(lambda: asyncio.sleep(0, bool(seen)), 20, "the large message")
    assert seen[0].blob == big


async def test_the_relay_sends_a_committed_payload_over_the_nats_limit_by_claim_check(
    probe: Probe, servers: tuple[str, str]
) -> None:
    """Rows are sent as stored (`publish_encoded`), except one too big to travel inline: it goes by
    `publish`, so by claim check, and the consumer reads the whole payload."""
    probe_id = uuid.uuid4().hex
    seen: list[ProbeHappened] = []

    async def handle(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        if msg.probe_id == probe_id:
            seen.append(msg)

    probe.bus.consume(ProbeHappened, probe.durable, handle, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    big = "x" * (3 * 1024 * 1024)
    async with probe.uow() as uow:
        await uow.record(probe_id, 1)
        uow.emit(ProbeHappened(probe_id=probe_id, value=1, blob=big))
        uow.emit(ProbeHappened(probe_id=probe_id, value=2))
        await uow.commit()
    probe.relay.start()
    await wait_until(lambda: asyncio.sleep(0, len(seen) == 2), 30, "both messages relayed")
    assert sorted((m.value, m.blob == big) for m in seen) == [(1, True), (2, False)]


async def test_a_commit_handed_to_the_relay_is_published_at_once_and_marked(
    probe: Probe, servers: tuple[str, str]
) -> None:
    """The relay's loop is not running: what arrives and is marked came directly from the commit."""
    relay = OutboxRelay(probe.sessions, outbox, probe.bus.publish)
    try:
        probe_id = uuid.uuid4().hex
        uow = ProbeUnitOfWork(
            probe.sessions, probe.outbox, Inbox(metadata.tables["inbox"]), publish_committed=relay.publish_committed
        )
        async with uow:
            await uow.record(probe_id, 1)
            uow.emit(ProbeHappened(probe_id=probe_id, value=1))
            await uow.commit()
        published = await wait_until(
            lambda: stream_messages(servers[0], ProbeHappened.SUBJECT, probe_id, timeout=0.2), 10, "the direct publish"
        )
        assert len(published) == 1

        async def marked() -> bool:
            async with probe.sessions() as session:
                unpublished = await session.scalar(
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                )
            return unpublished == 0

        await wait_until(marked, 10, "the row marked published")
        assert relay.published == 1
    finally:
        await relay.stop()


async def test_a_direct_publish_marks_its_rows_in_one_statement_without_a_transaction_block(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marking is on the path of every message a commit hands over: one UPDATE in its own implicit transaction,
    not a session's BEGIN, UPDATE and COMMIT. Every statement the marking sends is recorded."""
    import asyncpg

    relay = OutboxRelay(probe.sessions, outbox, probe.bus.publish)
    try:
        probe_id = uuid.uuid4().hex
        uow = ProbeUnitOfWork(probe.sessions, probe.outbox, Inbox(metadata.tables["inbox"]))
        async with uow:
            uow.emit(ProbeHappened(probe_id=probe_id, value=1))
            pending = list(uow._pending)
            await uow.commit()
        sent: list[tuple[str, bool]] = []
        execute = asyncpg.Connection.execute
        prepare = asyncpg.Connection.prepare

        async def executed(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sent.append((query.split()[0], self.is_in_transaction()))
            return await execute(self, query, *args, **kwargs)

        async def prepared(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sent.append((query.split()[0], self.is_in_transaction()))
            return await prepare(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "execute", executed)
        monkeypatch.setattr(asyncpg.Connection, "prepare", prepared)
        await relay._publish_direct(pending)
        monkeypatch.undo()
        assert sent == [("UPDATE", False)]
        assert relay.published == 1
        async with probe.sessions() as session:
            unpublished = await session.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        assert unpublished == 0
    finally:
        await relay.stop()


async def test_a_big_batch_goes_in_by_copy_in_emit_order_and_only_with_its_commit(
    probe: Probe, servers: tuple[str, str]
) -> None:
    """COPY_FROM or more envelopes take the COPY path: the rows are in emit order (the relay publishes by
    `seq`), hold the envelopes as the INSERT path writes them, and a rollback leaves none."""
    count = COPY_FROM + 3
    statements: list[str] = []
    sa.event.listen(probe.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    dropped = uuid.uuid4().hex
    with pytest.raises(RuntimeError):
        async with probe.uow() as uow:
            await uow.record(dropped, 1)
            for value in range(count):
                uow.emit(ProbeHappened(probe_id=dropped, value=value))
            await uow.outbox.add(uow.session, uow._pending)
            raise RuntimeError("rolled back after the COPY")
    probe_id = uuid.uuid4().hex
    async with probe.uow() as uow:
        await uow.record(probe_id, 1)
        emitted = [uow.emit(ProbeHappened(probe_id=probe_id, value=value)) for value in range(count)]
        await uow.commit()
    async with probe.sessions() as session:
        rows = (await session.execute(sa.select(outbox.c.message_id, outbox.c.subject, outbox.c.envelope)
                                      .order_by(outbox.c.seq))).all()
    assert [r.message_id for r in rows] == [e.id for e in emitted]
    assert {r.subject for r in rows} == {ProbeHappened.SUBJECT}
    assert [Envelope.model_validate(r.envelope) for r in rows] == emitted
    assert not [s for s in statements if "INSERT INTO outbox" in s], "the batch went by INSERT, not COPY"

    probe.relay.start()
    published = await wait_until(
        lambda: _all_published(servers[0], probe_id, count), 60, "the relay to publish the whole batch"
    )
    assert [m.headers["Nats-Msg-Id"] for m in published] == [e.id for e in emitted]


async def test_encoded_messages_are_stored_and_published_as_emitted_ones_are(
    probe: Probe, servers: tuple[str, str]
) -> None:
    """`emit_encoded`: a small batch handed to the relay at commit goes out directly (by `publish_encoded`), a
    big one by COPY and the relay's loop; either way under its envelope's id, and it opens as the message."""
    relay = OutboxRelay(probe.sessions, outbox, probe.bus.publish, publish_encoded=probe.bus.publish_encoded)
    try:
        for count, publish_committed in [(3, relay.publish_committed), (COPY_FROM + 3, None)]:
            probe_id = uuid.uuid4().hex
            uow = ProbeUnitOfWork(
                probe.sessions, probe.outbox, Inbox(metadata.tables["inbox"]), probe.relay.wake, publish_committed
            )
            sent = [ProbeHappened(probe_id=probe_id, value=value, blob="é\"") for value in range(count)]
            async with uow:
                await uow.record(probe_id, 1)
                uow.emit_encoded(ProbeHappened, [(f"s{m.value}", m.model_dump_json()) for m in sent])
                pending = list(uow._pending)
                await uow.commit()
            if publish_committed is None:
                probe.relay.start()
            published = await wait_until(
                lambda p=probe_id, n=count: _all_published(servers[0], p, n), 60, f"{count} encoded messages"
            )
            assert [m.headers["Nats-Msg-Id"] for m in published] == [e.id for e in pending]
            envelopes = [Envelope.model_validate_json(m.data) for m in published]
            assert [e.open(ProbeHappened) for e in envelopes] == sent
            assert [e.subject for e in envelopes] == [f"s{n}" for n in range(count)]
    finally:
        await relay.stop()


async def test_the_relay_sends_each_row_as_written_with_the_traceparent_of_its_column(probe: Probe) -> None:
    """The outbox keeps an envelope as the JSON text it was written as, so the relay's payload is that text byte
    for byte (`jsonb` rendered it anew), and the NATS header comes from the traceparent column: an envelope
    `jsonb` refused (a NUL in its data) is stored and relayed, and the row behind it is not held up."""
    sent: list[tuple[str, str, bytes, str | None]] = []

    async def publish_encoded(subject: str, message_id: str, payload: bytes, traceparent: str | None) -> None:
        sent.append((subject, message_id, payload, traceparent))

    async def publish(envelope: Envelope) -> None:
        raise AssertionError(f"{envelope.id} fits inline: it goes as written")

    relay = OutboxRelay(probe.sessions, outbox, publish, publish_encoded=publish_encoded)
    probe_id = uuid.uuid4().hex
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    for traced in (True, False):
        with trace.use_span(span) if traced else nullcontext():
            async with probe.uow() as uow:
                await uow.record(probe_id, 1)
                uow.emit(ProbeHappened(probe_id=probe_id, value=1, blob="NUL \x00, é"))
                uow.emit_encoded(ProbeHappened, [("s", ProbeHappened(probe_id=probe_id, value=2).model_dump_json())])
                pending = list(uow._pending)
                await uow.commit()
        assert await relay.relay_once() == 2
        traceparent = f"00-{0xABC:032x}-{0xDEF:016x}-01" if traced else None
        assert sent == [
            (e.type, e.id, (e.text if isinstance(e, EncodedEnvelope) else e.model_dump_json()).encode(), traceparent)
            for e in pending
        ]
        assert Envelope.model_validate_json(sent[0][2]).open(ProbeHappened).blob == "NUL \x00, é"
        sent.clear()


async def test_envelopes_encoded_earlier_go_into_the_outbox_where_they_are_emitted(probe: Probe) -> None:
    """`encode` makes the envelopes (a bulk writer does so while its COPY runs), `emit_envelopes` places them:
    after what was emitted before it, so the relay publishes them in that order."""
    probe_id = uuid.uuid4().hex
    async with probe.uow() as uow:
        await uow.record(probe_id, 1)
        later = uow.encode(ProbeHappened, [(None, ProbeHappened(probe_id=probe_id, value=v).model_dump_json())
                                           for v in (2, 3)])
        first = uow.emit(ProbeHappened(probe_id=probe_id, value=1))
        uow.emit_envelopes(later)
        await uow.commit()
    async with probe.sessions() as session:
        rows = (await session.execute(sa.select(outbox.c.message_id, outbox.c.envelope).order_by(outbox.c.seq))).all()
    assert [r.message_id for r in rows] == [first.id, *(e.id for e in later)]
    assert [Envelope.model_validate(r.envelope).data["value"] for r in rows] == [1, 2, 3]


async def _all_published(nats_url: str, probe_id: str, count: int) -> list[Any] | None:
    found = await stream_messages(nats_url, ProbeHappened.SUBJECT, probe_id, timeout=0.2)
    return found if len(found) == count else None


async def test_a_handler_block_inside_the_consumer_frame_commits_with_its_inbox_mark(probe: Probe) -> None:
    """The handler's own `async with uow` / `commit()` join the frame's transaction: nothing is committed until
    the frame commits, and an error after the handler's commit rolls back its work and the inbox mark."""
    kept, dropped = uuid.uuid4().hex, uuid.uuid4().hex
    async with probe.uow() as frame:
        assert await frame.claim_inbox(probe.durable, kept)
        async with frame as handler:
            assert handler.joined
            await handler.record(kept, 1)
            handler.emit(ProbeHappened(probe_id=kept, value=1))
            await handler.commit()
        assert await probe.effects(kept) == [], "the joined commit waits for the frame's"
        await frame.commit()
    assert await probe.effects(kept) == [1]

    with pytest.raises(RuntimeError):
        async with probe.uow() as frame:
            assert await frame.claim_inbox(probe.durable, dropped)
            async with frame as handler:
                await handler.record(dropped, 2)
                await handler.commit()
            raise RuntimeError("the frame failed after the handler")
    assert await probe.effects(dropped) == []
    async with probe.uow() as again:
        assert await again.claim_inbox(probe.durable, dropped), "the rolled-back inbox mark is gone"


async def test_a_delivery_reaches_its_handler_without_a_worker_thread(
    probe: Probe, servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastDepends resolved the subscriber's `NatsMessage` argument in a worker thread: a thread hop per delivery
    on the latency path (a printer turning ready). No delivery may need one."""
    import anyio.to_thread

    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    probe_id = uuid.uuid4().hex

    async def handle(msg: ProbeHappened, envelope: Envelope, uow: ProbeUnitOfWork) -> None:
        await uow.record(msg.probe_id, msg.value)

    probe.bus.consume(ProbeHappened, probe.durable, handle, probe.uow, deliver_new_only=True)
    await probe.bus.start()
    await probe.bus.publish(probe.outbox.envelope(ProbeHappened(probe_id=probe_id, value=3)))
    assert await wait_until(lambda: probe.effects(probe_id), 20, "the delivery applied") == [3]
    assert hops == []
