"""Search terms reach LIKE literally: wildcards and backslashes in order numbers match themselves."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from orders.adapters.orm import search_key
from orders.adapters.queries import like_literal


def like(value: str, pattern: str) -> bool:
    """LIKE with ESCAPE '\\', as PostgreSQL evaluates it."""
    regex, chars = "", iter(pattern)
    for ch in chars:
        if ch == "\\":
            regex += re.escape(next(chars, ""))
        elif ch == "%":
            regex += ".*"
        elif ch == "_":
            regex += "."
        else:
            regex += re.escape(ch)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


@given(st.text(alphabet="ab%_\\ ", max_size=8), st.text(alphabet="ab%_\\ ", max_size=8))
def test_an_escaped_prefix_matches_exactly_the_values_starting_with_it(prefix: str, rest: str) -> None:
    pattern = like_literal(prefix) + "%"
    assert like(prefix + rest, pattern)
    assert like(rest, pattern) is rest.startswith(prefix)


def test_search_keys_are_lower_cased_beyond_ascii() -> None:
    assert search_key("ÄBC-%_1") == "äbc-%_1"
    assert search_key("Ann", None) == "ann\n"
