"""The canonical colour: every spelling of one colour reads as the same `#RRGGBB`, nothing else reads as one."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.colours import canonical_color

HEX_DIGITS = "0123456789abcdefABCDEF"
CANONICAL = re.compile(r"#[0-9A-F]{6}")

rgb_digits = st.text(alphabet=HEX_DIGITS, min_size=6, max_size=6)
alpha_digits = st.text(alphabet=HEX_DIGITS, min_size=2, max_size=2)
blanks = st.text(alphabet=" \t\n", max_size=3)


@given(rgb_digits, st.booleans(), st.one_of(st.just(""), alpha_digits), blanks, blanks)
def test_every_spelling_of_a_colour_reads_as_its_rgb_upper_case(
    digits: str, hash_sign: bool, alpha: str, before: str, after: str
) -> None:
    spelt = f"{before}{'#' if hash_sign else ''}{digits}{alpha}{after}"
    assert canonical_color(spelt) == f"#{digits.upper()}"


@given(st.text(max_size=12))
def test_the_result_is_canonical_and_a_fixed_point(text: str) -> None:
    found = canonical_color(text)
    if found is not None:
        assert CANONICAL.fullmatch(found)
        assert canonical_color(found) == found
        assert canonical_color(found.lower()) == found


@given(st.text(alphabet=HEX_DIGITS + "#", max_size=10).filter(lambda t: len(t.lstrip("#")) not in (6, 8)))
def test_a_wrong_number_of_digits_is_no_colour(text: str) -> None:
    assert canonical_color(text) is None


@pytest.mark.parametrize("raw", [None, 0xFF0000, "red", "#FFF", "##FF0000", "#GG0000", "", "FF0000 80"])
def test_what_is_no_hex_colour_reads_as_none(raw: object) -> None:
    assert canonical_color(raw) is None
