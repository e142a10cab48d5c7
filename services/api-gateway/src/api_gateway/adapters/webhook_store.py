"""Webhooks, their deliveries and attempts in the gateway's database. Signing secrets are stored only
encrypted (`secret_token`); the domain sees them in the clear, the database never does."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_gateway.adapters import orm
from api_gateway.domain.webhooks import Delivery, DeliveryAttempt, Outcome, Webhook
from servicekit.secrets import SecretCipher


class WebhookRepository(Protocol):
    async def add(self, webhook: Webhook) -> None: ...
    async def get(self, webhook_id: str) -> Webhook | None: ...
    async def all_webhooks(self) -> list[Webhook]: ...
    async def update(self, webhook: Webhook) -> None: ...
    async def delete(self, webhook_id: str) -> bool: ...
    async def add_delivery(self, delivery: Delivery) -> bool:
        """False when this webhook already has a delivery of that event (a redelivered message)."""
        ...

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[tuple[Delivery, Webhook]]:
        """Pending deliveries of enabled webhooks whose time has come and that no one holds; held until
        `lease_until` (a process killed mid-attempt lets go of them by then)."""
        ...

    async def record_attempt(self, delivery: Delivery, attempt: DeliveryAttempt, outcome: Outcome) -> None: ...
    async def deliveries(self, webhook_id: str, limit: int, before: tuple[datetime, str] | None) -> list[Delivery]: ...
    async def seal_secrets(self) -> int:
        """Encrypts every secret stored in the clear and re-encrypts those not under the newest key; how many."""
        ...


def _webhook(row: Any, secret: str) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        secret=secret,
        events=tuple(row.events),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
    )


def _delivery(row: Any, history: tuple[DeliveryAttempt, ...] = ()) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=bytes(row.body),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        history=history,
    )


class SqlWebhookRepository:
    def __init__(self, session: AsyncSession, cipher: SecretCipher) -> None:
        self.session = session
        self.cipher = cipher

    def _secret(self, token: str | None, plain: str | None) -> str:
        """A row not yet sealed (written before secrets were encrypted) still signs with its plain secret."""
        if token is not None:
            return self.cipher.decrypt(token.encode())
        if plain is None:
            raise ValueError("a webhook row holds no secret")
        return plain

    def _row(self, webhook: Webhook) -> dict[str, Any]:
        return _row(webhook) | {"secret": None, "secret_token": self.cipher.encrypt(webhook.secret).decode()}

    async def add(self, webhook: Webhook) -> None:
        await self.session.execute(sa.insert(orm.webhooks).values(**self._row(webhook)))

    async def get(self, webhook_id: str) -> Webhook | None:
        row = (await self.session.execute(sa.select(orm.webhooks).where(orm.webhooks.c.id == webhook_id))).first()
        return _webhook(row, self._secret(row.secret_token, row.secret)) if row else None

    async def all_webhooks(self) -> list[Webhook]:
        rows = await self.session.execute(
            sa.select(orm.webhooks).order_by(orm.webhooks.c.created_at, orm.webhooks.c.id)
        )
        return [_webhook(r, self._secret(r.secret_token, r.secret)) for r in rows]

    async def seal_secrets(self) -> int:
        t = orm.webhooks
        rows = await self.session.execute(
            sa.select(t.c.id, t.c.secret, t.c.secret_token).order_by(t.c.id).with_for_update()
        )
        sealed = 0
        for row in rows.all():
            if row.secret_token is not None and row.secret is None:
                if self.cipher.is_current(row.secret_token.encode()):
                    continue
                token = self.cipher.reencrypt(row.secret_token.encode())
            else:
                token = self.cipher.encrypt(self._secret(row.secret_token, row.secret))
            await self.session.execute(
                sa.update(t).where(t.c.id == row.id).values(secret=None, secret_token=token.decode())
            )
            sealed += 1
        return sealed

    async def update(self, webhook: Webhook) -> None:
        values = self._row(webhook)
        del values["id"], values["created_at"]
        await self.session.execute(sa.update(orm.webhooks).where(orm.webhooks.c.id == webhook.id).values(**values))

    async def delete(self, webhook_id: str) -> bool:
        result = await self.session.execute(sa.delete(orm.webhooks).where(orm.webhooks.c.id == webhook_id))
        return bool(getattr(result, "rowcount", 0))

    async def add_delivery(self, delivery: Delivery) -> bool:
        statement = (
            insert(orm.webhook_deliveries)
            .values(
                id=delivery.id,
                webhook_id=delivery.webhook_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                body=delivery.body,
                status=delivery.status,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                created_at=delivery.created_at,
            )
            .on_conflict_do_nothing(constraint="uq_webhook_deliveries_event")
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[tuple[Delivery, Webhook]]:
        d, w = orm.webhook_deliveries, orm.webhooks
        due = (
            sa.select(d.c.id)
            .join(w, w.c.id == d.c.webhook_id)
            .where(
                d.c.status == "pending",
                d.c.next_attempt_at <= now,
                sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                w.c.enabled.is_(True),
            )
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(of=d, skip_locked=True)
        )
        ids = [r.id for r in await self.session.execute(due)]
        if not ids:
            return []
        await self.session.execute(sa.update(d).where(d.c.id.in_(ids)).values(lease_until=lease_until))
        rows = await self.session.execute(
            sa.select(d, *[c.label(f"w_{c.name}") for c in w.c])
            .join(w, w.c.id == d.c.webhook_id)
            .where(d.c.id.in_(ids))
        )
        claimed = []
        for row in rows:
            hook = Webhook(
                id=row.w_id,
                url=row.w_url,
                secret=self._secret(row.w_secret_token, row.w_secret),
                events=tuple(row.w_events),
                enabled=row.w_enabled,
                created_at=row.w_created_at,
                updated_at=row.w_updated_at,
                description=row.w_description,
            )
            claimed.append((_delivery(row), hook))
        return claimed

    async def record_attempt(self, delivery: Delivery, attempt: DeliveryAttempt, outcome: Outcome) -> None:
        await self.session.execute(
            insert(orm.webhook_attempts)
            .values(
                delivery_id=delivery.id,
                attempt=attempt.attempt,
                started_at=attempt.started_at,
                duration_ms=attempt.duration_ms,
                status_code=attempt.status_code,
                error=attempt.error,
            )
            .on_conflict_do_nothing()
        )
        await self.session.execute(
            sa.update(orm.webhook_deliveries)
            .where(orm.webhook_deliveries.c.id == delivery.id)
            .values(
                status=outcome.status,
                attempts=attempt.attempt,
                next_attempt_at=outcome.next_attempt_at,
                delivered_at=outcome.delivered_at,
                lease_until=None,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
            )
        )

    async def deliveries(self, webhook_id: str, limit: int, before: tuple[datetime, str] | None) -> list[Delivery]:
        d, a = orm.webhook_deliveries, orm.webhook_attempts
        query = sa.select(d).where(d.c.webhook_id == webhook_id)
        if before is not None:
            query = query.where(
                sa.tuple_(d.c.created_at, d.c.id) < sa.tuple_(sa.literal(before[0]), sa.literal(before[1]))
            )
        rows = list(await self.session.execute(query.order_by(d.c.created_at.desc(), d.c.id.desc()).limit(limit)))
        if not rows:
            return []
        history: dict[str, list[DeliveryAttempt]] = {}
        attempts = await self.session.execute(
            sa.select(a).where(a.c.delivery_id.in_([r.id for r in rows])).order_by(a.c.delivery_id, a.c.attempt)
        )
        for r in attempts:
            history.setdefault(r.delivery_id, []).append(
                DeliveryAttempt(r.attempt, r.started_at, r.duration_ms, r.status_code, r.error)
            )
        return [_delivery(r, tuple(history.get(r.id, []))) for r in rows]


def _row(webhook: Webhook) -> dict[str, Any]:
    """Everything but the secret, which only `SqlWebhookRepository._row` writes (encrypted)."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "enabled": webhook.enabled,
        "description": webhook.description,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }
