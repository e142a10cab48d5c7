"""Reads that change nothing: who is calling (a token or a session), accounts and tokens as their
viewers may see them, webhooks and their deliveries, dead letters. Each opens its own unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from api_gateway.domain.auth import Account, ApiToken, Principal, Role, digest, lower_role, same_secret
from api_gateway.domain.dead_letters import DeadLetterSummary, summarize
from api_gateway.domain.errors import BadCredentials, NotAllowed, UnknownUser, WebhookNotFound
from api_gateway.domain.webhooks import Delivery, Webhook
from api_gateway.service_layer.ports import DeadLetterArchive
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork

if TYPE_CHECKING:
    from api_gateway.service_layer.handlers import Deps


async def principal_for_token(token: str, uow: GatewayUnitOfWork, deps: Deps) -> Principal:
    hashed = digest(token)
    if deps.env_token_digest and same_secret(hashed, deps.env_token_digest):
        return Principal(id="env-token", name="API_TOKEN", via="env-token", role=Role.ADMIN, credential="env-token")
    now = deps.clock()
    async with uow:
        found = await uow.tokens.by_digest(hashed)
        owner = None if found is None or found.account_id is None else await uow.accounts.get(found.account_id)
    if found is None or found.expired(now):
        raise BadCredentials("unknown or expired API token")
    role = found.role
    if found.account_id is not None:
        if owner is None or not owner.active:
            raise BadCredentials("the API token's account is disabled")
        role = lower_role(role, owner.role)
    return Principal(
        id=f"token:{found.id}",
        name=found.name,
        via="token",
        role=role,
        account_id=found.account_id,
        credential=f"token:{found.id}",
        expires_at=found.expires_at,
    )


async def principal_for_session(secret: str, uow: GatewayUnitOfWork, deps: Deps) -> Principal:
    async with uow:
        session = await uow.logins.by_digest(digest(secret), deps.clock())
        account = None if session is None else await uow.accounts.get(session.account_id)
    if session is None or account is None or not account.active:
        raise BadCredentials("session expired or unknown; log in again")
    return Principal(
        id=f"account:{account.id}",
        name=account.username,
        via="session",
        role=account.role,
        account_id=account.id,
        credential=f"session:{session.id}",
        expires_at=session.expires_at,
    )


async def users(principal: Principal, uow: GatewayUnitOfWork) -> list[Account]:
    require_admin(principal)
    async with uow:
        return await uow.accounts.all_accounts()


async def user(principal: Principal, user_id: str, uow: GatewayUnitOfWork) -> Account:
    require_admin(principal)
    async with uow:
        account = await uow.accounts.get(user_id)
    if account is None:
        raise UnknownUser(user_id)
    return account


async def tokens(principal: Principal, uow: GatewayUnitOfWork) -> list[ApiToken]:
    """Admins see every token; anyone else their own."""
    async with uow:
        if principal.role is Role.ADMIN:
            return await uow.tokens.list()
        if principal.account_id is None:
            return []
        return await uow.tokens.list(principal.account_id)


def require_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise NotAllowed("only an admin manages users")


def may_manage(principal: Principal, token: ApiToken) -> bool:
    own = principal.account_id is not None and token.account_id == principal.account_id
    return principal.role is Role.ADMIN or own


async def webhooks(uow: GatewayUnitOfWork) -> list[Webhook]:
    async with uow:
        return await uow.webhooks.all_webhooks()


async def webhook(webhook_id: str, uow: GatewayUnitOfWork) -> Webhook:
    async with uow:
        found = await uow.webhooks.get(webhook_id)
    if found is None:
        raise WebhookNotFound(webhook_id)
    return found


async def deliveries(
    webhook_id: str, limit: int, before: tuple[datetime, str] | None, uow: GatewayUnitOfWork
) -> list[Delivery]:
    """Newest first, before the (created_at, id) position when given."""
    async with uow:
        if await uow.webhooks.get(webhook_id) is None:
            raise WebhookNotFound(webhook_id)
        return await uow.webhooks.deliveries(webhook_id, limit, before)


async def dead_letters(archive: DeadLetterArchive) -> list[DeadLetterSummary]:
    """One item per (consumer, message), newest first; read from JetStream, not the database."""
    return summarize(await archive.entries())
