"""Printer leases between gateway replicas against a real NATS JetStream key-value store: a survivor takes
a dead replica's leases over by compare-and-set once its heartbeat expired (not when the leases expire), or
once the NATS server says nobody answers for it, never a live replica's, and the old holder's renewal then
fails; bucket TTLs follow the settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import nats
import pytest
from nats.aio.client import Client as NatsClient

from contracts.printers.v1 import GATEWAY_ALIVE_SUBJECT, LEASES_BUCKET, REPLICAS_BUCKET
from devstack.nats_server import NatsServer
from devstack.ports import free_ports
from printer_gateway.adapters.leases import LeaseTable
from servicekit.messaging import Bus
from servicekit.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LEASE_TTL = 30.0
"""Far longer than anything below waits: a takeover that worked did not wait for a lease to expire."""
REPLICA_TTL = 1.0


@pytest.fixture
async def nc(tmp_path: Path) -> AsyncIterator[NatsClient]:
    """A NATS server of the test's own (its buckets start empty), or `NATS_URL`'s with the buckets cleared."""
    server: NatsServer | None = None
    url = os.environ.get("NATS_URL")
    if not url:
        port, monitor = free_ports(2)
        server = NatsServer(port, monitor, tmp_path / "nats", tmp_path / "nats.log")
        await server.start(timeout=30)
        url = server.url
    client = await nats.connect(url)
    for bucket in (LEASES_BUCKET, REPLICAS_BUCKET):
        with contextlib.suppress(Exception):  # not there yet
            await client.jetstream().delete_key_value(bucket)
    yield client
    await client.close()
    if server is not None:
        await server.stop(timeout=20)


async def replica(
    nc: NatsClient, name: str, *, lease_ttl: float = LEASE_TTL, replica_ttl: float = REPLICA_TTL
) -> LeaseTable:
    """A replica whose heartbeat the test writes (`LeaseTable.heartbeat`), answering its alive subject on the
    test's connection for as long as the test runs (as a process that never dies)."""

    async def answer(msg: Any) -> None:
        await msg.respond(b"")

    await nc.subscribe(GATEWAY_ALIVE_SUBJECT.format(instance=name), cb=answer)
    table = LeaseTable(cast(Bus, SimpleNamespace(js=nc.jetstream(), nc=nc)), name, lease_ttl, replica_ttl)
    await table.open()
    await table.heartbeat()
    table.confirm_leases()
    return table


def printer() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


async def test_a_dead_replicas_lease_is_taken_over_once_its_heartbeat_expired(nc: NatsClient) -> None:
    dead, survivor = await replica(nc, "gw-a"), await replica(nc, "gw-b")
    printer_id = printer()
    held = await dead.acquire(printer_id, ["gw-a", "gw-b"])
    assert held is not None
    assert await survivor.acquire(printer_id, ["gw-b"]) is None, "a live holder's lease is not taken"

    async def gone() -> bool:
        return "gw-a" not in await survivor.live_replicas()

    await wait_until(gone, 10, "gw-a's heartbeat to expire")  # gw-a no longer heartbeats: killed
    taken = await survivor.acquire(printer_id, await survivor.live_replicas())

    assert taken is not None, "taken over long before the lease's own TTL"
    assert taken.epoch > held.epoch, "the new epoch fences the old holder's writes"
    assert await survivor.owner(printer_id) == "gw-b"
    assert not dead.presumed_alive(), "the dead holder would not command the printer"
    assert not await dead.still_held(held)
    assert not await dead.renew(held), "the old holder's renewal fails, so it lets go"
    assert await survivor.still_held(taken) and await survivor.renew(taken)


async def test_the_live_replicas_listing_never_leaves_a_live_replica_out(nc: NatsClient) -> None:
    """The client's `keys()` once returned no key 0.16 s after a put (its watcher declared the listing
    complete before reading a message already sent): a listing asked many times must name every live
    replica every time, and no replica that left."""
    tables = [await replica(nc, f"gw-{n}", replica_ttl=LEASE_TTL) for n in range(4)]  # none expires meanwhile
    await tables[3].leave()

    listings = [await tables[0].live_replicas() for _ in range(300)]

    assert all(listing == ["gw-0", "gw-1", "gw-2"] for listing in listings), {tuple(x) for x in listings}


