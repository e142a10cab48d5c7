"""The gateway's write use cases: accounts, sessions and API tokens; webhooks and their deliveries; dead
letters. Each is `async def <verb_noun>(cmd, uow, deps)` and owns its transactions: it opens `async with
uow:` and commits itself. A slow step (hashing a password) happens between two short transactions on the
same unit of work, never inside one; what must follow a commit (closing streams, waking the webhook
dispatcher) follows it here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets as secret_tokens
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta

from api_gateway.domain import commands
from api_gateway.domain.auth import (
    TOKEN_PREFIX,
    USERNAME,
    Account,
    ApiToken,
    EndedCredentials,
    Role,
    Session,
    digest,
    password_problem,
    token_hint,
)
from api_gateway.domain.dead_letters import Replay, plan_replay
from api_gateway.domain.errors import (
    BadCredentials,
    InvalidField,
    LastAdmin,
    NotAllowed,
    TooManyAttempts,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
    WebhookNotFound,
)
from api_gateway.domain.login_throttle import LoginThrottle, ThrottlePolicy
from api_gateway.domain.webhooks import (
    PING,
    WEBHOOK_EVENTS,
    Delivery,
    Outcome,
    RetryPolicy,
    Webhook,
    check_events,
    check_secret,
    check_url,
    outcome,
)
from api_gateway.service_layer import views
from api_gateway.service_layer.ports import CredentialsFile, DeadLetterArchive, PasswordHasher
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from servicekit.ids import Clock, IdFactory, new_id, utc_now

log = logging.getLogger(__name__)

SecretFactory = Callable[[], str]
EndedListener = Callable[[EndedCredentials], None]


def new_secret() -> str:
    return secret_tokens.token_urlsafe(32)


@dataclass(frozen=True)
class TokenLifetimes:
    default: timedelta = timedelta(days=90)
    longest: timedelta = timedelta(days=365)


class CredentialsEnded:
    """Who hears that credentials ended (the event hub closes their streams), told after the commit."""

    def __init__(self) -> None:
        self._listeners: list[EndedListener] = []

    def listen(self, listener: EndedListener) -> None:
        self._listeners.append(listener)

    def __call__(self, ended: EndedCredentials) -> None:
        for listener in self._listeners:
            listener(ended)


class UnknownUserHash:
    """A real hash to verify unknown usernames against, so they cost what a wrong password costs. Made
    once (at start: `get` in the bootstrap), so the first unknown-user login costs no more than any other."""

    def __init__(self) -> None:
        self._hash: str | None = None
        self._lock = asyncio.Lock()

    async def get(self, passwords: PasswordHasher, secrets: SecretFactory) -> str:
        async with self._lock:
            if self._hash is None:
                self._hash = await passwords.hash(secrets())
            return self._hash


@dataclass(frozen=True)
class Deps:
    """Time, ids and secrets, then the gateway's policies and ports."""

    clock: Clock = utc_now
    ids: IdFactory = new_id
    _: KW_ONLY
    secrets: SecretFactory = new_secret
    """Session secrets, CSRF tokens, API token secrets and generated passwords."""
    passwords: PasswordHasher | None = None
    env_token_digest: str = ""
    """The digest of `API_TOKEN` (an admin credential not stored); empty when unset."""
    session_ttl: timedelta = timedelta(hours=12)
    token_lifetimes: TokenLifetimes = field(default_factory=TokenLifetimes)
    throttle: LoginThrottle = field(default_factory=lambda: LoginThrottle(ThrottlePolicy()))
    """Failed logins per username and per address (in memory, per replica)."""
    first_admin_file: CredentialsFile | None = None
    credentials_ended: CredentialsEnded = field(default_factory=CredentialsEnded)
    unknown_user_hash: UnknownUserHash = field(default_factory=UnknownUserHash)
    allowed_hosts: frozenset[str] = frozenset()
    """Where webhooks may point (`WEBHOOK_ALLOWED_HOSTS`); empty: anywhere."""
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    delivery_lease: timedelta = timedelta(seconds=60)
    """How long a dispatcher holds a delivery it claimed (longer than one attempt can take)."""
    wake_dispatcher: Callable[[], None] = lambda: None
    """Tells the webhook dispatcher that a delivery became due now."""
    dead_letters: DeadLetterArchive | None = None

    @property
    def hasher(self) -> PasswordHasher:
        if self.passwords is None:
            raise RuntimeError("no password hasher was given to the gateway's Deps")
        return self.passwords

    @property
    def archive(self) -> DeadLetterArchive:
        if self.dead_letters is None:
            raise RuntimeError("no dead-letter archive was given to the gateway's Deps")
        return self.dead_letters


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


