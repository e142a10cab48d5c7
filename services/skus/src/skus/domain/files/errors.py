"""The one error the file readers raise; it answers 422 naming `field` (413 when too large to read)."""

from __future__ import annotations

from servicekit.domain_errors import DomainError, field_errors


class FileRejected(DomainError):
    """An uploaded file that cannot be used as a part, with the form field it came from."""

    status, title = 422, "Unprocessable content"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", errors=field_errors(field, reason))
        self.field = field
        self.reason = reason


class FileTooLarge(FileRejected):
    """The file would take more to read than an inspection may spend (the edge answers 413)."""

    status, title = 413, "Content too large"
