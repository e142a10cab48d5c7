"""What a replica concludes from the lease bucket about a lease it holds, whatever its own renewals' answers are
doing meanwhile: its own writes, answered or not, are still its lease; a survivor's write, or none, is not."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import cast

from hypothesis import given
from hypothesis import strategies as st
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from printer_gateway.adapters.leases import Lease, LeaseTable
from servicekit.messaging import Bus

ME, SURVIVOR = "gw-1", "gw-2"


@dataclass
class Entry:
    value: bytes
    revision: int
    operation: None = None


class Bucket:
    """The lease bucket as JetStream keeps it (one revision counter for every key), with the answers held back: a
    write's until `answer` is set (visible to every reader before its writer hears of it), a read's until
    `read_answer` is (the entry as it was when the read arrived)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.revision = 0
        self.answer = asyncio.Event()
        self.answer.set()
        self.written = asyncio.Event()
        self.read_answer = asyncio.Event()
        self.read_answer.set()
        self.read = asyncio.Event()

    def _write(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = Entry(value, self.revision)
        self.written.set()
        return self.revision

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError("wrong last sequence")
        revision = self._write(key, value)
        await self.answer.wait()
        return revision

    async def update(self, key: str, value: bytes, last: int) -> int:
        entry = self.entries.get(key)
        if entry is None or entry.revision != last:
            raise KeyWrongLastSequenceError("wrong last sequence")
        revision = self._write(key, value)
        await self.answer.wait()
        return revision

    async def get(self, key: str) -> Entry:
        entry = self.entries.get(key)
        self.read.set()
        await self.read_answer.wait()
        if entry is None:
            raise KeyNotFoundError
        return entry


def lease_table(bucket: Bucket) -> LeaseTable:
    table = LeaseTable(cast(Bus, SimpleNamespace()), ME, ttl_seconds=30.0)
    table._leases = bucket
    return table


async def held_lease(table: LeaseTable) -> Lease:
    lease = await table.acquire("p1")
    assert lease is not None
    return lease


async def test_a_lease_is_still_held_while_its_renewal_is_written_but_not_yet_answered() -> None:
    """The flake of the fleet test's dispatch: `_may_command` read the bucket while a renewal of the same lease
    was on its way back, found our own newer revision, and called the printer taken over."""
    bucket = Bucket()
    table = lease_table(bucket)
    lease = await held_lease(table)
    bucket.answer.clear()
    bucket.written.clear()
    renewal = asyncio.create_task(table.renew(lease))
    await bucket.written.wait()

    held_meanwhile = await table.still_held(lease)

    bucket.answer.set()
    assert await renewal
    assert held_meanwhile, "our own renewal, not yet answered, is not a takeover"
    assert await table.still_held(lease)


async def test_a_lease_is_still_held_when_the_read_is_answered_after_a_renewal_it_did_not_see() -> None:
    """The other order: the bucket read the entry before a renewal was written, and the renewal's answer was read
    first; the entry names us at the revision before the one we now know."""
    bucket = Bucket()
    table = lease_table(bucket)
    lease = await held_lease(table)
    bucket.read_answer.clear()
    check = asyncio.create_task(table.still_held(lease))
    await bucket.read.wait()
    assert await table.renew(lease)

    bucket.read_answer.set()

    assert await check, "a renewal of ours between the read and its answer is not a takeover"


async def test_a_lease_written_by_a_survivor_is_not_held_whatever_its_revision() -> None:
    bucket = Bucket()
    table = lease_table(bucket)
    lease = await held_lease(table)
    bucket._write("p1", SURVIVOR.encode())

    assert not await table.still_held(lease)
    assert not await table.renew(lease)


async def test_a_lease_gone_from_the_bucket_is_not_held() -> None:
    bucket = Bucket()
    table = lease_table(bucket)
    lease = await held_lease(table)
    del bucket.entries["p1"]

    assert not await table.still_held(lease)


WRITES = st.lists(st.sampled_from(["renewed", "renewal unanswered", "taken over", "expired"]), max_size=8)


@given(WRITES)
def test_a_lease_is_held_exactly_while_no_one_else_wrote_it_or_let_it_expire(writes: list[str]) -> None:
    """Any run of our renewals, answered or not (a timed-out answer is never heard), and of a survivor's takeover
    or the key's expiry: the lease is held until the first of those two, and never again after."""

    async def run() -> None:
        bucket = Bucket()
        table = lease_table(bucket)
        lease = await held_lease(table)
        lost = False
        for write in writes:
            entry = bucket.entries.get("p1")
            if write == "renewed":
                renewed = await table.renew(lease)
                assert renewed is not lost
            elif write == "renewal unanswered" and entry is not None and entry.value == ME.encode():
                bucket._write("p1", ME.encode())  # written; its answer timed out
            elif write == "taken over":
                bucket._write("p1", SURVIVOR.encode())
                lost = True
            elif write == "expired":
                bucket.entries.pop("p1", None)
                lost = True
            assert await table.still_held(lease) is not lost, writes

    asyncio.run(run())

