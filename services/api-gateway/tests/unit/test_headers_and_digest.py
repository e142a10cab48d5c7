"""Which headers cross the gateway, and the body hash idempotency keys are bound to."""

from __future__ import annotations

from api_gateway.adapters.body_digest import BodyDigest
from api_gateway.domain.forwarding import request_headers, response_headers


def test_credentials_and_hop_by_hop_headers_stop_at_the_gateway() -> None:
    sent = [
        ("Authorization", "Bearer x"),
        ("Cookie", "pf_session=s"),
        ("X-CSRF-Token", "c"),
        ("Connection", "keep-alive"),
        ("Host", "gw"),
        ("If-Match", '"3"'),
        ("Idempotency-Key", "k"),
        ("X-Forwarded-For", "10.0.0.1"),
    ]
    out = dict(request_headers(sent, "127.0.0.1", "http", "gw:8080"))
    assert out == {
        "If-Match": '"3"',
        "Idempotency-Key": "k",
        "x-forwarded-for": "127.0.0.1",  # the client's own claim is not passed on
        "x-forwarded-proto": "http",
        "x-forwarded-host": "gw:8080",
    }


def test_buffered_responses_drop_length_and_encoding() -> None:
    got = [("Content-Length", "5"), ("Content-Encoding", "gzip"), ("ETag", '"1"'), ("Transfer-Encoding", "chunked")]
    assert response_headers(got) == [("Content-Length", "5"), ("Content-Encoding", "gzip"), ("ETag", '"1"')]
    assert response_headers(got, buffered=True) == [("ETag", '"1"')]


def _digest(content_type: str, *chunks: bytes) -> str:
    digest = BodyDigest(content_type)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def test_multipart_digest_ignores_the_boundary_and_chunking() -> None:
    def body(b: str) -> bytes:
        return f'--{b}\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\r\n--{b}--\r\n'.encode()

    one = _digest("multipart/form-data; boundary=one", body("one"))
    two = _digest("multipart/form-data; boundary=two", body("two")[:7], body("two")[7:])
    other = _digest("multipart/form-data; boundary=one", body("one").replace(b"hello", b"hellO"))
    assert one == two
    assert one != other


def test_non_multipart_and_broken_multipart_hash_the_raw_bytes() -> None:
    assert _digest("application/json", b"{}") == _digest("text/plain", b"{", b"}")
    broken = _digest("multipart/form-data; boundary=x", b"not multipart at all")
    assert broken != _digest("multipart/form-data; boundary=x", b"not multipart at all!")
