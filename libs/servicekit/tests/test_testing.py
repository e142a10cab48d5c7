"""The shared test doubles keep the promises the real ones make: a fake commit is a commit, a wait has a deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelope import ContractMessage, Envelope
from servicekit.testing import FakeUnitOfWork, wait_until


class Noted(ContractMessage):
    SUBJECT: ClassVar[str] = "test.v1.note.added"

    text: str


@dataclass
class Notes:
    rows: dict[str, str] = field(default_factory=dict)


class NotesRepository:
    def __init__(self, notes: Notes) -> None:
        self.notes = notes

    def add(self, key: str, text: str) -> None:
        self.notes.rows[key] = text


class NotesUnitOfWork(FakeUnitOfWork[Notes]):
    def _open(self) -> None:
        self.notes = NotesRepository(self.work)


async def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "ready"])
    assert await wait_until(lambda: next(answers), 1, "a value", interval=0.001) == "ready"


async def test_wait_until_awaits_async_predicates() -> None:
    async def seven() -> int:
        return 7

    assert await wait_until(seven, 1, "seven") == 7


async def test_wait_until_names_what_it_waited_for_and_the_last_answer() -> None:
    with pytest.raises(TimeoutError, match=r"waiting for the moon \(last: \[\]\)"):
        await wait_until(lambda: [], 0.01, "the moon", interval=0.001)


async def test_a_raising_predicate_ends_the_wait() -> None:
    def dead() -> bool:
        raise RuntimeError("process died")

    with pytest.raises(RuntimeError, match="process died"):
        await wait_until(dead, 5, "anything")


async def test_commit_keeps_the_work_its_messages_and_inbox_marks() -> None:
    committed: list[str] = []
    uow = NotesUnitOfWork(Notes(), source="/services/notes", on_commit=lambda: committed.append("relay"))
    async with uow:
        assert await uow.claim_inbox("notes__added", "m1")
        uow.notes.add("a", "first")
        envelope = uow.emit(Noted(text="first"), subject_id="a")
        await uow.commit()
    assert uow.state.rows == {"a": "first"}
    assert uow.published == [envelope] and uow.messages == [Noted(text="first")]
    assert envelope.source == "/services/notes" and envelope.subject == "a" and envelope.data == {"text": "first"}
    assert uow.commits == 1 and committed == ["relay"]
    async with uow:
        assert not await uow.claim_inbox("notes__added", "m1"), "a committed inbox mark holds"


async def test_leaving_without_commit_drops_the_work_messages_marks_and_actions() -> None:
    ran: list[str] = []

    async def act() -> None:
        ran.append("printer told")

    uow = NotesUnitOfWork(Notes(rows={"a": "kept"}))
    with pytest.raises(RuntimeError):
        async with uow:
            await uow.claim_inbox("notes__added", "m1")
            uow.notes.add("a", "changed")
            uow.emit(Noted(text="changed"))
            uow.after_commit(act)
            raise RuntimeError("handler failed")
    assert uow.state.rows == {"a": "kept"} and uow.published == [] and ran == []
    async with uow:
        assert await uow.claim_inbox("notes__added", "m1"), "an uncommitted inbox mark was dropped"


async def test_a_block_entered_while_one_is_open_joins_it_and_the_outer_block_commits() -> None:
    """A consumer's handler runs `async with uow` inside the bus's frame: its work commits with the inbox mark."""
    uow = NotesUnitOfWork(Notes())
    async with uow:
        assert await uow.claim_inbox("notes__added", "m1")
        async with uow:
            assert uow.joined
            uow.notes.add("a", "first")
            uow.emit(Noted(text="first"))
            await uow.commit()
        assert uow.commits == 0 and uow.state.rows == {}, "the joined block's commit waits for the outer one"
        assert uow.work.rows == {"a": "first"}, "the outer block sees the joined block's work"
        await uow.commit()
    assert uow.commits == 1 and uow.state.rows == {"a": "first"} and len(uow.published) == 1
    assert ("notes__added", "m1") in uow.claimed

    with pytest.raises(RuntimeError):
        async with uow:
            assert await uow.claim_inbox("notes__added", "m2")
            async with uow:
                uow.notes.add("b", "second")
                await uow.commit()
                raise RuntimeError("handler failed after its commit")
    assert uow.state.rows == {"a": "first"} and ("notes__added", "m2") not in uow.claimed


async def test_rollback_drops_what_came_before_and_work_goes_on_after_it() -> None:
    uow = NotesUnitOfWork(Notes())
    async with uow:
        uow.notes.add("a", "dropped")
        uow.emit(Noted(text="dropped"))
        await uow.rollback()
        uow.notes.add("b", "kept")
        await uow.commit()
    assert uow.state.rows == {"b": "kept"} and uow.messages == [] and uow.rollbacks == 1


async def test_after_commit_actions_run_once_after_the_state_is_kept() -> None:
    uow = NotesUnitOfWork(Notes())
    seen: list[dict[str, str]] = []

    async def look() -> None:
        seen.append(dict(uow.state.rows))

    async with uow:
        uow.notes.add("a", "x")
        uow.after_commit(look)
        await uow.commit()
        await uow.commit()
    assert seen == [{"a": "x"}]


async def test_caused_by_threads_correlation_and_causation_into_emitted_envelopes() -> None:
    cause = Envelope(id="cause-1", type="other.v1.thing.happened", source="/x", correlationid="corr-0")
    uow = NotesUnitOfWork(Notes())
    async with uow:
        uow.caused_by(cause)
        envelope = uow.emit(Noted(text="x"))
    assert envelope.causationid == "cause-1" and envelope.correlationid == "corr-0"


@given(st.lists(st.tuples(st.text(max_size=3), st.booleans()), max_size=12))
async def test_state_is_exactly_the_committed_blocks(blocks: list[tuple[str, bool]]) -> None:
    uow = NotesUnitOfWork(Notes())
    expected: dict[str, str] = {}
    for key, commit in blocks:
        async with uow:
            uow.notes.add(key, key * 2)
            uow.emit(Noted(text=key))
            if commit:
                await uow.commit()
                expected[key] = key * 2
    assert uow.state.rows == expected
    assert [m.text for m in uow.messages if isinstance(m, Noted)] == [k for k, c in blocks if c]


async def test_units_of_work_sharing_published_and_claimed_see_each_others_commits() -> None:
    state, published, claimed = Notes(), list[Envelope](), set[tuple[str, str]]()
    first = NotesUnitOfWork(state, published=published, claimed=claimed)
    async with first:
        assert await first.claim_inbox("notes__added", "m1")
        first.emit(Noted(text="once"))
        await first.commit()
    second = NotesUnitOfWork(state, published=published, claimed=claimed)
    async with second:
        assert not await second.claim_inbox("notes__added", "m1")
    assert [e.data for e in published] == [{"text": "once"}]


async def test_encoded_envelopes_are_validated_at_once_and_emitted_only_where_emit_envelopes_puts_them() -> None:
    uow = NotesUnitOfWork(Notes())
    async with uow:
        encoded = uow.encode(Noted, [("b", '{"text":"second"}'), ("c", '{"text":"third"}')])
        with pytest.raises(ValueError, match="text"):
            uow.encode(Noted, [("d", '{"words":"no text"}')])
        first = uow.emit(Noted(text="first"), subject_id="a")
        uow.emit_envelopes(encoded)
        await uow.commit()
    assert uow.messages == [Noted(text="first"), Noted(text="second"), Noted(text="third")]
    assert [e.id for e in uow.published] == [first.id, *(e.id for e in encoded)]
    assert [Envelope.model_validate_json(e.text) for e in encoded] == uow.published[1:]
    async with uow:
        uow.encode(Noted, [("e", '{"text":"never emitted"}')])
        await uow.commit()
    assert len(uow.published) == 3, "an envelope encoded and not emitted is not published"
