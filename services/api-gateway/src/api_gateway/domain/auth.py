"""Who is calling: accounts, API tokens and browser sessions. Secrets are stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TOKEN_PREFIX = "pf_"


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    account_id: str | None
    token_sha256: str
    hint: str
    created_at: datetime


@dataclass(frozen=True)
class Session:
    id: str
    account_id: str
    session_sha256: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """The caller of one request; `id` scopes idempotency keys."""

    id: str
    name: str
    via: Literal["token", "session", "env-token", "anonymous"]


def digest(secret: str) -> str:
    """Tokens are long random strings, so one fast hash is enough (unlike passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def token_hint(token: str) -> str:
    """A recognisable, non-secret prefix shown in token lists."""
    return token[: len(TOKEN_PREFIX) + 4] + "…"
