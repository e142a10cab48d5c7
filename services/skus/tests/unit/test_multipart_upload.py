"""The streaming multipart receiver: hashes and counts while it writes, stops at the limit, cleans up."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skus.adapters.multipart_upload import receive_upload
from skus.domain.errors import Invalid, UploadTooLarge

BOUNDARY = "----b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body(fields: dict[str, str], file: bytes | None, filename: str = "part.stl") -> bytes:
    out = b""
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    if file is not None:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + file + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def is_empty(folder: Path) -> bool:
    return not any(folder.iterdir())


def read(path: Path) -> bytes:
    return path.read_bytes()


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_fields_and_file_arrive_hashed_in_small_chunks(tmp_path: Path) -> None:
    content = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
    upload = await receive_upload(chunks(body({"name": "Bracket ü", "grams": "3"}, content)), CONTENT_TYPE,
                                  tmp_path, 1 << 20)
    assert upload.fields == {"name": "Bracket ü", "grams": "3"}
    assert upload.filename == "part.stl" and upload.size_bytes == len(content)
    assert upload.sha256 == hashlib.sha256(content).hexdigest()
    assert upload.path is not None and read(upload.path) == content
    upload.discard()
    assert is_empty(tmp_path)


async def test_passing_the_limit_stops_and_removes_the_temp_file(tmp_path: Path) -> None:
    with pytest.raises(UploadTooLarge):
        await receive_upload(chunks(body({}, b"x" * 5000), 1000), CONTENT_TYPE, tmp_path, 4096)
    assert is_empty(tmp_path)


async def test_a_file_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    upload = await receive_upload(chunks(body({}, b"x" * 4096), 1000), CONTENT_TYPE, tmp_path, 4096)
    assert upload.size_bytes == 4096
    upload.discard()


async def test_not_multipart_or_two_files_or_truncated_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid):
        await receive_upload(chunks(b"{}"), "application/json", tmp_path, 1000)
    two = body({}, b"a").replace(f"--{BOUNDARY}--\r\n".encode(), b"") + body({}, b"b")
    with pytest.raises(Invalid) as caught:
        await receive_upload(chunks(two), CONTENT_TYPE, tmp_path, 1000)
    assert caught.value.field == "file"
    with pytest.raises(Invalid):
        await receive_upload(chunks(body({}, b"abc")[:-30]), CONTENT_TYPE, tmp_path, 1000)
    assert is_empty(tmp_path)
