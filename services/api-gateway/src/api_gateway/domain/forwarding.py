"""Which headers cross the gateway. Hop-by-hop headers and the gateway's own credentials stop here."""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
GATEWAY_ONLY_REQUEST = frozenset({"host", "authorization", "cookie", "x-csrf-token"})
GATEWAY_ONLY_RESPONSE = frozenset({"set-cookie", "server", "date"})

Headers = list[tuple[str, str]]


def request_headers(incoming: Iterable[tuple[str, str]], client_host: str | None, scheme: str, host: str) -> Headers:
    """Everything the client sent except hop-by-hop and credentials, plus X-Forwarded-*."""
    incoming = list(incoming)
    out = [(k, v) for k, v in incoming if k.lower() not in HOP_BY_HOP | GATEWAY_ONLY_REQUEST]
    forwarded_for = [v for k, v in incoming if k.lower() == "x-forwarded-for"]
    if client_host:
        out = [(k, v) for k, v in out if k.lower() != "x-forwarded-for"]
        out.append(("x-forwarded-for", ", ".join([*forwarded_for, client_host])))
    out.append(("x-forwarded-proto", scheme))
    out.append(("x-forwarded-host", host))
    return out


def response_headers(incoming: Iterable[tuple[str, str]], *, buffered: bool = False) -> Headers:
    """Upstream response headers for the client. A buffered body was decoded, so its length/encoding go."""
    drop = HOP_BY_HOP | GATEWAY_ONLY_RESPONSE
    if buffered:
        drop = drop | {"content-length", "content-encoding"}
    return [(k, v) for k, v in incoming if k.lower() not in drop]