@dataclass(frozen=True)
class NewUser:
    account: Account
    password: str | None
    """The generated first password, when none was given: shown once, to hand to the person."""


# --- accounts, sessions, tokens ------------------------------------------------------------------


async def ensure_first_admin(cmd: commands.EnsureFirstAdmin, uow: GatewayUnitOfWork, deps: Deps) -> bool:
    """Create the first account (an admin) and an admin token for it when there is no account at all.

    The secrets go to the first-admin file before the commit; if another replica won the race the
    file is discarded, so exactly one set of working secrets is ever written.
    """
    credentials = deps.first_admin_file
    if credentials is None:
        raise RuntimeError("no first-admin file configured")
    async with uow:
        if await uow.accounts.any():
            return False
        password = cmd.password or deps.secrets()
        now = deps.clock()
        account = Account(deps.ids(), cmd.username, await deps.hasher.hash(password), now, role=Role.ADMIN)
        if not await uow.accounts.add(account):
            return False
        issued = _new_token(deps, "first admin", account.id, Role.ADMIN, now + deps.token_lifetimes.default)
        await uow.tokens.add(issued.token)
        where = credentials.write(cmd.username, password, issued.secret)
        try:
            await uow.commit()
        except Exception:
            credentials.discard()
            raise
    log.warning("created the first admin account %r; its password and API token are in %s", cmd.username, where)
    return True


async def login(cmd: commands.Login, uow: GatewayUnitOfWork, deps: Deps) -> IssuedSession:
    """One password check per attempt whether or not the user exists, so timing tells nothing;
    repeated failures pause logins for that username and for that address."""
    wait = deps.throttle.retry_after(cmd.username, cmd.address, deps.clock())
    if wait is not None:
        raise TooManyAttempts(wait)
    async with uow:
        account = await uow.accounts.by_username(cmd.username)
    if account is not None:
        stored = account.password_hash
    else:
        stored = await deps.unknown_user_hash.get(deps.hasher, deps.secrets)
    matches = await deps.hasher.verify(stored, cmd.password)
    if account is None or not matches or not account.active:
        deps.throttle.failed(cmd.username, cmd.address, deps.clock())
        raise BadCredentials("wrong username or password")
    deps.throttle.succeeded(cmd.username)
    async with uow:
        now = deps.clock()
        secret = deps.secrets()
        session = Session(deps.ids(), account.id, digest(secret), now, now + deps.session_ttl)
        await uow.logins.add(session)
        await uow.logins.prune(now)
        await uow.commit()
    return IssuedSession(secret, deps.secrets(), account, session.expires_at)


