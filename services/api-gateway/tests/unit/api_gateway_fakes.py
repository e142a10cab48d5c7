"""The gateway's test doubles: in-memory repositories over one `Store` (the 'database'), its fake unit of
work (servicekit's FakeUnitOfWork), a clock and ids to inject, password hashing without Argon2's cost, the
event log and the dead-letter archive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from api_gateway.domain.auth import Account, ApiToken, Session
from api_gateway.domain.dead_letters import DeadLetter, Replay
from api_gateway.domain.errors import ArchiveUnavailable
from api_gateway.domain.events import SOURCE_STREAMS, LoggedMessage, Position
from api_gateway.domain.idempotency import IdempotencyRecord, StoredResponse
from api_gateway.domain.webhooks import Delivery, DeliveryAttempt, Outcome, Webhook
from servicekit.testing import FakeUnitOfWork as BaseFakeUnitOfWork


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Ids:
    """Ids in order, `<prefix>-1`, `<prefix>-2`, ...: a test can say which one a thing got."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix, self.n = prefix, 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"


class FakeWebhookStore:
    def __init__(self) -> None:
        self.hooks: dict[str, Webhook] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.leases: dict[str, datetime] = {}

    async def add(self, webhook: Webhook) -> None:
        self.hooks[webhook.id] = webhook

    async def get(self, webhook_id: str) -> Webhook | None:
        return self.hooks.get(webhook_id)

    async def all_webhooks(self) -> list[Webhook]:
        return list(self.hooks.values())

    async def seal_secrets(self) -> int:
        return 0

    async def update(self, webhook: Webhook) -> None:
        self.hooks[webhook.id] = webhook

    async def delete(self, webhook_id: str) -> bool:
        return self.hooks.pop(webhook_id, None) is not None

    async def add_delivery(self, delivery: Delivery) -> bool:
        if any(
            d.webhook_id == delivery.webhook_id and d.event_id == delivery.event_id for d in self.deliveries.values()
        ):
            return False
        self.deliveries[delivery.id] = delivery
        return True

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[tuple[Delivery, Webhook]]:
        due = [
            d
            for d in self.deliveries.values()
            if d.status == "pending"
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and self.leases.get(d.id, now - timedelta(seconds=1)) < now
            and self.hooks[d.webhook_id].enabled
        ][:limit]
        for d in due:
            self.leases[d.id] = lease_until
        return [(d, self.hooks[d.webhook_id]) for d in due]

    async def record_attempt(self, delivery: Delivery, attempt: DeliveryAttempt, outcome: Outcome) -> None:
        current = self.deliveries[delivery.id]
        self.leases.pop(delivery.id, None)
        self.deliveries[delivery.id] = replace(
            current,
            status=outcome.status,
            attempts=attempt.attempt,
            next_attempt_at=outcome.next_attempt_at,
            delivered_at=outcome.delivered_at,
            last_status_code=attempt.status_code,
            last_error=attempt.error,
            history=(*current.history, attempt),
        )

    async def deliveries(self, webhook_id: str, limit: int, before: tuple[datetime, str] | None) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.webhook_id == webhook_id][:limit]


