"""Which service owns a public path: the gateway's whole routing knowledge, by path prefix."""

from __future__ import annotations

OWNERS: tuple[tuple[str, str], ...] = (
    ("/api/v1/parts", "skus"),
    ("/api/v1/skus", "skus"),
    ("/api/v1/orders", "orders"),
    ("/api/v1/customers", "orders"),
    ("/api/v1/jobs", "queue"),
    ("/api/v1/queue", "queue"),
    ("/api/v1/printers", "printer-gateway"),
)

UPLOAD_PREFIXES: tuple[str, ...] = ("/api/v1/parts",)
"""Paths whose POST/PUT bodies may be large files: streamed, with the long timeout."""


def owner_of(path: str) -> str | None:
    """The service owning `path`, or None. `/api/v1/partsX` is not `/api/v1/parts`."""
    for prefix, service in OWNERS:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def is_upload(method: str, path: str, content_type: str) -> bool:
    if method not in ("POST", "PUT", "PATCH"):
        return False
    if content_type.lower().startswith("multipart/") or content_type.lower().startswith("application/octet-stream"):
        return True
    return any(path == p or path.startswith(p + "/") for p in UPLOAD_PREFIXES) and not is_json(content_type)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