async def logout(cmd: commands.Logout, uow: GatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        ended = await uow.logins.delete_by_digest(digest(cmd.session_secret))
        await uow.commit()
    if ended is not None:
        deps.credentials_ended(EndedCredentials(credentials=frozenset({f"session:{ended}"})))


async def change_own_password(cmd: commands.ChangeOwnPassword, uow: GatewayUnitOfWork, deps: Deps) -> None:
    """The caller's own password; the account's other sessions end, the one in use stays."""
    principal = cmd.principal
    if principal.account_id is None:
        raise NotAllowed("only an account has a password; this credential belongs to none")
    async with uow:
        account = await uow.accounts.get(principal.account_id)
    if account is None or not account.active:
        raise BadCredentials("the account is gone or disabled")
    wait = deps.throttle.retry_after(account.username, None, deps.clock())
    if wait is not None:
        raise TooManyAttempts(wait)
    if not await deps.hasher.verify(account.password_hash, cmd.current_password):
        deps.throttle.failed(account.username, None, deps.clock())
        raise InvalidField("current_password", "is wrong")
    keep = principal.credential.removeprefix("session:") if principal.via == "session" else None
    await _set_password(account, cmd.new_password, uow, deps, keep_session=keep)


async def create_user(cmd: commands.CreateUser, uow: GatewayUnitOfWork, deps: Deps) -> NewUser:
    """An invitation: the account exists at once; a generated first password is returned once."""
    views.require_admin(cmd.principal)
    if not USERNAME.match(cmd.username):
        raise InvalidField("username", "must be 1–128 letters, digits or . _ @ + - (first a letter or digit)")
    password, generated = cmd.password, None
    if password is None:
        password = generated = deps.secrets()
    elif (problem := password_problem(cmd.username, password)) is not None:
        raise InvalidField("password", problem)
    account = Account(deps.ids(), cmd.username, await deps.hasher.hash(password), deps.clock(), role=cmd.role)
    async with uow:
        if not await uow.accounts.add(account):
            raise UsernameTaken(cmd.username)
        await uow.commit()
    log.info("%s created the %s account %r", cmd.principal.name, cmd.role.value, cmd.username)
    return NewUser(account, generated)


async def update_user(cmd: commands.UpdateUser, uow: GatewayUnitOfWork, deps: Deps) -> Account:
    """Role and enabled state. The last active admin can be neither demoted nor disabled."""
    views.require_admin(cmd.principal)
    now = deps.clock()
    ended: list[str] = []
    async with uow:
        admins = await uow.accounts.lock_admins()
        account = await uow.accounts.get(cmd.user_id)
        if account is None:
            raise UnknownUser(cmd.user_id)
        changed = account
        if cmd.role is not None:
            changed = replace(changed, role=cmd.role)
        if cmd.disabled is not None:
            changed = replace(changed, disabled_at=(account.disabled_at or now) if cmd.disabled else None)
        was_admin = account.active and account.role is Role.ADMIN
        still_admin = changed.active and changed.role is Role.ADMIN
        if was_admin and not still_admin and not [a for a in admins if a.id != account.id]:
            raise LastAdmin(account.username)
        await uow.accounts.update(changed)
        if not changed.active:
            ended = await uow.logins.delete_for_account(account.id)
        await uow.commit()
    if not changed.active:
        deps.credentials_ended(EndedCredentials(accounts=frozenset({account.id})))
    log.info(
        "%s set account %r to role %s%s (%d sessions ended)",
        cmd.principal.name, account.username, changed.role.value, "" if changed.active else ", disabled", len(ended),
    )
    return changed


async def set_user_password(cmd: commands.SetUserPassword, uow: GatewayUnitOfWork, deps: Deps) -> Account:
    """An admin's reset: every session of that account ends."""
    account = await views.user(cmd.principal, cmd.user_id, uow)
    return await _set_password(account, cmd.password, uow, deps, keep_session=None)


async def create_token(cmd: commands.CreateToken, uow: GatewayUnitOfWork, deps: Deps) -> IssuedToken:
    """A token can do no more than its creator, and outlives neither the longest lifetime nor the
    credential it was made with."""
    principal = cmd.principal
    now = deps.clock()
    role = cmd.role or principal.role
    if not principal.role.allows(role):
        raise NotAllowed(f"a {principal.role.value} cannot create a token with the {role.value} role", "role")
    expires_at = cmd.expires_at or now + deps.token_lifetimes.default
    if expires_at <= now:
        raise InvalidField("expires_at", "must be in the future")
    if expires_at > now + deps.token_lifetimes.longest:
        raise InvalidField("expires_at", f"must be within {deps.token_lifetimes.longest.days} days")
    if principal.expires_at is not None and principal.via == "token" and expires_at > principal.expires_at:
        raise InvalidField("expires_at", "must not be later than the expiry of the token used to create it")
    issued = _new_token(deps, cmd.name, principal.account_id, role, expires_at)
    async with uow:
        await uow.tokens.add(issued.token)
        await uow.commit()
    return issued


async def revoke_token(cmd: commands.RevokeToken, uow: GatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        token = await uow.tokens.get(cmd.token_id)
        if token is None or not views.may_manage(cmd.principal, token):
            raise UnknownToken(cmd.token_id)
        await uow.tokens.delete(cmd.token_id)
        await uow.commit()
    deps.credentials_ended(EndedCredentials(credentials=frozenset({f"token:{cmd.token_id}"})))


async def _set_password(
    account: Account, new: str, uow: GatewayUnitOfWork, deps: Deps, *, keep_session: str | None
) -> Account:
    if (problem := password_problem(account.username, new)) is not None:
        raise InvalidField("new_password" if keep_session is not None else "password", problem)
    changed = replace(account, password_hash=await deps.hasher.hash(new), password_changed_at=deps.clock())
    async with uow:
        await uow.accounts.update(changed)
        ended = await uow.logins.delete_for_account(account.id, keep=keep_session)
        await uow.commit()
    deps.credentials_ended(EndedCredentials(credentials=frozenset(f"session:{s}" for s in ended)))
    if deps.first_admin_file is not None and deps.first_admin_file.password_changed(account.username):
        log.warning("the first admin's password was changed; removed the first-admin file")
    return changed


def _new_token(deps: Deps, name: str, account_id: str | None, role: Role, expires_at: datetime) -> IssuedToken:
    secret = TOKEN_PREFIX + deps.secrets()
    token = ApiToken(
        deps.ids(), name, account_id, digest(secret), token_hint(secret), deps.clock(), role=role,
        expires_at=expires_at,
    )
    return IssuedToken(token, secret)


# --- webhooks ------------------------------------------------------------------------------------


async def seal_webhook_secrets(cmd: commands.SealWebhookSecrets, uow: GatewayUnitOfWork, deps: Deps) -> int:
    """At start, before anything is sent: secrets stored in the clear (before migration 0004) or under a
    retired key are encrypted under the newest key. Safe with several replicas (rows are locked)."""
    async with uow:
        sealed = await uow.webhooks.seal_secrets()
        await uow.commit()
    return sealed


async def create_webhook(cmd: commands.CreateWebhook, uow: GatewayUnitOfWork, deps: Deps) -> Webhook:
    now = deps.clock()
    webhook = Webhook(
        id=deps.ids(),
        url=check_url(cmd.url, deps.allowed_hosts),
        secret=check_secret(cmd.secret),
        events=check_events(list(WEBHOOK_EVENTS) if cmd.events is None else cmd.events),
        enabled=cmd.enabled,
        created_at=now,
        updated_at=now,
        description=cmd.description.strip(),
    )
    async with uow:
        await uow.webhooks.add(webhook)
        await uow.commit()
    return webhook


async def update_webhook(cmd: commands.UpdateWebhook, uow: GatewayUnitOfWork, deps: Deps) -> Webhook:
    async with uow:
        webhook = await uow.webhooks.get(cmd.webhook_id)
        if webhook is None:
            raise WebhookNotFound(cmd.webhook_id)
        changed = replace(
            webhook,
            url=webhook.url if cmd.url is None else check_url(cmd.url, deps.allowed_hosts),
            secret=webhook.secret if cmd.secret is None else check_secret(cmd.secret),
            events=webhook.events if cmd.events is None else check_events(cmd.events),
            enabled=webhook.enabled if cmd.enabled is None else cmd.enabled,
            description=webhook.description if cmd.description is None else cmd.description.strip(),
            updated_at=deps.clock(),
        )
        await uow.webhooks.update(changed)
        await uow.commit()
    if changed.enabled and not webhook.enabled:
        deps.wake_dispatcher()
    return changed


async def delete_webhook(cmd: commands.DeleteWebhook, uow: GatewayUnitOfWork, deps: Deps) -> None:
    async with uow:
        if not await uow.webhooks.delete(cmd.webhook_id):
            raise WebhookNotFound(cmd.webhook_id)
        await uow.commit()


async def ping_webhook(cmd: commands.PingWebhook, uow: GatewayUnitOfWork, deps: Deps) -> Delivery:
    """A test delivery (`ping`, a CloudEvents envelope like the others) sent through the same path."""
    now, delivery_id, event_id = deps.clock(), deps.ids(), deps.ids()
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "type": "printfarm.webhook.ping",
            "source": "/services/api-gateway",
            "time": now.isoformat(),
            "subject": cmd.webhook_id,
            "datacontenttype": "application/json",
            "data": {"webhook_id": cmd.webhook_id, "events": list(WEBHOOK_EVENTS)},
        },
        separators=(",", ":"),
    ).encode()
    delivery = Delivery(delivery_id, cmd.webhook_id, event_id, PING, body, "pending", 0, now, now)
    async with uow:
        if await uow.webhooks.get(cmd.webhook_id) is None:
            raise WebhookNotFound(cmd.webhook_id)
        await uow.webhooks.add_delivery(delivery)
        await uow.commit()
    deps.wake_dispatcher()
    return delivery


