"""Why a credential was refused; mapped to 401/403/404 at the HTTP edge."""

from __future__ import annotations


class BadCredentials(Exception):
    """Unknown user, wrong password, or an unknown/expired token or session."""


class UnknownToken(Exception):
    """No API token with that id."""
