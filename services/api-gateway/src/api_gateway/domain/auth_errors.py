"""Why a credential or an account change was refused; mapped to 401/403/404/409/429/503 at the HTTP edge."""

from __future__ import annotations


class BadCredentials(Exception):
    """Unknown user, wrong password, a disabled account, or an unknown/expired token or session."""


class UnknownToken(Exception):
    """No API token with that id (or none the caller may see)."""


class UnknownUser(Exception):
    """No account with that id."""


class NotAllowed(Exception):
    """The caller's role (or credential) does not allow this; `field` names the offending input, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UsernameTaken(Exception):
    """Another account already has this username."""


class LastAdmin(Exception):
    """The change would leave no active admin account."""


class InvalidField(Exception):
    """A request field that cannot be accepted (a weak password, an expiry in the past...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field, self.message = field, message


class TooManyAttempts(Exception):
    """Logins for this user or from this address are paused after repeated failures."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


class HashingBusy(Exception):
    """Every password-hashing slot is taken and the waiting line is full."""
