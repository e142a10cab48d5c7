"""Accounts, API tokens and browser sessions: the first admin, login/logout, token issue and check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from api_gateway.domain.auth import (
    TOKEN_PREFIX,
    Account,
    ApiToken,
    Principal,
    Session,
    digest,
    same_secret,
    token_hint,
)
from api_gateway.domain.auth_errors import BadCredentials, UnknownToken
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from servicekit.ids import Clock, IdFactory

log = logging.getLogger(__name__)

UowFactory = Callable[[], GatewayUnitOfWork]
SecretFactory = Callable[[], str]


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class CredentialsFile(Protocol):
    """Where the first admin's secrets are written once for the operator to pick up."""

    def write(self, username: str, password: str, api_token: str) -> str: ...
    def discard(self) -> None: ...


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


@dataclass(frozen=True)
class IssuedSession:
    secret: str
    csrf_token: str
    account: Account
    expires_at: datetime


class Access:
    def __init__(
        self,
        uow_factory: UowFactory,
        passwords: PasswordHasher,
        *,
        secrets: SecretFactory,
        ids: IdFactory,
        clock: Clock,
        env_token: str = "",
        session_ttl: timedelta = timedelta(hours=12),
    ) -> None:
        self.uow_factory, self.passwords = uow_factory, passwords
        self.secrets, self.ids, self.clock = secrets, ids, clock
        self.env_token_digest = digest(env_token) if env_token else ""
        self.session_ttl = session_ttl

    async def ensure_first_admin(self, username: str, credentials: CredentialsFile, password: str = "") -> bool:
        """Create the first account and a token for it when there is no account at all.

        The secrets go to `credentials` before the commit; if another replica won the race the
        file is discarded, so exactly one set of working secrets is ever written.
        """
        async with self.uow_factory() as uow:
            if await uow.accounts.any():
                return False
            password = password or self.secrets()
            now = self.clock()
            account = Account(self.ids(), username, await self.passwords.hash(password), now)
            if not await uow.accounts.add(account):
                return False
            issued = self._new_token("first admin", account.id, now)
            await uow.tokens.add(issued.token)
            where = credentials.write(username, password, issued.secret)
            try:
                await uow.commit()
            except Exception:
                credentials.discard()
                raise
        log.warning("created the first admin account %r; its password and API token are in %s", username, where)
        return True

    async def authenticate_token(self, token: str) -> Principal:
        hashed = digest(token)
        if self.env_token_digest and same_secret(hashed, self.env_token_digest):
            return Principal(id="env-token", name="API_TOKEN", via="env-token")
        async with self.uow_factory() as uow:
            found = await uow.tokens.by_digest(hashed)
        if found is None:
            raise BadCredentials("unknown API token")
        return Principal(id=f"token:{found.id}", name=found.name, via="token")

    async def authenticate_session(self, secret: str) -> Principal:
        async with self.uow_factory() as uow:
            session = await uow.logins.by_digest(digest(secret), self.clock())
            account = None if session is None else await uow.accounts.get(session.account_id)
        if session is None or account is None:
            raise BadCredentials("session expired or unknown; log in again")
        return Principal(id=f"account:{account.id}", name=account.username, via="session")

    async def login(self, username: str, password: str) -> IssuedSession:
        async with self.uow_factory() as uow:
            account = await uow.accounts.by_username(username)
            if account is None or not await self.passwords.verify(account.password_hash, password):
                raise BadCredentials("wrong username or password")
            now = self.clock()
            secret = self.secrets()
            session = Session(self.ids(), account.id, digest(secret), now, now + self.session_ttl)
            await uow.logins.add(session)
            await uow.logins.prune(now)
            await uow.commit()
        return IssuedSession(secret, self.secrets(), account, session.expires_at)

    async def logout(self, secret: str) -> None:
        async with self.uow_factory() as uow:
            await uow.logins.delete_by_digest(digest(secret))
            await uow.commit()

    async def create_token(self, name: str, principal: Principal) -> IssuedToken:
        account_id = principal.id.removeprefix("account:") if principal.id.startswith("account:") else None
        issued = self._new_token(name, account_id, self.clock())
        async with self.uow_factory() as uow:
            await uow.tokens.add(issued.token)
            await uow.commit()
        return issued

    async def list_tokens(self) -> list[ApiToken]:
        async with self.uow_factory() as uow:
            return await uow.tokens.list()

    async def revoke_token(self, token_id: str) -> None:
        async with self.uow_factory() as uow:
            if not await uow.tokens.delete(token_id):
                raise UnknownToken(token_id)
            await uow.commit()

    def _new_token(self, name: str, account_id: str | None, now: datetime) -> IssuedToken:
        secret = TOKEN_PREFIX + self.secrets()
        token = ApiToken(self.ids(), name, account_id, digest(secret), token_hint(secret), now)
        return IssuedToken(token, secret)
