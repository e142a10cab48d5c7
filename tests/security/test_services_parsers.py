"""The skus file readers take linear time on hostile input: one upload must not freeze the service.

Regular expressions with ambiguous quantifiers (`\\s*(?P<key>[^:=]+?)\\s*` in the G-code header reader,
`/\\*\\s*\\[\\s*(?P<name>[^\\[\\]]*?)\\s*\\]` in the .scad group reader, `\\d+\\.?\\d*` in customizer
numbers) backtrack quadratically on a long line that almost matches. Each case is a 2 MiB line built
to hit such a spot; the readers run in a killable worker (`parse_timing`) and must answer in under
100 ms. A hypothesis fuzz test builds more such lines from the characters those expressions care about.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .parse_timing import ParseTimer

LINE = 2 << 20
BUDGET = 0.100
GCODE_TAIL = b"\nG28\nG1 X10 Y10 E1\n"


@pytest.fixture(scope="module")
async def timer() -> AsyncIterator[ParseTimer]:
    timer = ParseTimer()
    yield timer
    await timer.close()


def repeat(unit: str, size: int = LINE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


HOSTILE_GCODE = {
    "comment of blanks, no separator": ";" + repeat(" "),
    "key of words, no separator": "; " + repeat("a "),
    "value of blanks then a letter": "; key:" + repeat(" ") + "x",
    "value of tabs and blanks": "; key =" + repeat(" \t") + ".",
    "duration of digits": "; total estimated time: " + repeat("1") + "x",
    "duration of units": "; total estimated time: " + repeat("1d ") + "x",
    "grams of digits": "; filament used [g] = " + repeat("1.") + "e",
    "model time with many separators": "; model printing time: " + repeat("1h;"),
}

HOSTILE_SCAD = {
    "group of blanks": "/* [" + repeat(" ") + "x */\nx = 1;\n",
    "group of brackets": "/* [" + repeat(" [") + "] */\nx = 1;\n",
    "group of blanks, unclosed bracket": "/* [" + repeat(" ") + "*/\nx = 1;\n",
    "annotation of digits": "x = 1; // [" + repeat("1") + "x]\n",
    "annotation of colons": "x = 1; // [" + repeat("1:") + "]\n",
    "description of blanks": "//" + repeat(" ") + "\nx = 1;\n",
    "unterminated block comment": "x = 1;\n/*" + repeat("*"),
    "unterminated string": 'x = "' + repeat("a ") + "\n",
}


@pytest.mark.parametrize("line", HOSTILE_GCODE.values(), ids=HOSTILE_GCODE.keys())
async def test_a_hostile_gcode_header_line_is_read_in_linear_time(timer: ParseTimer, line: str) -> None:
    seconds = await timer.seconds("hostile.gcode", line.encode() + GCODE_TAIL)

    assert seconds < BUDGET, f"{seconds:.3f} s for a 2 MiB header line"


@pytest.mark.parametrize("source", HOSTILE_SCAD.values(), ids=HOSTILE_SCAD.keys())
async def test_a_hostile_scad_line_is_read_in_linear_time(timer: ParseTimer, source: str) -> None:
    seconds = await timer.seconds("hostile.scad", source.encode())

    assert seconds < BUDGET, f"{seconds:.3f} s for a 2 MiB line"


async def test_a_string_of_escapes_costs_linear_time(timer: ParseTimer) -> None:
    """Each escape is a step of the tokenizer's string rule: 2 MiB of them take longer than 100 ms but
    grow linearly (a backtracking rule would grow 64-fold from 256 KiB to 2 MiB)."""
    small = await timer.seconds("escapes.scad", ('x = "' + repeat("\\\\", LINE // 8) + "\n").encode())
    large = await timer.seconds("escapes.scad", ('x = "' + repeat("\\\\") + "\n").encode())

    assert large < 1.0 and large < 16 * small + 0.05, f"256 KiB: {small:.3f} s, 2 MiB: {large:.3f} s"


ALPHABET = st.sampled_from(
    [" ", "\t", ":", "=", ";", "[", "]", "/*", "*/", "*", "1", ".", "e", "-", "h", "m", "a", "\\"]
)
UNITS = st.lists(ALPHABET, min_size=1, max_size=8).map("".join)
SCAD_COMMENT_ALPHABET = st.sampled_from([" ", "\t", "[", "]", ":", ",", "1", ".", "e", "-", '"', "a", "\\", "/"])
SCAD_UNITS = st.lists(SCAD_COMMENT_ALPHABET, min_size=1, max_size=8).map("".join)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=UNITS, prefix=st.sampled_from(["; ", "; a:", "; total estimated time: ", "; filament used [g] ="]))
async def test_fuzzed_gcode_header_lines_stay_within_the_budget(timer: ParseTimer, unit: str, prefix: str) -> None:
    seconds = await timer.seconds("fuzz.gcode", (prefix + repeat(unit)).encode() + GCODE_TAIL)

    assert seconds < BUDGET, f"{seconds:.3f} s for {prefix!r} + {unit!r} x {LINE // len(unit)}"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=SCAD_UNITS, shape=st.sampled_from(["/* [{} */\nx = 1;\n", "x = 1; // [{}]\n", "// {}\nx = 1;\n"]))
async def test_fuzzed_scad_comment_lines_stay_within_the_budget(timer: ParseTimer, unit: str, shape: str) -> None:
    """Inside a comment (no '*' to close it early), whatever the customizer conventions look for."""
    source = shape.format(repeat(unit))

    seconds = await timer.seconds("fuzz.scad", source.encode())

    assert seconds < BUDGET, f"{seconds:.3f} s for {shape!r} around {unit!r} x {LINE // len(unit)}"
