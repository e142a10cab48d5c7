"""Repositories on the unit of work's session, mapping rows to the domain's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_gateway.adapters import orm
from api_gateway.domain.auth import Account, ApiToken, Role, Session
from api_gateway.domain.idempotency import Fingerprint, IdempotencyRecord, StoredResponse


class IdempotencyRepository(Protocol):
    async def claim(self, record: IdempotencyRecord) -> bool: ...
    async def get(self, principal: str, key: str) -> IdempotencyRecord | None: ...
    async def complete(self, principal: str, key: str, response: StoredResponse, now: datetime) -> None: ...
    async def release(self, principal: str, key: str) -> None: ...
    async def take_over(self, record: IdempotencyRecord, now: datetime) -> bool: ...
    async def prune(self, older_than: datetime) -> int: ...


class AccountRepository(Protocol):
    async def any(self) -> bool: ...
    async def add(self, account: Account) -> bool: ...
    async def by_username(self, username: str) -> Account | None: ...
    async def get(self, account_id: str) -> Account | None: ...
    async def all_accounts(self) -> list[Account]: ...
    async def update(self, account: Account) -> None: ...
    async def lock_admins(self) -> list[Account]:
        """The active admins, locked until commit, so two demotions cannot both leave none."""
        ...


class TokenRepository(Protocol):
    async def add(self, token: ApiToken) -> None: ...
    async def get(self, token_id: str) -> ApiToken | None: ...
    async def by_digest(self, token_sha256: str) -> ApiToken | None: ...
    async def list(self, account_id: str | None = None) -> list[ApiToken]: ...
    async def delete(self, token_id: str) -> bool: ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...
    async def by_digest(self, session_sha256: str, now: datetime) -> Session | None: ...
    async def delete_by_digest(self, session_sha256: str) -> str | None: ...
    async def delete_for_account(self, account_id: str, keep: str | None = None) -> list[str]: ...
    async def prune(self, now: datetime) -> int: ...


class SqlIdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.t = orm.idempotency_keys

    async def claim(self, record: IdempotencyRecord) -> bool:
        result = await self.session.execute(
            insert(self.t)
            .values(
                principal=record.principal,
                key=record.key,
                method=record.fingerprint.method,
                path=record.fingerprint.path,
                body_sha256=record.fingerprint.body_sha256,
                created_at=record.created_at,
            )
            .on_conflict_do_nothing()
            .returning(self.t.c.key)
        )
        return result.first() is not None

    async def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        row = (
            await self.session.execute(sa.select(self.t).where(self.t.c.principal == principal, self.t.c.key == key))
        ).first()
        if row is None:
            return None
        m = row._mapping
        response = None
        if m["status"] is not None:
            response = StoredResponse(
                status=m["status"], headers=dict(m["headers"] or {}), body=bytes(m["body"] or b"")
            )
        return IdempotencyRecord(
            principal=m["principal"],
            key=m["key"],
            fingerprint=Fingerprint(m["method"], m["path"], m["body_sha256"]),
            created_at=m["created_at"],
            response=response,
        )

    async def complete(self, principal: str, key: str, response: StoredResponse, now: datetime) -> None:
        await self.session.execute(
            sa.update(self.t)
            .where(self.t.c.principal == principal, self.t.c.key == key)
            .values(status=response.status, headers=response.headers, body=response.body, completed_at=now)
        )

    async def release(self, principal: str, key: str) -> None:
        await self.session.execute(
            sa.delete(self.t).where(self.t.c.principal == principal, self.t.c.key == key, self.t.c.status.is_(None))
        )

    async def take_over(self, record: IdempotencyRecord, now: datetime) -> bool:
        result = await self.session.execute(
            sa.update(self.t)
            .where(
                self.t.c.principal == record.principal,
                self.t.c.key == record.key,
                self.t.c.created_at == record.created_at,
                self.t.c.status.is_(None),
            )
            .values(created_at=now)
            .returning(self.t.c.key)
        )
        return result.first() is not None

    async def prune(self, older_than: datetime) -> int:
        result = await self.session.execute(
            sa.delete(self.t).where(self.t.c.created_at < older_than).returning(self.t.c.key)
        )
        return len(result.all())


class SqlAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.t = orm.accounts

    async def any(self) -> bool:
        return (await self.session.execute(sa.select(self.t.c.id).limit(1))).first() is not None

    async def add(self, account: Account) -> bool:
        result = await self.session.execute(
            insert(self.t).values(**_account_row(account)).on_conflict_do_nothing().returning(self.t.c.id)
        )
        return result.first() is not None

    async def by_username(self, username: str) -> Account | None:
        return self._one(await self.session.execute(sa.select(self.t).where(self.t.c.username == username)))

    async def get(self, account_id: str) -> Account | None:
        return self._one(await self.session.execute(sa.select(self.t).where(self.t.c.id == account_id)))

    async def all_accounts(self) -> list[Account]:
        rows = await self.session.execute(sa.select(self.t).order_by(self.t.c.username))
        return [_account(row._mapping) for row in rows]

    async def update(self, account: Account) -> None:
        await self.session.execute(sa.update(self.t).where(self.t.c.id == account.id).values(**_account_row(account)))

    async def lock_admins(self) -> list[Account]:
        rows = await self.session.execute(
            sa.select(self.t)
            .where(self.t.c.role == Role.ADMIN.value, self.t.c.disabled_at.is_(None))
            .order_by(self.t.c.id)
            .with_for_update()
        )
        return [_account(row._mapping) for row in rows]

    @staticmethod
    def _one(result: sa.Result[Any]) -> Account | None:
        row = result.first()
        return None if row is None else _account(row._mapping)


def _account(m: Any) -> Account:
    return Account(
        id=m["id"],
        username=m["username"],
        password_hash=m["password_hash"],
        created_at=m["created_at"],
        role=Role(m["role"]),
        disabled_at=m["disabled_at"],
        password_changed_at=m["password_changed_at"],
    )


def _account_row(account: Account) -> dict[str, Any]:
    return {**account.__dict__, "role": account.role.value}


def _token(m: Any) -> ApiToken:
    return ApiToken(
        id=m["id"],
        name=m["name"],
        account_id=m["account_id"],
        token_sha256=m["token_sha256"],
        hint=m["hint"],
        created_at=m["created_at"],
        role=Role(m["role"]),
        expires_at=m["expires_at"],
    )


class SqlTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.t = orm.api_tokens

    async def add(self, token: ApiToken) -> None:
        await self.session.execute(sa.insert(self.t).values(**{**token.__dict__, "role": token.role.value}))

    async def get(self, token_id: str) -> ApiToken | None:
        row = (await self.session.execute(sa.select(self.t).where(self.t.c.id == token_id))).first()
        return None if row is None else _token(row._mapping)

    async def by_digest(self, token_sha256: str) -> ApiToken | None:
        row = (await self.session.execute(sa.select(self.t).where(self.t.c.token_sha256 == token_sha256))).first()
        return None if row is None else _token(row._mapping)

    async def list(self, account_id: str | None = None) -> list[ApiToken]:
        query = sa.select(self.t).order_by(self.t.c.created_at, self.t.c.id)
        if account_id is not None:
            query = query.where(self.t.c.account_id == account_id)
        return [_token(row._mapping) for row in await self.session.execute(query)]

    async def delete(self, token_id: str) -> bool:
        result = await self.session.execute(sa.delete(self.t).where(self.t.c.id == token_id).returning(self.t.c.id))
        return result.first() is not None


class SqlSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.t = orm.sessions

    async def add(self, session: Session) -> None:
        await self.session.execute(sa.insert(self.t).values(**session.__dict__))

    async def by_digest(self, session_sha256: str, now: datetime) -> Session | None:
        row = (
            await self.session.execute(
                sa.select(self.t).where(self.t.c.session_sha256 == session_sha256, self.t.c.expires_at > now)
            )
        ).first()
        return None if row is None else Session(**row._mapping)

    async def delete_by_digest(self, session_sha256: str) -> str | None:
        result = await self.session.execute(
            sa.delete(self.t).where(self.t.c.session_sha256 == session_sha256).returning(self.t.c.id)
        )
        row = result.first()
        return None if row is None else str(row[0])

    async def delete_for_account(self, account_id: str, keep: str | None = None) -> list[str]:
        query = sa.delete(self.t).where(self.t.c.account_id == account_id)
        if keep is not None:
            query = query.where(self.t.c.id != keep)
        result = await self.session.execute(query.returning(self.t.c.id))
        return [str(row[0]) for row in result]

    async def prune(self, now: datetime) -> int:
        result = await self.session.execute(sa.delete(self.t).where(self.t.c.expires_at <= now).returning(self.t.c.id))
        return len(result.all())
