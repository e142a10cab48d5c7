"""Which service owns a public path, which paths are refused outright, and how large a body may be."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote_to_bytes

OWNERS: tuple[tuple[str, str], ...] = (
    ("/api/v1/parts", "skus"),
    ("/api/v1/skus", "skus"),
    ("/api/v1/orders", "orders"),
    ("/api/v1/customers", "orders"),
    ("/api/v1/jobs", "queue"),
    ("/api/v1/queue", "queue"),
    ("/api/v1/forecast", "queue"),
    ("/api/v1/printers", "printer-gateway"),
    ("/api/v1/analytics/jobs", "queue"),
    ("/api/v1/analytics/printers", "printer-gateway"),
)

PART_UPLOADS: tuple[tuple[str, str], ...] = (("POST", "/api/v1/parts"),)
"""The only requests that may carry a part file; every other body is held to the JSON limit."""

BodyBudget = Literal["part-upload", "json"]


def owner_of(path: str) -> str | None:
    """The service owning `path`, or None. `/api/v1/partsX` is not `/api/v1/parts`."""
    for prefix, service in OWNERS:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def path_refusal(raw_path: bytes) -> str | None:
    """Why a request path must not be routed at all, or None.

    The services and the HTTP client between them resolve dot segments and decode escapes on their
    own, so a path the gateway routes by prefix could land somewhere else upstream
    (`/api/v1/parts/../../openapi.json`). Such paths are refused rather than rewritten.
    """
    text = raw_path.decode("latin-1")
    if "\\" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "the path holds a backslash or a control character"
    segments = text.split("/")[1:]
    for index, segment in enumerate(segments):
        decoded = unquote_to_bytes(segment)
        if decoded in (b".", b".."):
            return "the path holds a '.' or '..' segment"
        if b"/" in decoded or b"\\" in decoded or b"\x00" in decoded:
            return "the path holds an encoded '/', '\\' or NUL"
        if unquote_to_bytes(decoded) in (b".", b".."):
            return "the path holds a doubly encoded '.' or '..' segment"
        if not segment and index < len(segments) - 1:
            return "the path holds an empty segment ('//')"
    return None


def body_budget(method: str, path: str) -> BodyBudget:
    """Part files may be large; any other body, whatever its Content-Type, is a JSON-sized request."""
    segments = path.strip("/").split("/")
    for allowed_method, pattern in PART_UPLOADS:
        expected = pattern.strip("/").split("/")
        if method == allowed_method and len(segments) == len(expected) and all(
            p in ("*", s) for p, s in zip(expected, segments, strict=True)
        ):
            return "part-upload"
    return "json"


def is_upload(method: str, path: str, content_type: str) -> bool:
    """Whether the body is streamed through (files) rather than read whole (JSON)."""
    if method not in ("POST", "PUT", "PATCH"):
        return False
    media = content_type.lower()
    if media.startswith("multipart/") or media.startswith("application/octet-stream"):
        return True
    return body_budget(method, path) == "part-upload" and not is_json(content_type)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
