"""The one error the file readers raise; the HTTP edge maps it to 422 naming `field`."""

from __future__ import annotations


class FileRejected(Exception):
    """An uploaded file that cannot be used as a part, with the form field it came from."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FileTooLarge(FileRejected):
    """The file would take more to read than an inspection may spend (the edge answers 413)."""