class Store:
    """The 'database' the fake repositories share across units of work (committed state only).

    A commit replaces its members with the committed copies: read `store.webhooks` afresh after one."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, ApiToken] = {}
        self.sessions: dict[str, Session] = {}
        self.webhooks = FakeWebhookStore()


class FakeIdempotency:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, record: IdempotencyRecord) -> bool:
        if (record.principal, record.key) in self.store.keys:
            return False
        self.store.keys[(record.principal, record.key)] = record
        return True

    async def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        return self.store.keys.get((principal, key))

    async def complete(self, principal: str, key: str, response: StoredResponse, now: datetime) -> None:
        self.store.keys[(principal, key)] = replace(self.store.keys[(principal, key)], response=response)

    async def release(self, principal: str, key: str) -> None:
        record = self.store.keys.get((principal, key))
        if record is not None and record.response is None:
            del self.store.keys[(principal, key)]

    async def take_over(self, record: IdempotencyRecord, now: datetime) -> bool:
        current = self.store.keys.get((record.principal, record.key))
        if current is None or current.created_at != record.created_at or current.response is not None:
            return False
        self.store.keys[(record.principal, record.key)] = replace(current, created_at=now)
        return True

    async def prune(self, older_than: datetime) -> int:
        old = [k for k, r in self.store.keys.items() if r.created_at < older_than]
        for k in old:
            del self.store.keys[k]
        return len(old)


class FakeAccounts:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def any(self) -> bool:
        return bool(self.store.accounts)

    async def add(self, account: Account) -> bool:
        if any(a.username == account.username for a in self.store.accounts.values()):
            return False
        self.store.accounts[account.id] = account
        return True

    async def by_username(self, username: str) -> Account | None:
        return next((a for a in self.store.accounts.values() if a.username == username), None)

    async def get(self, account_id: str) -> Account | None:
        return self.store.accounts.get(account_id)

    async def all_accounts(self) -> list[Account]:
        return sorted(self.store.accounts.values(), key=lambda a: a.username)

    async def update(self, account: Account) -> None:
        self.store.accounts[account.id] = account

    async def lock_admins(self) -> list[Account]:
        return [a for a in self.store.accounts.values() if a.role == "admin" and a.active]


class FakeTokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, token: ApiToken) -> None:
        self.store.tokens[token.id] = token

    async def by_digest(self, token_sha256: str) -> ApiToken | None:
        return next((t for t in self.store.tokens.values() if t.token_sha256 == token_sha256), None)

    async def get(self, token_id: str) -> ApiToken | None:
        return self.store.tokens.get(token_id)

    async def list(self, account_id: str | None = None) -> list[ApiToken]:
        return [t for t in self.store.tokens.values() if account_id is None or t.account_id == account_id]

    async def delete(self, token_id: str) -> bool:
        return self.store.tokens.pop(token_id, None) is not None


class FakeSessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, session: Session) -> None:
        self.store.sessions[session.id] = session

    async def by_digest(self, session_sha256: str, now: datetime) -> Session | None:
        return next(
            (s for s in self.store.sessions.values() if s.session_sha256 == session_sha256 and s.expires_at > now),
            None,
        )

    async def delete_by_digest(self, session_sha256: str) -> str | None:
        for sid in [s.id for s in self.store.sessions.values() if s.session_sha256 == session_sha256]:
            del self.store.sessions[sid]
            return sid
        return None

    async def delete_for_account(self, account_id: str, keep: str | None = None) -> list[str]:
        ended = [s.id for s in self.store.sessions.values() if s.account_id == account_id and s.id != keep]
        for sid in ended:
            del self.store.sessions[sid]
        return ended

    async def prune(self, now: datetime) -> int:
        return 0


class FakeUnitOfWork(BaseFakeUnitOfWork[Store]):
    """servicekit's fake unit of work over the store: only committed writes stay; `commits` counts them all."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, source="/services/api-gateway")

    def _open(self) -> None:
        self.idempotency = FakeIdempotency(self.work)
        self.accounts = FakeAccounts(self.work)
        self.tokens = FakeTokens(self.work)
        self.logins = FakeSessions(self.work)
        self.webhooks = self.work.webhooks


class PlainPasswords:
    """Argon2 is deliberately slow; the access logic does not depend on the algorithm."""

    async def hash(self, password: str) -> str:
        return "plain$" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "plain$" + password


class MemoryEventLog:
    def __init__(self) -> None:
        self.messages: dict[str, list[LoggedMessage]] = {s: [] for s in SOURCE_STREAMS}
        self._changed: asyncio.Event | None = None

    def append(self, stream: str, subject: str, data: dict[str, Any] | None) -> LoggedMessage:
        message = LoggedMessage(stream, len(self.messages[stream]) + 1, subject, data)
        self.messages[stream].append(message)
        if self._changed is not None:
            self._changed.set()
        return message

    async def positions(self) -> Position:
        return {s: len(m) for s, m in self.messages.items()}

    async def follow(self, after: Position) -> AsyncIterator[LoggedMessage]:
        self._changed = self._changed or asyncio.Event()
        seen = dict(after)
        while True:
            for stream in SOURCE_STREAMS:
                for message in list(self.messages[stream]):
                    if message.seq > seen[stream]:
                        seen[stream] = message.seq
                        yield message
            await self._changed.wait()
            self._changed.clear()

    async def replay(self, after: Position, until: Position, limit: int) -> AsyncIterator[LoggedMessage]:
        sent = 0
        for stream in SOURCE_STREAMS:
            for message in self.messages[stream]:
                if after[stream] < message.seq <= until[stream] and sent < limit:
                    sent += 1
                    yield message


class MemoryDeadLetters:
    """The DEADLETTER stream: entries by sequence, replays as JetStream would store them (deduplicated
    by replay id)."""

    def __init__(self) -> None:
        self.stored: dict[int, DeadLetter] = {}
        self.published: list[tuple[str, bytes]] = []
        self.replay_ids: set[int] = set()
        self.down = False

    def add(self, entry: DeadLetter) -> None:
        self.stored[entry.seq] = entry

    async def entries(self) -> list[DeadLetter]:
        if self.down:
            raise ArchiveUnavailable("did not answer")
        return [self.stored[seq] for seq in sorted(self.stored)]

    async def republish(self, replay: Replay) -> bool:
        if replay.from_seq in self.replay_ids:
            return False
        self.replay_ids.add(replay.from_seq)
        self.published.append((replay.subject, replay.data))
        return True

    async def forget(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self.stored.pop(seq, None)
