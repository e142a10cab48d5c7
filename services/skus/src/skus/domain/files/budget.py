"""What inspecting one upload may cost. An archive member can claim to expand 1000:1, XML can nest or
expand entities without end, and a large file can keep a reader busy for minutes: every reader charges
the bytes it decompresses or reads to one budget, which also holds the deadline, so one upload can never
freeze the service or fill its memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import FileRejected, FileTooLarge

_SKIP_CHUNK = 1 << 20


@dataclass(frozen=True)
class InspectionLimits:
    seconds: float = 60.0
    """Wall-clock time one inspection may take."""
    max_uncompressed_bytes: int = 2 << 30
    """Bytes the readers may decompress (or read) from one upload, over all its members."""
    max_ratio: int = 100
    """How much larger than its compressed size an archive member may claim to be."""
    ratio_exempt_bytes: int = 1 << 20
    """Members up to this size are not held to the ratio (tiny configs compress very well)."""
    max_members: int = 10_000
    max_xml_depth: int = 64


class ByteSource(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def size_of(source: ByteSource) -> int:
    """How many bytes the source holds; leaves it at its start, where every reader begins."""
    size = source.seek(0, 2)
    source.seek(0)
    return size


class InspectionBudget:
    def __init__(self, limits: InspectionLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits, self._clock = limits, clock
        self._deadline = clock() + limits.seconds
        self.spent = 0

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise FileRejected("file", f"inspecting the file took longer than {self.limits.seconds:g} s; refused")

    def spend(self, size: int) -> None:
        self.spent += size
        if self.spent > self.limits.max_uncompressed_bytes:
            raise FileTooLarge(
                "file", f"it expands to more than {self.limits.max_uncompressed_bytes} bytes when read; refused"
            )
        self.check_time()

    def admit_members(self, count: int) -> None:
        if count > self.limits.max_members:
            raise FileRejected("file", f"the archive has {count} members; at most {self.limits.max_members}")

    def admit_member(self, name: str, size: int, compressed_size: int) -> None:
        """Refuses a member before any of it is decompressed, from what the archive declares."""
        if size > self.limits.max_uncompressed_bytes:
            raise FileTooLarge("file", f"{name} expands to {size} bytes; at most {self.limits.max_uncompressed_bytes}")
        if size > self.limits.ratio_exempt_bytes and size > max(compressed_size, 1) * self.limits.max_ratio:
            ratio = size // max(compressed_size, 1)
            raise FileRejected(
                "file", f"{name} expands {ratio}:1 (a zip bomb?); at most {self.limits.max_ratio}:1 is accepted"
            )

    def metered(self, source: ByteSource, *, compressed: bool) -> MeteredSource:
        return MeteredSource(source, self, compressed=compressed)


class MeteredSource:
    """A stream that charges every byte it yields to the budget. In a compressed member seeking forward
    reads through (what the member does anyway), so skipping is charged too and seeking back is not
    offered; a plain file seeks for free."""

    def __init__(self, source: ByteSource, budget: InspectionBudget, *, compressed: bool) -> None:
        self._source, self._budget, self._position = source, budget, 0
        self._compressed = compressed

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            parts = []
            while chunk := self.read(_SKIP_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self._source.read(size)
        self._position += len(data)
        self._budget.spend(len(data))
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if not self._compressed:
            self._position = self._source.seek(offset, whence)
            return self._position
        if whence != 0 or offset < self._position:
            raise ValueError("a metered stream only seeks forward")
        while self._position < offset and self.read(min(_SKIP_CHUNK, offset - self._position)):
            pass
        return self._position
