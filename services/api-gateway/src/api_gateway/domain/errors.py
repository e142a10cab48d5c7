"""The gateway's domain errors, each declaring the HTTP problem it becomes (servicekit's installer answers
them all): refused credentials and account changes, webhook settings, dead letters, Idempotency-Keys."""

from __future__ import annotations

from servicekit.domain_errors import DomainError, field_errors

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="printfarm"'}
"""What every 401 carries: how to authenticate."""

BUSY = {"Retry-After": "2"}
"""What a 503 of the gateway's own carries: when to try again."""


class BadCredentials(DomainError):
    """Unknown user, wrong password, a disabled account, or an unknown/expired token or session."""

    status, title = 401, "Unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=dict(CHALLENGE))


class UnknownToken(DomainError):
    """No API token with that id (or none the caller may see)."""

    status, title = 404, "Not found"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"no API token {token_id}")


class UnknownUser(DomainError):
    """No account with that id."""

    status, title = 404, "Not found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user {user_id}")


class NotAllowed(DomainError):
    """The caller's role (or credential) does not allow this; `field` names the offending input, if any."""

    status, title = 403, "Forbidden"

    def __init__(self, message: str, field: str | None = None) -> None:
        if field is None:
            super().__init__(message)
        else:
            super().__init__(f"{field}: {message}", errors=field_errors(field, message))
        self.field = field


class UsernameTaken(DomainError):
    """Another account already has this username."""

    status, title = 409, "Conflict"

    def __init__(self, username: str) -> None:
        super().__init__(f"username: {username} is taken", errors=field_errors("username", f"{username} is taken"))


class LastAdmin(DomainError):
    """The change would leave no active admin account."""

    status, title = 409, "Conflict"

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} is the last active admin; make another admin first")


class InvalidField(DomainError):
    """A request field that cannot be accepted (a weak password, an expiry in the past...)."""

    status, title = 422, "Unprocessable content"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=field_errors(field, message))
        self.field, self.message = field, message


class TooManyAttempts(DomainError):
    """Logins for this user or from this address are paused after repeated failures."""

    status, title = 429, "Too many requests"

    def __init__(self, retry_after: float) -> None:
        seconds = int(retry_after) + 1
        super().__init__(
            f"too many failed logins; try again in {seconds} s",
            extra={"retry_after": seconds},
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after = retry_after


class HashingBusy(DomainError):
    """Every password-hashing slot is taken and the waiting line is full."""

    status, title = 503, "Service unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=dict(BUSY))


class WebhookInvalid(DomainError):
    """Bad webhook settings; `field` names what to fix."""

    status, title = 422, "Unprocessable content"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}", errors=field_errors(field_name, message))
        self.field = field_name
        self.message = message


class WebhookNotFound(DomainError):
    """No webhook with that id."""

    status, title = 404, "Not found"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook {webhook_id}")
        self.webhook_id = webhook_id


class UnknownDeadLetter(DomainError):
    """No dead letter holds this message id (never dead-lettered, or already replayed)."""

    status, title = 404, "Not found"

    def __init__(self, message_id: str) -> None:
        super().__init__(f"no dead letter holds message {message_id} (never dead-lettered, or already replayed)")


class ArchiveUnavailable(DomainError):
    """The message bus holding the dead letters did not answer."""

    status, title = 503, "Service unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the message bus {reason}; try again shortly", extra={"service": "nats"}, headers={"Retry-After": "2"}
        )


class KeyReused(DomainError):
    """The key was first used for a different request."""

    status, title = 422, "Unprocessable content"

    def __init__(self, key: str) -> None:
        message = "was already used with a different request (method, path or body)"
        super().__init__(f"Idempotency-Key: {message}", errors=field_errors("Idempotency-Key", message))
        self.key = key


class StillInFlight(DomainError):
    """The first request with this key has not finished yet."""

    status, title = 409, "Conflict"

    def __init__(self, key: str) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress; retry it later")
        self.key = key
