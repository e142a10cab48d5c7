"""The gateway's unit of work: each use is one short transaction (never held across a forward)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, Self

from api_gateway.adapters.repository import (
    AccountRepository,
    IdempotencyRepository,
    SessionRepository,
    SqlAccountRepository,
    SqlIdempotencyRepository,
    SqlSessionRepository,
    SqlTokenRepository,
    TokenRepository,
)
from api_gateway.adapters.webhook_store import SqlWebhookRepository, WebhookRepository
from servicekit.secrets import SecretCipher
from servicekit.unit_of_work import SqlUnitOfWork


class GatewayUnitOfWork(Protocol):
    """What handlers and views need; the SQL unit of work and the tests' fake both provide it."""

    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def logins(self) -> SessionRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWork(SqlUnitOfWork):
    idempotency: IdempotencyRepository
    accounts: AccountRepository
    tokens: TokenRepository
    logins: SessionRepository
    webhooks: WebhookRepository

    def __init__(self, *, secrets: SecretCipher, **kwargs: Any) -> None:
        """`secrets` encrypts what the gateway must read back but never store in the clear (webhook secrets)."""
        super().__init__(**kwargs)
        self.secrets = secrets

    def _open(self) -> None:
        self.idempotency = SqlIdempotencyRepository(self.session)
        self.accounts = SqlAccountRepository(self.session)
        self.tokens = SqlTokenRepository(self.session)
        self.logins = SqlSessionRepository(self.session)
        self.webhooks = SqlWebhookRepository(self.session, self.secrets)
