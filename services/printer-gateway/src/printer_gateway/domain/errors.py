"""The printer gateway's errors, each declaring the HTTP problem it becomes (servicekit's installer answers them
all); the model, the use cases and the driver port raise them from here."""

from __future__ import annotations

from servicekit.domain_errors import DomainError, field_errors


class PrinterError(DomainError):
    """A request the printer's current state forbids; the message is safe to show."""

    status, title = 409, "Conflict"


class PrinterNotFound(DomainError):
    status, title = 404, "Not found"

    def __init__(self, printer_id: str) -> None:
        super().__init__(f"no printer {printer_id}")
        self.printer_id = printer_id


class SerialTaken(DomainError):
    status, title = 409, "Conflict"

    def __init__(self, serial: str, printer_id: str | None = None) -> None:
        known = f" ({printer_id})" if printer_id else ""
        super().__init__(
            f"a printer with serial {serial} is already registered{known}",
            errors=field_errors("serial", "already registered"),
        )
        self.printer_id = printer_id


class AccessCodeRequired(DomainError):
    """A change of where the gateway connects came without the printer's secret (access code or API key)."""

    status, title = 422, "Unprocessable content"

    def __init__(self, fields: list[str], secret_field: str = "access_code") -> None:
        super().__init__(
            f"changing {', '.join(fields)} requires the printer's {secret_field} in the same request",
            errors=field_errors(secret_field, f"required when changing {', '.join(fields)}"),
        )
        self.fields = fields
        self.secret_field = secret_field


class WrongSecretField(DomainError):
    """The printer's secret sent under the other protocol's name (an `api_key` for a Bambu printer, say)."""

    status, title = 422, "Unprocessable content"

    def __init__(self, protocol: str, secret_field: str, wrong: str) -> None:
        message = f"a {protocol} printer takes {secret_field}, not {wrong}"
        super().__init__(f"{wrong}: {message}", errors=field_errors(wrong, message))


class CameraUnavailable(DomainError):
    """No picture from this printer's camera now; the message says why and is safe to show. The printer's state
    (unreachable, no camera the gateway can show) forbids a picture: a 409 with the reason, the gateway is fine."""

    status, title = 409, "Camera unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.detail = f"camera unavailable: {reason}"
