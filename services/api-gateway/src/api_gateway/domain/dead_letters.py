"""Dead letters as an operator sees them: one item per (consumer, message), and what replaying a
message means (its newest stored copy goes back to its subject; every stored copy is then forgotten)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api_gateway.domain.errors import UnknownDeadLetter


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the DEADLETTER stream."""

    seq: int
    consumer: str
    subject: str
    message_id: str
    error: str
    dead_letters: int
    at: datetime
    data: bytes


@dataclass(frozen=True)
class DeadLetterSummary:
    consumer: str
    subject: str
    message_id: str
    error: str
    count: int
    last_at: datetime


@dataclass(frozen=True)
class Replay:
    message_id: str
    subject: str
    data: bytes
    from_seq: int
    dead_letters: int
    consumers: tuple[str, ...]
    stored_seqs: tuple[int, ...]


def summarize(entries: list[DeadLetter]) -> list[DeadLetterSummary]:
    """Newest first. `count` is how many times the message ended as a dead letter for that consumer,
    replays included (the count travels with a replay)."""
    groups: dict[tuple[str, str], list[DeadLetter]] = {}
    for entry in entries:
        groups.setdefault((entry.consumer, entry.message_id), []).append(entry)
    items = []
    for (consumer, message_id), group in groups.items():
        newest = max(group, key=lambda e: e.seq)
        items.append(
            DeadLetterSummary(
                consumer=consumer,
                subject=newest.subject,
                message_id=message_id,
                error=newest.error,
                count=max(len(group), *(e.dead_letters for e in group)),
                last_at=newest.at,
            )
        )
    return sorted(items, key=lambda i: (i.last_at, i.consumer, i.message_id), reverse=True)


def plan_replay(entries: list[DeadLetter], message_id: str) -> Replay:
    """One publish serves every consumer that gave up on the message: the others skip it by inbox."""
    held = [e for e in entries if e.message_id == message_id]
    if not held:
        raise UnknownDeadLetter(message_id)
    newest = max(held, key=lambda e: e.seq)
    return Replay(
        message_id=message_id,
        subject=newest.subject,
        data=newest.data,
        from_seq=newest.seq,
        dead_letters=max(e.dead_letters for e in held),
        consumers=tuple(sorted({e.consumer for e in held})),
        stored_seqs=tuple(sorted(e.seq for e in held)),
    )
