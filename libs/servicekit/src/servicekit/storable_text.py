"""Text PostgreSQL cannot store is refused at the HTTP edge, once for every route.

PostgreSQL's text and jsonb refuse NUL (U+0000), and an unpaired UTF-16 surrogate (which JSON's
``"\\ud800"`` decodes to) cannot even be encoded as UTF-8. Reaching the database, either would fail the
request with a 500 and, mid-way through a handler, could leave a half-done unit of work behind. So
every path parameter, query parameter and JSON or form body field is checked before any handler runs,
and the request is a 422 problem naming each offending field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor
from starlette.datastructures import UploadFile

from servicekit.problems import Invalid

_SURROGATES = range(0xD800, 0xE000)


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which text cannot hold"
    if any(ord(ch) in _SURROGATES for ch in text):
        return "contains an unpaired UTF-16 surrogate, which is not valid Unicode text"
    return None


def unstorable_fields(value: Any, path: str = "") -> Iterator[dict[str, str]]:
    """Every string in a decoded JSON value (keys included) that cannot be stored, by field path."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        if reason:
            yield {"field": path or "body", "message": reason}
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (reason := unstorable_reason(key)):
                yield {"field": path or "body", "message": f"a key {reason}"}
                continue
            yield from unstorable_fields(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_fields(item, f"{path}[{index}]")


def refuse_unstorable_text(fields: Mapping[str, Any]) -> None:
    """422 naming each field that cannot be stored: for what a route parses itself (a streamed upload)."""
    errors = [error for name, value in fields.items() for error in unstorable_fields(value, name)]
    if errors:
        raise Invalid("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


async def reject_unstorable_text(request: Request) -> None:
    """FastAPI dependency: 422 naming each path, query or body field holding text that cannot be stored.

    Bodies are looked at only when the route itself declares one (FastAPI has then already read and
    parsed it, so this costs no extra read); routes that stream their body (uploads, the gateway's proxy)
    are left to check what they parse.
    """
    route = request.scope.get("route")
    convertors = route.param_convertors if isinstance(route, APIRoute) else {}
    errors = [
        *(
            error
            for name, value in request.path_params.items()
            # a catch-all `{rest:path}` is forwarded (the gateway's proxy), and the owner names the field
            if isinstance(value, str) and not isinstance(convertors.get(name), PathConvertor)
            for error in unstorable_fields(value, name)
        ),
        *(error for name, value in request.query_params.multi_items() for error in unstorable_fields(value, name)),
    ]
    if isinstance(route, APIRoute) and route.body_field is not None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for name, item in form.multi_items():
                if not isinstance(item, UploadFile):
                    errors.extend(unstorable_fields(item, name))
        elif "json" in content_type or not content_type:
            try:
                body = await request.json()
            except ValueError:
                body = None  # FastAPI has already answered malformed JSON
            errors.extend(unstorable_fields(body))
    if errors:
        raise Invalid("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


StorableText = Depends(reject_unstorable_text)
"""Put on an app or router: ``FastAPI(dependencies=[StorableText])``."""