async def test_a_live_replica_missing_from_a_listing_keeps_its_lease(nc: NatsClient) -> None:
    """A steal rests on the holder's own heartbeat key, not on the list the caller passed."""
    holder, other = await replica(nc, "gw-a"), await replica(nc, "gw-b")
    printer_id = printer()
    held = await holder.acquire(printer_id, ["gw-a", "gw-b"])
    assert held is not None

    assert await other.acquire(printer_id, ["gw-b"]) is None

    assert await holder.still_held(held) and await holder.renew(held)
    assert await other.owner(printer_id) == "gw-a"


async def test_a_replica_restarted_under_its_name_takes_its_own_lease_back(nc: NatsClient) -> None:
    """With a newer epoch, which fences the status writes of the process before it (SERVICE_INSTANCE is
    unique per live replica: a lease naming us at a newer revision is taken for our own renewal)."""
    first = await replica(nc, "gw-a")
    printer_id = printer()
    old = await first.acquire(printer_id)
    assert old is not None

    again = await (await replica(nc, "gw-a")).acquire(printer_id, ["gw-a"])

    assert again is not None and again.epoch > old.epoch
    assert await first.owner(printer_id) == "gw-a"


async def test_an_existing_buckets_ttls_follow_the_settings(nc: NatsClient) -> None:
    await replica(nc, "gw-a", lease_ttl=LEASE_TTL)

    await replica(nc, "gw-b", lease_ttl=12.0)

    js = nc.jetstream()
    leases: Any = await (await js.key_value(LEASES_BUCKET)).status()
    replicas: Any = await (await js.key_value(REPLICAS_BUCKET)).status()
    assert leases.ttl == pytest.approx(12.0)
    assert replicas.ttl == pytest.approx(REPLICA_TTL)
    assert leases.stream_info.config.duplicate_window <= 12.0


async def test_after_a_gap_in_its_heartbeat_a_replica_commands_nothing_until_its_leases_are_checked(
    nc: NatsClient,
) -> None:
    table = await replica(nc, "gw-a")
    assert table.presumed_alive()

    await wait_until(lambda: not table.presumed_alive(), 10, "the heartbeat to be overdue")  # a stalled loop
    await table.heartbeat()

    assert table.lapsed and not table.presumed_alive(), "a survivor may have taken leases meanwhile"
    checked_after = table.lapses
    table.confirm_leases(checked_after - 1)
    assert not table.presumed_alive(), "a check begun before this gap confirms nothing"
    table.confirm_leases(checked_after)
    assert table.presumed_alive()


async def test_a_renewal_written_although_its_answer_was_lost_does_not_lose_the_lease(nc: NatsClient) -> None:
    """A renewal that timed out under load may have been written: the next one goes on from it."""
    table = await replica(nc, "gw-a")
    printer_id = printer()
    lease = await table.acquire(printer_id)
    assert lease is not None
    kv = await nc.jetstream().key_value(LEASES_BUCKET)
    await kv.update(printer_id, b"gw-a", last=lease.revision)  # the write whose answer never came

    assert await table.renew(lease)
    assert await table.still_held(lease)


async def test_our_own_newer_write_found_before_its_answer_is_still_our_lease(nc: NatsClient) -> None:
    """Asked while a renewal of ours is written but its answer not yet read (or lost), the bucket shows a revision
    newer than the lease's naming us: still ours. A dispatch asked at that moment once took the printer for taken
    over, let it go and gave its job back as not started (the fleet test's flake under load)."""
    table = await replica(nc, "gw-a")
    printer_id = printer()
    lease = await table.acquire(printer_id)
    assert lease is not None
    kv = await nc.jetstream().key_value(LEASES_BUCKET)
    await kv.update(printer_id, b"gw-a", last=lease.revision)  # our renewal, its answer not read yet

    assert await table.still_held(lease)
    await kv.update(printer_id, b"gw-b", last=(await kv.get(printer_id)).revision)  # then a survivor's takeover
    assert not await table.still_held(lease)


async def test_a_lease_taken_over_meanwhile_is_not_renewed(nc: NatsClient) -> None:
    table = await replica(nc, "gw-a")
    printer_id = printer()
    lease = await table.acquire(printer_id)
    assert lease is not None
    kv = await nc.jetstream().key_value(LEASES_BUCKET)
    await kv.update(printer_id, b"gw-b", last=lease.revision)

    assert not await table.renew(lease)
    assert await table.owner(printer_id) == "gw-b"


