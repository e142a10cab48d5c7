"""What can go wrong with parts and SKUs, in domain terms; the HTTP edge maps each to a status once."""

from __future__ import annotations


class SkusError(Exception):
    pass


class Invalid(SkusError):
    """Input that breaks a rule; `field` names where (`parts[1].sku_params`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class NotFound(SkusError):
    def __init__(self, what: str, id: str) -> None:
        super().__init__(f"{what} {id} not found")
        self.what, self.id = what, id


class DuplicateSku(SkusError):
    def __init__(self, code: str, existing_id: str, existing_code: str) -> None:
        super().__init__(f"SKU code {code!r} is already used by SKU {existing_code!r} ({existing_id})")
        self.code, self.existing_id, self.existing_code = code, existing_id, existing_code


class InUse(SkusError):
    """Deleting something others still need; `users` names them."""

    def __init__(self, message: str, users: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.users = users


class UploadTooLarge(SkusError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class StorageUnavailable(SkusError):
    """The file could not be stored (object store or disk down): worth retrying later."""
