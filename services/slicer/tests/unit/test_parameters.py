"""Order-line values become OpenSCAD `-D` literals that read back as exactly the value and nothing more."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slicer_samples import openscad_string_value

from slicer.domain.errors import SourceRefused
from slicer.domain.parameters import KEYWORDS, check_name, define_arguments, openscad_literal

HOSTILE = st.one_of(
    st.text(),
    st.sampled_from(
        [
            '"; import("/etc/passwd"); x="',
            "\\",
            '\\"',
            "a\nb",
            "$(rm -rf /)",
            "`id`",
            "include </etc/passwd>",
            "use <x.scad>",
            "; echo pwned",
            "\r\n\t\x01\x1f\x7f",
            "Zoë 🎉",
            '""',
            "\\x41",
        ]
    ),
)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True).filter(lambda n: n not in KEYWORDS)


def test_literals() -> None:
    assert openscad_literal("b", True) == "true"
    assert openscad_literal("b", False) == "false"
    assert openscad_literal("n", 42) == "42"
    assert openscad_literal("n", -3) == "-3"
    assert openscad_literal("f", 1.5) == "1.5"
    assert openscad_literal("f", 1e16) == "1e+16"
    assert openscad_literal("s", 'a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert openscad_literal("s", "one\ntwo\tthree\r") == '"one\\ntwo\\tthree\\r"'
    assert openscad_literal("s", "\x01\x7f") == '"\\x01\\x7f"'
    assert openscad_literal("s", "Zoë") == '"Zoë"'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(SourceRefused, match="finite") as refused:
        openscad_literal("width", value)
    assert refused.value.field == "parameters.width"
    assert refused.value.stage == "render"


@pytest.mark.parametrize("value", [None, [1, 2], {"a": 1}, b"bytes", 2**60, "a\x00b", "\ud800", "x" * 5000])
def test_values_openscad_cannot_take_are_refused(value: object) -> None:
    with pytest.raises(SourceRefused, match="'label'"):
        openscad_literal("label", value)


@pytest.mark.parametrize(
    "name", ["", "1abc", "a-b", "a b", "a=1", "$fn", "label;", "label\n", "module", "include", "é", 3, "x" * 200]
)
def test_names_must_be_plain_identifiers(name: object) -> None:
    with pytest.raises(SourceRefused):
        check_name(name)


def test_define_arguments_are_sorted_pairs() -> None:
    argv = define_arguments({"size": 5, "label": "Ann", "bold": True})
    assert argv == ["-D", "bold=true", "-D", 'label="Ann"', "-D", "size=5"]


@settings(max_examples=400)
@given(st.dictionaries(NAMES, HOSTILE, max_size=5))
def test_hostile_text_reads_back_exactly(values: dict[str, str]) -> None:
    """Every `-D` argument is one list element `name=literal` whose literal is exactly the value."""
    try:
        argv = define_arguments(values)
    except SourceRefused as refused:  # only NUL, lone surrogates and over-long text are refused
        assert any("\x00" in v or len(v) > 4096 or not _encodable(v) for v in values.values()), refused
        return
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[0::2] == ["-D"] * len(values)
    read_back = {}
    for define in argv[1::2]:
        name, _, literal = define.partition("=")
        read_back[name] = openscad_string_value(literal)
    assert read_back == values


@given(st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))
def test_numbers_and_booleans_read_back(value: float | bool) -> None:
    literal = openscad_literal("v", value)
    if isinstance(value, bool):
        assert literal == ("true" if value else "false")
    else:
        assert float(literal) == value
        assert all(ch in "0123456789.-+e" for ch in literal)


@given(st.text(max_size=30))
def test_any_name_is_an_identifier_or_refused(name: str) -> None:
    try:
        checked = check_name(name)
    except SourceRefused:
        return
    assert checked.isidentifier() and checked.isascii() and checked not in KEYWORDS


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