async def kept_replica(
    nc: NatsClient,
    name: str,
    *,
    stall_seconds: float,
    on_replicas: Callable[[list[str], float], None] | None = None,
    replica_ttl: float = REPLICA_TTL,
) -> LeaseTable:
    """A replica whose heartbeat a thread keeps (`LeaseTable.keep_heartbeat`), on a connection of its own that
    answers its alive subject, as the service starts it."""
    url = nc.connected_url
    assert url is not None
    bus = SimpleNamespace(
        js=nc.jetstream(), nc=nc, service="printer-gateway", connect_options=lambda name: {"servers": url.geturl()}
    )
    table = LeaseTable(cast(Bus, bus), name, LEASE_TTL, replica_ttl)
    await table.open()
    await table.keep_heartbeat(stall_seconds, on_replicas)
    await table.heartbeat()
    table.confirm_leases()
    return table


def block_the_event_loop(seconds: float) -> None:
    """Nothing on the caller's event loop runs meanwhile."""
    time.sleep(seconds)


async def test_a_replica_whose_event_loop_is_busy_keeps_its_heartbeat(nc: NatsClient) -> None:
    """The event loop held for three TTLs (a saturated CPU's backlog): the heartbeat, on its own thread, went on."""
    table = await kept_replica(nc, "gw-busy", stall_seconds=30)
    try:
        lapses = table.lapses
        block_the_event_loop(3 * REPLICA_TTL)  # a saturated CPU's backlog

        assert table.presumed_alive() and table.lapses == lapses
        survivor = await replica(nc, "gw-b")
        assert not await survivor.replica_gone("gw-busy")
    finally:
        await table.leave()


async def test_a_replica_whose_event_loop_is_stuck_stops_its_heartbeat_until_it_turns(nc: NatsClient) -> None:
    table = await kept_replica(nc, "gw-stuck", stall_seconds=REPLICA_TTL)
    survivor = await replica(nc, "gw-b")
    try:
        lapses = table.lapses
        block_the_event_loop(3 * REPLICA_TTL)  # stuck longer than `stall_seconds`, then its TTL

        assert not table.presumed_alive()
        assert await survivor.replica_gone("gw-stuck"), "its key expired: survivors take its printers over"
        table.loop_turned()
        await wait_until(lambda: table.lapses > lapses, 10, "the heartbeat to resume")
        assert table.lapsed, "a gap: its leases are checked before it commands a printer again"
        async def back() -> bool:
            return not await survivor.replica_gone("gw-stuck")

        await wait_until(back, 10, "its key back")
    finally:
        await table.leave()


async def test_a_replica_that_left_writes_no_heartbeat_after_its_key_was_deleted(nc: NatsClient) -> None:
    table = await kept_replica(nc, "gw-leaving", stall_seconds=30)
    survivor = await replica(nc, "gw-b")
    assert "replica-heartbeat" in {thread.name for thread in threading.enumerate()}
    await table.leave()

    assert "replica-heartbeat" not in {thread.name for thread in threading.enumerate()}, "no beat after the delete"
    assert await survivor.replica_gone("gw-leaving")


async def test_the_heartbeat_thread_hands_each_listing_of_the_live_replicas_to_the_event_loop(nc: NatsClient) -> None:
    """A replica joining, then leaving, is seen in the thread's listings, given on the caller's event loop."""
    loop = asyncio.get_running_loop()
    listings: list[tuple[list[str], float]] = []

    def listed(live: list[str], listed_at: float) -> None:
        assert asyncio.get_running_loop() is loop, "handed over on the caller's event loop"
        listings.append((live, listed_at))

    table = await kept_replica(nc, "gw-a", stall_seconds=30, on_replicas=listed)
    try:
        await wait_until(lambda: listings and listings[-1][0] == ["gw-a"], 10, "a listing of itself")
        other = await replica(nc, "gw-b")
        await wait_until(lambda: listings[-1][0] == ["gw-a", "gw-b"], 10, "the new replica listed")
        await other.leave()
        await wait_until(lambda: listings[-1][0] == ["gw-a"], 10, "the replica that left no longer listed")
        times = [listed_at for _, listed_at in listings]
        assert times == sorted(times) and times[-1] <= time.monotonic()
    finally:
        await table.leave()


