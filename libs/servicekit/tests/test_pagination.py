"""Cursors: whatever a client sends as one is a position this API wrote or a 400 naming `cursor`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.pagination import cursor_values, decode_cursor, encode_cursor
from servicekit.problems import Problem


def test_a_cursor_round_trips_its_text_values() -> None:
    assert cursor_values(encode_cursor({"name": "Bambu 1", "id": "p1"}), "name", "id") == ("Bambu 1", "p1")
    assert cursor_values(None, "name") is None and cursor_values("", "name") is None


@pytest.mark.parametrize(
    "forged",
    [{"id": "p1"}, {"name": 3, "id": "p1"}, {"name": None, "id": "p1"}, {"name": "a\x00", "id": "p1"},
     {"name": "\ud800", "id": "p1"}],
)
def test_a_cursor_missing_a_key_or_holding_other_than_storable_text_is_400(forged: dict[str, object]) -> None:
    with pytest.raises(Problem) as refused:
        cursor_values(encode_cursor(forged), "name", "id")
    assert refused.value.status == 400
    assert [e["field"] for e in refused.value.errors or []] == ["cursor"]


@given(st.text())
def test_any_text_is_a_position_or_a_400(text: str) -> None:
    try:
        position = decode_cursor(text)
    except Problem as problem:
        assert problem.status == 400
    else:
        assert position is None or isinstance(position, dict)
