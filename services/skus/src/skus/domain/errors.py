"""What can go wrong with parts and SKUs, in domain terms, each declaring the HTTP problem it becomes
(servicekit's installer answers them all)."""

from __future__ import annotations

from servicekit.domain_errors import DomainError, field_errors


class SkusError(DomainError):
    pass


class Invalid(SkusError):
    """Input that breaks a rule; `field` names where (`parts[1].sku_params`)."""

    status, title = 422, "Unprocessable content"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=field_errors(field, message))
        self.field, self.message = field, message


class NotFound(SkusError):
    status, title = 404, "Not found"

    def __init__(self, what: str, id: str) -> None:
        super().__init__(f"{what} {id} not found")
        self.what, self.id = what, id


class DuplicateSku(SkusError):
    status, title = 409, "Conflict"

    def __init__(self, code: str, existing_id: str, existing_code: str) -> None:
        message = f"SKU code {code!r} is already used by SKU {existing_code!r} ({existing_id})"
        super().__init__(
            message, errors=field_errors("sku", message), extra={"existing": {"id": existing_id, "sku": existing_code}}
        )
        self.detail = f"sku: {message}"
        self.code, self.existing_id, self.existing_code = code, existing_id, existing_code


class InUse(SkusError):
    """Deleting something others still need; `users` names them."""

    status, title = 409, "Conflict"

    def __init__(self, message: str, users: list[dict[str, str]]) -> None:
        super().__init__(message, extra={"used_by": users})
        self.users = users


class UploadTooLarge(SkusError):
    status, title = 413, "Content too large"

    def __init__(self, limit_bytes: int) -> None:
        reason = f"larger than the upload limit of {limit_bytes} bytes"
        message = f"the upload is larger than the limit of {limit_bytes} bytes"
        super().__init__(message, errors=field_errors("file", reason))
        self.detail = f"file: {reason}"
        self.limit_bytes = limit_bytes


class StorageUnavailable(SkusError):
    """The file could not be stored (object store or disk down): worth retrying later."""

    status, title = 503, "Service unavailable"
