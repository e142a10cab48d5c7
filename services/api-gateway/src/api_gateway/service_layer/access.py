"""Accounts, roles, API tokens and browser sessions: the first admin, login (throttled, equal time),
logout, users, passwords, token issue/check/revocation, and telling open streams when a credential ended."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from api_gateway.domain.auth import (
    TOKEN_PREFIX,
    Account,
    ApiToken,
    EndedCredentials,
    Principal,
    Role,
    Session,
    digest,
    lower_role,
    password_problem,
    same_secret,
    token_hint,
)
from api_gateway.domain.auth_errors import (
    BadCredentials,
    InvalidField,
    LastAdmin,
    NotAllowed,
    TooManyAttempts,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
)
from api_gateway.domain.login_throttle import LoginThrottle, ThrottlePolicy
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from servicekit.ids import Clock, IdFactory

log = logging.getLogger(__name__)

UowFactory = Callable[[], GatewayUnitOfWork]
SecretFactory = Callable[[], str]
EndedListener = Callable[[EndedCredentials], None]
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class CredentialsFile(Protocol):
    """Where the first admin's secrets are written once for the operator to pick up."""

    def write(self, username: str, password: str, api_token: str) -> str: ...
    def discard(self) -> None: ...
    def password_changed(self, username: str) -> bool: ...


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


