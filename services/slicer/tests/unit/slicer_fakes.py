"""In-memory stand-ins for the slicer's unit of work, pipeline and object stores (unit tests only)."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts.envelope import ContractMessage, Envelope
from contracts.queue.v1 import SlicePart
from contracts.shared_values import FileRef, Material
from servicekit.testing import FakeUnitOfWork as BaseFakeUnitOfWork
from slicer.domain.commands import SliceRequest
from slicer.domain.model import Slice, SliceInputs, new_slice
from slicer.service_layer.ports import SlicedFile, SliceError, SliceJob, SourceNotFound


class Ids:
    """Ids in order, `<prefix>-1`, `<prefix>-2`, ...: a test can say which one a claim got."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix, self.count = prefix, 0

    def __call__(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class State:
    slices: dict[str, Slice] = field(default_factory=dict)
    inbox: set[tuple[str, str]] = field(default_factory=set)
    published: list[Envelope] = field(default_factory=list)


class MemorySliceRepository:
    def __init__(self, slices: dict[str, Slice]) -> None:
        self.items = slices

    async def get_or_add(self, key: str, inputs: SliceInputs, now: datetime, *, for_update: bool = False) -> Slice:
        if key not in self.items:
            self.items[key] = new_slice(key, inputs, now)
        return copy.deepcopy(self.items[key])

    async def get(self, key: str, *, for_update: bool = False) -> Slice | None:
        found = self.items.get(key)
        return copy.deepcopy(found) if found is not None else None

    async def page(
        self, state: str | None, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Slice], tuple[datetime, str] | None]:
        def position(item: Slice) -> tuple[datetime, str]:
            assert item.updated_at is not None, "a stored slice has been updated at least when it was made"
            return (item.updated_at, item.key)

        newest_first = sorted(self.items.values(), key=lambda i: (-position(i)[0].timestamp(), i.key))
        chosen = [
            i for i in newest_first
            if (state is None or i.state == state)
            and (after is None or position(i)[0] < after[0] or (position(i)[0] == after[0] and i.key > after[1]))
        ]
        items = [copy.deepcopy(i) for i in chosen[:limit]]
        return items, position(items[-1]) if len(chosen) > limit else None

    async def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items.values():
            counts[item.state] = counts.get(item.state, 0) + 1
        return counts

    async def save(self, item: Slice) -> None:
        self.items[item.key] = copy.deepcopy(item)


class FakeUnitOfWork(BaseFakeUnitOfWork[State]):
    """servicekit's fake unit of work over the slices: changes, inbox marks and answers are kept only on commit."""

    def __init__(self, state: State) -> None:
        super().__init__(state, source="/services/slicer", published=state.published, claimed=state.inbox)

    def _open(self) -> None:
        self.slices = MemorySliceRepository(self.work.slices)

    def _keep(self, work: State) -> None:
        self.state.slices = work.slices

    def answer(self, message: ContractMessage, *, envelope_id: str, subject_id: str | None = None) -> Envelope:
        envelope = self.emit(message, subject_id=subject_id).model_copy(update={"id": envelope_id})
        self._pending[-1] = envelope
        return envelope

    async def answered(self, consumer: str, message_id: str) -> bool:
        return (consumer, message_id) in self.claimed


class FakePipeline:
    """Makes a deterministic 'sliced file' from the source; raises `error` instead when set."""

    def __init__(self) -> None:
        self.calls: list[SliceJob] = []
        self.error: SliceError | None = None
        self.profile_error: SliceError | None = None

    def cache_key(self, job: SliceJob) -> str:
        material = f"{job.material_type}:{job.material_color}"
        parameters = sorted((k, repr(v)) for k, v in job.parameters.items())
        text = f"{job.source_sha256}|{parameters}|{job.printer_model}|{job.fabmatic}|{material}"
        return hashlib.sha256(text.encode()).hexdigest()

    def profile_for(self, job: SliceJob) -> str:
        if self.profile_error is not None:
            raise self.profile_error
        return f"fake-{job.printer_model.lower()}/{job.material_type.lower()}"

    async def make_printable(self, job: SliceJob, source: bytes) -> SlicedFile:
        self.calls.append(job)
        if self.error is not None:
            raise self.error
        content = b"sliced:" + source + repr(sorted(job.parameters.items())).encode()
        return SlicedFile(
            content=content,
            filename=job.source_filename.rsplit(".", 1)[0] + ".gcode.3mf",
            kind="gcode.3mf",
            sha256=hashlib.sha256(content).hexdigest(),
            profile=self.profile_for(job),
            print_minutes=12.5,
            grams=3.25,
            layers=40,
            filament_mm=1090.0,
        )


class FakeSources:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.down = False

    def add(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        self.files[sha] = content
        return sha

    async def get(self, sha256: str) -> bytes:
        if self.down:
            raise ConnectionError("object store unreachable")
        if sha256 not in self.files:
            raise SourceNotFound(f"source {sha256} is not in the part-files object store")
        return self.files[sha256]


class FakeSliced:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.down = False

    async def put(self, sha256: str, content: bytes) -> None:
        if self.down:
            raise ConnectionError("object store unreachable")
        self.files[sha256] = content


SCAD = b'label = "A"; // the text\ncube([10, 10, 2]);\n'


def slice_part(sha256: str, *, kind: str = "scad", parameters: dict[str, object] | None = None,
               model: str = "X1C", key: str = "k-1") -> SlicePart:
    return SlicePart(
        slice_key=key,
        source=FileRef.model_validate(
            {"sha256": sha256, "filename": f"tag.{kind}", "kind": kind, "size_bytes": 40}
        ),
        parameters=dict(parameters or {"label": "A"}),
        printer_model=model,
        material=Material(type="PLA", color="#FF0000"),
        requested_at=datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
    )


_counter = [0]


def request(message: SlicePart, envelope_id: str | None = None) -> SliceRequest:
    _counter[0] += 1
    envelope = Envelope(
        id=envelope_id or f"0193a000-0000-7000-8000-{_counter[0]:012d}",
        type=message.SUBJECT,
        source="/services/queue",
        data=message.model_dump(mode="json"),
    )
    return SliceRequest(message, envelope)
