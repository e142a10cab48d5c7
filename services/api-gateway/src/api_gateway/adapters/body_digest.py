"""The body hash an Idempotency-Key is bound to.

A multipart body is hashed part by part (each part's headers and content), not byte for byte:
clients pick a fresh random boundary for every attempt, so a retry of the same upload would
otherwise never match. A body that does not parse as multipart falls back to the raw bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header


class BodyDigest:
    def __init__(self, content_type: str) -> None:
        self._raw = hashlib.sha256()
        self._parts = hashlib.sha256()
        self._parser: MultipartParser | None = None
        media, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if media.lower().startswith(b"multipart/") and boundary:
            self._parser = MultipartParser(boundary, self._callbacks(), max_header_count=32, max_header_size=16384)

    def _callbacks(self) -> Any:
        parts = self._parts

        def marker(tag: bytes) -> Any:
            return lambda: parts.update(tag)

        def data(tag: bytes) -> Any:
            def on_data(chunk: bytes, start: int, end: int) -> None:
                parts.update(chunk[start:end])

            return on_data

        return {
            "on_part_begin": marker(b"\x00part"),
            "on_header_field": data(b""),
            "on_header_value": data(b""),
            "on_header_end": marker(b"\x00header"),
            "on_headers_finished": marker(b"\x00body"),
            "on_part_data": data(b""),
            "on_part_end": marker(b"\x00end"),
        }

    def update(self, chunk: bytes) -> None:
        self._raw.update(chunk)
        if self._parser is not None:
            try:
                self._parser.write(chunk)
            except Exception:
                self._parser = None

    def hexdigest(self) -> str:
        if self._parser is not None:
            try:
                self._parser.finalize()
                return self._parts.hexdigest()
            except Exception:
                self._parser = None
        return self._raw.hexdigest()