async def test_a_replica_whose_process_died_is_taken_over_before_its_heartbeat_key_expires(nc: NatsClient) -> None:
    """Its heartbeat thread's connection closed as a killed process's is (the key left in the bucket, with a TTL
    longer than the test): the server says nobody answers its alive subject, and a survivor's listing and lease
    takeover follow that, not the key."""
    dead = await kept_replica(nc, "gw-dead", stall_seconds=30, replica_ttl=LEASE_TTL)
    survivor = await replica(nc, "gw-b", replica_ttl=LEASE_TTL)
    printer_id = printer()
    held = await dead.acquire(printer_id, ["gw-dead", "gw-b"])
    assert held is not None
    assert await survivor.live_replicas() == ["gw-b", "gw-dead"]
    assert not await survivor.replica_gone("gw-dead"), "a replica that answers is alive"

    beater = dead._beater
    assert beater is not None
    await beater.stop()  # its connection closes, its key stays: as a process killed

    async def silent() -> bool:
        return await survivor.live_replicas() == ["gw-b"]

    await wait_until(silent, 20, "gw-dead found silent")
    replicas = await nc.jetstream().key_value(REPLICAS_BUCKET)
    assert (await replicas.get("gw-dead")).value, "its heartbeat key has not expired"
    assert await survivor.replica_gone("gw-dead")
    taken = await survivor.acquire(printer_id, ["gw-b"])
    assert taken is not None and taken.epoch > held.epoch
    assert not await dead.renew(held)


async def test_a_replica_that_answers_again_is_alive_again(nc: NatsClient) -> None:
    """Found silent (its connection dropped), then answering (reconnected, or restarted under its name): listed
    again at once, its key never having expired."""
    survivor = await replica(nc, "gw-b", replica_ttl=LEASE_TTL)
    back = await kept_replica(nc, "gw-back", stall_seconds=30, replica_ttl=LEASE_TTL)
    beater = back._beater
    assert beater is not None
    await beater.stop()

    async def listed(expected: list[str]) -> bool:
        return await survivor.live_replicas() == expected

    async def silent() -> bool:
        return await listed(["gw-b"])

    async def answering() -> bool:
        return await listed(["gw-b", "gw-back"])

    await wait_until(silent, 20, "gw-back found silent")
    back._beater = None
    await back.keep_heartbeat(30)
    try:
        await wait_until(answering, 20, "gw-back listed again")
        assert not await survivor.replica_gone("gw-back")
    finally:
        await back.leave()


async def test_a_replica_whose_answering_connection_drops_counts_its_heartbeat_expired(nc: NatsClient) -> None:
    """From then on the others may find it silent and take its leases: it commands nothing until its next beat has
    opened a gap and its leases are checked."""
    table = await kept_replica(nc, "gw-a", stall_seconds=30)
    try:
        assert table.presumed_alive()
        lapses = table.lapses

        table.connection_lost()

        assert not table.presumed_alive()
        await wait_until(lambda: table.lapses > lapses, 10, "the next beat")
        assert table.lapsed and not table.presumed_alive(), "its leases are checked before it commands again"
    finally:
        await table.leave()


class CuttableProxy:
    """A TCP proxy to the NATS server whose connections the test can cut, as a network drop or a server closing
    a connection would (the client sees its socket closed and reconnects through the proxy)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host, self.target_port = target_host, target_port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        self._writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def test_a_dropped_answering_connection_stops_commands_before_anyone_can_find_the_replica_silent(
    nc: NatsClient,
) -> None:
    """The heartbeat thread's connection cut under it: the replica counts its heartbeat as expired at once (the
    others may find it silent from then on and take its printers), and after it reconnected, its next beat opens
    a gap, so it commands nothing until its leases are checked."""
    url = nc.connected_url
    assert url is not None and url.hostname is not None and url.port is not None
    proxy = CuttableProxy(url.hostname, url.port)
    await proxy.start()
    bus = SimpleNamespace(
        js=nc.jetstream(), nc=nc, service="printer-gateway",
        connect_options=lambda name: {"servers": f"nats://127.0.0.1:{proxy.port}", "reconnect_time_wait": 0.1},
    )
    table = LeaseTable(cast(Bus, bus), "gw-cut", LEASE_TTL, LEASE_TTL)
    await table.open()
    await table.keep_heartbeat(30)
    await table.heartbeat()
    table.confirm_leases()
    try:
        assert table.presumed_alive()
        lapses = table.lapses

        proxy.cut()

        await wait_until(lambda: not table.presumed_alive(), 10, "the lost connection seen")
        await wait_until(lambda: table.lapses > lapses, 20, "a beat after reconnecting")
        assert table.lapsed and not table.presumed_alive(), "its leases are checked before it commands again"
    finally:
        await table.leave()
        await proxy.stop()
