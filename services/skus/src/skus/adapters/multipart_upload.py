"""Receives a multipart part upload straight from the request stream: the file goes to a temp file
while it is hashed and counted, so a 200 MB upload never sits in memory and an oversized one stops
as soon as it passes the limit."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from skus.adapters.file_store import discard
from skus.domain.errors import Invalid, UploadTooLarge

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedUpload:
    fields: dict[str, str]
    path: Path | None = None
    filename: str | None = None
    size_bytes: int = 0
    sha256: str = ""

    def discard(self) -> None:
        if self.path is not None:
            discard(self.path)


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _Receiver:
    def __init__(self, scratch: Path, limit: int) -> None:
        self.scratch, self.limit = scratch, limit
        self.upload = ReceivedUpload(fields={})
        self.part = _Part()
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.file: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.ended = False

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        name = options.get(b"name")
        filename = options.get(b"filename")
        self.part.name = name.decode("utf-8", "replace") if name is not None else None
        self.part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self.part.name == FILE_FIELD:
            if self.upload.path is not None:
                raise Invalid(FILE_FIELD, "send exactly one file")
            suffix = ".scad" if (self.part.filename or "").lower().endswith(".scad") else ""
            handle = tempfile.NamedTemporaryFile(dir=self.scratch, prefix="upload-", suffix=suffix, delete=False)
            self.file = handle
            self.upload.path = Path(handle.name)
            self.upload.filename = self.part.filename

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.file is not None:
            self.upload.size_bytes += len(chunk)
            if self.upload.size_bytes > self.limit:
                raise UploadTooLarge(self.limit)
            self.digest.update(chunk)
            self.file.write(chunk)
            return
        self.part.value += chunk
        if len(self.part.value) > MAX_FIELD_BYTES:
            raise Invalid(self.part.name or "form", f"longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
            self.upload.sha256 = self.digest.hexdigest()
        elif self.part.name is not None:
            self.upload.fields[self.part.name] = self.part.value.decode("utf-8", "replace")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


async def receive_upload(chunks: AsyncIterator[bytes], content_type: str, scratch: Path, limit: int) -> ReceivedUpload:
    """Parse the request body; on any error the temp file is removed and the error raised."""
    mime, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise Invalid("body", "send multipart/form-data with a `file` part")
    receiver = _Receiver(scratch, limit)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_end": receiver.on_end,
        },
    )
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
        if not receiver.ended:
            raise Invalid("body", "the multipart body is incomplete: its closing boundary is missing")
    except MultipartParseError as exc:
        receiver.close()
        receiver.upload.discard()
        raise Invalid("body", f"malformed multipart body: {exc}") from None
    except BaseException:
        receiver.close()
        receiver.upload.discard()
        raise
    return receiver.upload
