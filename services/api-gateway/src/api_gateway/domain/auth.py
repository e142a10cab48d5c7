"""Who is calling: accounts with roles, API tokens and browser sessions. Secrets are stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
"""What an account's username may be: 1–128 letters, digits or . _ @ + - (first a letter or digit)."""

TOKEN_PREFIX = "pf_"


class Role(StrEnum):
    """What a caller may do: viewers read, operators run the farm, admins also manage printers and people."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


ROLE_ORDER: tuple[Role, ...] = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


def lower_role(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password_hash: str
    created_at: datetime
    role: Role = Role.ADMIN
    disabled_at: datetime | None = None
    password_changed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class ApiToken:
    """`account_id` is the account that minted it (None: minted with the API_TOKEN); the token can do no
    more than that account can do now, and nothing once it expired or the account was disabled."""

    id: str
    name: str
    account_id: str | None
    token_sha256: str
    hint: str
    created_at: datetime
    role: Role = Role.VIEWER
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Session:
    id: str
    account_id: str
    session_sha256: str
    created_at: datetime
    expires_at: datetime


Via = Literal["token", "session", "env-token", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    `id` scopes idempotency keys; `credential` names the token or session that authenticated it (what
    a logout or revocation ends); `expires_at` is when that credential stops working by itself.
    """

    id: str
    name: str
    via: Via
    role: Role = Role.VIEWER
    account_id: str | None = None
    credential: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class EndedCredentials:
    """Credentials that stopped working (logout, revocation, a disabled account, a changed password):
    whatever they hold open, such as a live event stream, is closed."""

    credentials: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()

    def covers(self, principal: Principal) -> bool:
        return principal.credential in self.credentials or (
            principal.account_id is not None and principal.account_id in self.accounts
        )


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def password_problem(username: str, password: str) -> str | None:
    """Why `password` may not be used for `username`, or None. Length is what matters (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if password.strip().casefold() == username.strip().casefold():
        return "must not be the username"
    return None


def digest(secret: str) -> str:
    """Tokens are long random strings, so one fast hash is enough (unlike passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def token_hint(token: str) -> str:
    """A recognisable, non-secret prefix shown in token lists."""
    return token[: len(TOKEN_PREFIX) + 4] + "…"
