"""Property tests of the Slice aggregate's claims: whatever the interleaving of workers and time, at
most one worker holds a live claim, a done slice never changes its answer, and answer ids are stable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from slicer.domain.model import Answer, Claim, ClaimLost, SliceAlreadyDone, SliceInputs, SliceResult, Wait, new_slice
from slicer.service_layer import messages

LEASE = timedelta(seconds=30)
INPUTS = SliceInputs("a" * 64, "scad", "tag.scad", {}, "X1C", False, "PLA", None)
RESULT = SliceResult("b" * 64, "tag.gcode.3mf", "gcode.3mf", 10, "x1c/pla", 1.0, 1.0)

steps = st.lists(
    st.tuples(
        st.sampled_from(["decide", "renew", "complete", "release"]),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_at_most_one_live_claim_and_done_is_final(plan: list[tuple[str, int, int]]) -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    item = new_slice("k", INPUTS, now)
    holders: dict[str, datetime] = {}
    done_with: SliceResult | None = None
    for action, worker, seconds in plan:
        now += timedelta(seconds=seconds)
        owner = f"w{worker}"
        if action == "decide":
            decision = item.decide(owner, now, LEASE)
            if done_with is not None:
                assert decision == Answer(result=done_with)
            if isinstance(decision, Claim):
                holders[owner] = now + LEASE
            if isinstance(decision, Wait):
                assert decision.owner != owner and decision.until > now
        elif action == "renew":
            try:
                item.renew(owner, now, LEASE)
                holders[owner] = now + LEASE
            except ClaimLost:
                pass
        elif action == "complete":
            try:
                item.complete(RESULT, now)
                done_with = RESULT
            except SliceAlreadyDone:
                assert done_with is not None
        else:
            item.release(owner, "store down", now)
        live = [o for o in holders if item.claimed_by(o, now)]
        assert len(live) <= 1
        if done_with is not None:
            assert item.state == "completed" and item.result == done_with and item.claim_owner is None


@given(st.uuids(), st.uuids())
def test_answer_ids_are_derived_one_to_one(a: uuid.UUID, b: uuid.UUID) -> None:
    assert messages.answer_id(str(a)) == messages.answer_id(str(a))
    if a != b:
        assert messages.answer_id(str(a)) != messages.answer_id(str(b))
    assert uuid.UUID(messages.answer_id(str(a))).version == 7