async def enqueue_webhook_event(cmd: commands.EnqueueWebhookEvent, uow: GatewayUnitOfWork, deps: Deps) -> int:
    """One pending delivery per enabled webhook that wants the event; a redelivered event adds none.

    Handed the unit of work servicekit's consumer opened (with the inbox mark claimed), this block joins it,
    so the deliveries commit with the mark; the dispatcher is woken after that commit."""
    added = 0
    async with uow:
        now = deps.clock()
        for webhook in await uow.webhooks.all_webhooks():
            if webhook.wants(cmd.event_type):
                delivery = Delivery(
                    id=deps.ids(),
                    webhook_id=webhook.id,
                    event_id=cmd.envelope.id,
                    event_type=cmd.event_type,
                    body=cmd.body,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                added += int(await uow.webhooks.add_delivery(delivery))
        if added:
            uow.after_commit(_woken(deps.wake_dispatcher))
        await uow.commit()
    return added


async def claim_due_deliveries(
    cmd: commands.ClaimDueDeliveries, uow: GatewayUnitOfWork, deps: Deps
) -> list[tuple[Delivery, Webhook]]:
    """What is due now, held for this dispatcher for the delivery lease (another replica skips it)."""
    now = deps.clock()
    async with uow:
        claimed = await uow.webhooks.claim_due(now, now + deps.delivery_lease, cmd.limit)
        await uow.commit()
    return claimed


async def record_delivery_attempt(cmd: commands.RecordDeliveryAttempt, uow: GatewayUnitOfWork, deps: Deps) -> Outcome:
    """The attempt joins the delivery's history; it is delivered, retried later by the policy, or failed."""
    result = outcome(cmd.attempt, cmd.delivery.attempts, deps.retry_policy, deps.clock())
    async with uow:
        await uow.webhooks.record_attempt(cmd.delivery, cmd.attempt, result)
        await uow.commit()
    return result


def _woken(wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def after() -> None:
        wake()

    return after


# --- dead letters --------------------------------------------------------------------------------


async def replay_dead_letter(cmd: commands.ReplayDeadLetter, uow: GatewayUnitOfWork, deps: Deps) -> Replay:
    """Republish first, forget after: a crash in between leaves the dead letter listed, and replaying
    it again is a JetStream duplicate (same replay id) or an inbox skip, never a second effect.

    Dead letters live in JetStream, not in the gateway's database: the unit of work is not opened."""
    archive = deps.archive
    replay = plan_replay(await archive.entries(), cmd.message_id)
    fresh = await archive.republish(replay)
    await archive.forget(replay.stored_seqs)
    log.info(
        "%s replayed %s to %s for %s%s",
        cmd.by,
        cmd.message_id,
        replay.subject,
        ", ".join(replay.consumers),
        "" if fresh else " (already replayed: JetStream kept the first)",
    )
    return replay