@dataclass(frozen=True)
class TokenLifetimes:
    default: timedelta = timedelta(days=90)
    longest: timedelta = timedelta(days=365)


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
        token_lifetimes: TokenLifetimes | None = None,
        throttle: ThrottlePolicy | None = None,
        first_admin_file: CredentialsFile | None = None,
    ) -> None:
        self.uow_factory, self.passwords = uow_factory, passwords
        self.secrets, self.ids, self.clock = secrets, ids, clock
        self.env_token_digest = digest(env_token) if env_token else ""
        self.session_ttl = session_ttl
        self.token_lifetimes = token_lifetimes or TokenLifetimes()
        self.throttle = LoginThrottle(throttle or ThrottlePolicy())
        self.first_admin_file = first_admin_file
        self._listeners: list[EndedListener] = []
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    def on_credentials_ended(self, listener: EndedListener) -> None:
        self._listeners.append(listener)

    async def prepare(self) -> None:
        """Make the dummy hash at start, so the first unknown-user login costs no more than any other."""
        await self._dummy()

    # --- the first admin -------------------------------------------------------------------------

    async def ensure_first_admin(self, username: str, password: str = "") -> bool:
        """Create the first account (an admin) and an admin token for it when there is no account at all.

        The secrets go to the first-admin file before the commit; if another replica won the race the
        file is discarded, so exactly one set of working secrets is ever written.
        """
        credentials = self.first_admin_file
        if credentials is None:
            raise RuntimeError("no first-admin file configured")
        async with self.uow_factory() as uow:
            if await uow.accounts.any():
                return False
            password = password or self.secrets()
            now = self.clock()
            account = Account(self.ids(), username, await self.passwords.hash(password), now, role=Role.ADMIN)
            if not await uow.accounts.add(account):
                return False
            issued = self._new_token("first admin", account.id, Role.ADMIN, now + self.token_lifetimes.default)
            await uow.tokens.add(issued.token)
            where = credentials.write(username, password, issued.secret)
            try:
                await uow.commit()
            except Exception:
                credentials.discard()
                raise
        log.warning("created the first admin account %r; its password and API token are in %s", username, where)
        return True

    # --- who is calling ----------------------------------------------------------------------------

    async def authenticate_token(self, token: str) -> Principal:
        hashed = digest(token)
        if self.env_token_digest and same_secret(hashed, self.env_token_digest):
            return Principal(id="env-token", name="API_TOKEN", via="env-token", role=Role.ADMIN, credential="env-token")
        now = self.clock()
        async with self.uow_factory() as uow:
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

    async def authenticate_session(self, secret: str) -> Principal:
        async with self.uow_factory() as uow:
            session = await uow.logins.by_digest(digest(secret), self.clock())
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

    # --- sessions --------------------------------------------------------------------------------------

    async def login(self, username: str, password: str, address: str | None = None) -> IssuedSession:
        """One password check per attempt whether or not the user exists, so timing tells nothing;
        repeated failures pause logins for that username and for that address."""
        wait = self.throttle.retry_after(username, address, self.clock())
        if wait is not None:
            raise TooManyAttempts(wait)
        async with self.uow_factory() as uow:
            account = await uow.accounts.by_username(username)
        stored = account.password_hash if account is not None else await self._dummy()
        matches = await self.passwords.verify(stored, password)
        if account is None or not matches or not account.active:
            self.throttle.failed(username, address, self.clock())
            raise BadCredentials("wrong username or password")
        self.throttle.succeeded(username)
        async with self.uow_factory() as uow:
            now = self.clock()
            secret = self.secrets()
            session = Session(self.ids(), account.id, digest(secret), now, now + self.session_ttl)
            await uow.logins.add(session)
            await uow.logins.prune(now)
            await uow.commit()
        return IssuedSession(secret, self.secrets(), account, session.expires_at)

    async def logout(self, secret: str) -> None:
        async with self.uow_factory() as uow:
            ended = await uow.logins.delete_by_digest(digest(secret))
            await uow.commit()
        if ended is not None:
            self._ended(EndedCredentials(credentials=frozenset({f"session:{ended}"})))

    async def change_own_password(self, principal: Principal, current: str, new: str) -> None:
        """The caller's own password; the account's other sessions end, the one in use stays."""
        if principal.account_id is None:
            raise NotAllowed("only an account has a password; this credential belongs to none")
        async with self.uow_factory() as uow:
            account = await uow.accounts.get(principal.account_id)
        if account is None or not account.active:
            raise BadCredentials("the account is gone or disabled")
        wait = self.throttle.retry_after(account.username, None, self.clock())
        if wait is not None:
            raise TooManyAttempts(wait)
        if not await self.passwords.verify(account.password_hash, current):
            self.throttle.failed(account.username, None, self.clock())
            raise InvalidField("current_password", "is wrong")
        keep = principal.credential.removeprefix("session:") if principal.via == "session" else None
        await self._set_password(account, new, keep_session=keep)

    # --- users (admins) -------------------------------------------------------------------------------

    async def list_users(self, principal: Principal) -> list[Account]:
        _require_admin(principal)
        async with self.uow_factory() as uow:
            return await uow.accounts.all_accounts()

    async def get_user(self, principal: Principal, user_id: str) -> Account:
        _require_admin(principal)
        async with self.uow_factory() as uow:
            account = await uow.accounts.get(user_id)
        if account is None:
            raise UnknownUser(user_id)
        return account

    async def create_user(self, principal: Principal, username: str, role: Role, password: str | None) -> NewUser:
        """An invitation: the account exists at once; a generated first password is returned once."""
        _require_admin(principal)
        if not USERNAME.match(username):
            raise InvalidField("username", "must be 1–128 letters, digits or . _ @ + - (first a letter or digit)")
        generated = None
        if password is None:
            password = generated = self.secrets()
        elif (problem := password_problem(username, password)) is not None:
            raise InvalidField("password", problem)
        account = Account(self.ids(), username, await self.passwords.hash(password), self.clock(), role=role)
        async with self.uow_factory() as uow:
            if not await uow.accounts.add(account):
                raise UsernameTaken(username)
            await uow.commit()
        log.info("%s created the %s account %r", principal.name, role.value, username)
        return NewUser(account, generated)

    async def update_user(
        self, principal: Principal, user_id: str, *, role: Role | None = None, disabled: bool | None = None
    ) -> Account:
        """Role and enabled state. The last active admin can be neither demoted nor disabled."""
        _require_admin(principal)
        now = self.clock()
        ended: list[str] = []
        async with self.uow_factory() as uow:
            admins = await uow.accounts.lock_admins()
            account = await uow.accounts.get(user_id)
            if account is None:
                raise UnknownUser(user_id)
            changed = account
            if role is not None:
                changed = replace(changed, role=role)
            if disabled is not None:
                changed = replace(changed, disabled_at=(account.disabled_at or now) if disabled else None)
            was_admin = account.active and account.role is Role.ADMIN
            still_admin = changed.active and changed.role is Role.ADMIN
            if was_admin and not still_admin and not [a for a in admins if a.id != account.id]:
                raise LastAdmin(account.username)
            await uow.accounts.update(changed)
            if not changed.active:
                ended = await uow.logins.delete_for_account(account.id)
            await uow.commit()
        if not changed.active:
            self._ended(EndedCredentials(accounts=frozenset({account.id})))
        log.info(
            "%s set account %r to role %s%s (%d sessions ended)",
            principal.name, account.username, changed.role.value, "" if changed.active else ", disabled", len(ended),
        )
        return changed

    async def set_user_password(self, principal: Principal, user_id: str, new: str) -> Account:
        """An admin's reset: every session of that account ends."""
        account = await self.get_user(principal, user_id)
        return await self._set_password(account, new, keep_session=None)

    # --- API tokens ---------------------------------------------------------------------------------------

    async def create_token(
        self, principal: Principal, name: str, role: Role | None = None, expires_at: datetime | None = None
    ) -> IssuedToken:
        """A token can do no more than its creator, and outlives neither the longest lifetime nor the
        credential it was made with."""
        now = self.clock()
        role = role or principal.role
        if not principal.role.allows(role):
            raise NotAllowed(f"a {principal.role.value} cannot create a token with the {role.value} role", "role")
        expires_at = expires_at or now + self.token_lifetimes.default
        if expires_at <= now:
            raise InvalidField("expires_at", "must be in the future")
        if expires_at > now + self.token_lifetimes.longest:
            raise InvalidField("expires_at", f"must be within {self.token_lifetimes.longest.days} days")
        if principal.expires_at is not None and principal.via == "token" and expires_at > principal.expires_at:
            raise InvalidField("expires_at", "must not be later than the expiry of the token used to create it")
        issued = self._new_token(name, principal.account_id, role, expires_at)
        async with self.uow_factory() as uow:
            await uow.tokens.add(issued.token)
            await uow.commit()
        return issued

    async def list_tokens(self, principal: Principal) -> list[ApiToken]:
        """Admins see every token; anyone else their own."""
        async with self.uow_factory() as uow:
            if principal.role is Role.ADMIN:
                return await uow.tokens.list()
            if principal.account_id is None:
                return []
            return await uow.tokens.list(principal.account_id)

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        async with self.uow_factory() as uow:
            token = await uow.tokens.get(token_id)
            if token is None or not _may_manage(principal, token):
                raise UnknownToken(token_id)
            await uow.tokens.delete(token_id)
            await uow.commit()
        self._ended(EndedCredentials(credentials=frozenset({f"token:{token_id}"})))

    # --- internals ------------------------------------------------------------------------------------------

    async def _set_password(self, account: Account, new: str, *, keep_session: str | None) -> Account:
        if (problem := password_problem(account.username, new)) is not None:
            raise InvalidField("new_password" if keep_session is not None else "password", problem)
        changed = replace(account, password_hash=await self.passwords.hash(new), password_changed_at=self.clock())
        async with self.uow_factory() as uow:
            await uow.accounts.update(changed)
            ended = await uow.logins.delete_for_account(account.id, keep=keep_session)
            await uow.commit()
        self._ended(EndedCredentials(credentials=frozenset(f"session:{s}" for s in ended)))
        if self.first_admin_file is not None and self.first_admin_file.password_changed(account.username):
            log.warning("the first admin's password was changed; removed the first-admin file")
        return changed

    async def _dummy(self) -> str:
        """A real hash to verify unknown usernames against, so they cost what a wrong password costs."""
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self.passwords.hash(self.secrets())
            return self._dummy_hash

    def _ended(self, ended: EndedCredentials) -> None:
        for listener in self._listeners:
            listener(ended)

    def _new_token(self, name: str, account_id: str | None, role: Role, expires_at: datetime) -> IssuedToken:
        secret = TOKEN_PREFIX + self.secrets()
        token = ApiToken(
            self.ids(), name, account_id, digest(secret), token_hint(secret), self.clock(), role=role,
            expires_at=expires_at,
        )
        return IssuedToken(token, secret)


def _require_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise NotAllowed("only an admin manages users")


def _may_manage(principal: Principal, token: ApiToken) -> bool:
    own = principal.account_id is not None and token.account_id == principal.account_id
    return principal.role is Role.ADMIN or own
