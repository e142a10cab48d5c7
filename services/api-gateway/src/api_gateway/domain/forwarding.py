"""Which headers cross the gateway. Hop-by-hop headers (also those a `Connection` header names), the
gateway's own credentials and the client's claims about forwarding stop here; the gateway states
who the client is in fresh `X-Forwarded-*` headers."""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
GATEWAY_ONLY_REQUEST = frozenset({"host", "authorization", "cookie", "x-csrf-token"})
CLIENT_FORWARDING_CLAIMS = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
     "x-forwarded-prefix", "x-real-ip", "x-original-url", "x-rewrite-url"}
)
GATEWAY_ONLY_RESPONSE = frozenset({"set-cookie", "server", "date", "strict-transport-security"})

Headers = list[tuple[str, str]]


def named_in_connection(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Headers a `Connection` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    return frozenset(
        token.strip().lower()
        for k, v in headers
        if k.lower() == "connection"
        for token in v.split(",")
        if token.strip()
    )


def request_headers(incoming: Iterable[tuple[str, str]], client_host: str | None, scheme: str, host: str) -> Headers:
    """Everything the client sent except hop-by-hop, credentials and forwarding claims; then X-Forwarded-*."""
    incoming = list(incoming)
    drop = HOP_BY_HOP | GATEWAY_ONLY_REQUEST | CLIENT_FORWARDING_CLAIMS | named_in_connection(incoming)
    out = [(k, v) for k, v in incoming if k.lower() not in drop]
    if client_host:
        out.append(("x-forwarded-for", client_host))
    out.append(("x-forwarded-proto", scheme))
    out.append(("x-forwarded-host", host))
    return out


def response_headers(incoming: Iterable[tuple[str, str]], *, buffered: bool = False) -> Headers:
    """Upstream response headers for the client. A buffered body was decoded, so its length/encoding go."""
    incoming = list(incoming)
    drop = HOP_BY_HOP | GATEWAY_ONLY_RESPONSE | named_in_connection(incoming)
    if buffered:
        drop = drop | {"content-length", "content-encoding"}
    return [(k, v) for k, v in incoming if k.lower() not in drop]
