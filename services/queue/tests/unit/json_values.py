"""Hypothesis strategies for the values a job carries into its messages, and `typed`: shared by the tests
that hold a message rendered from a job's columns to the pydantic message's meaning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from printqueue.domain.model import Material

T0 = datetime(2026, 1, 1, tzinfo=UTC)

texts = st.sampled_from(["o", "", "é", 'q"uote', "back\\slash", "new\nline", "\u2028", "\x00", "emoji 🖨"]) | st.text(
    max_size=6
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0.0, 1.0, -1.0, 2.5, 1e20, 1e-7]),
    st.floats(allow_nan=False, allow_infinity=False), texts,
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]),
)
materials = st.builds(Material, st.sampled_from(["PLA", "PETG"]), st.none() | st.sampled_from(["#FF0000", "é"]),
                      st.none() | texts)


def typed(value: Any) -> Any:
    """JSON values with their types spelled out, so 1 == 1.0 == True no longer holds."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)
