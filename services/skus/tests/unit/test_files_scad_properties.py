"""Round trip: generated customizer specs rendered to .scad text parse back to the same parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skus.domain.files import FileRejected, Option, Parameter, parse_scad, parse_scad_text
from skus.domain.files.model import ScalarValue

KEYWORDS = {
    "module", "function", "include", "use", "true", "false", "if", "else", "for", "let", "each",
    "undef", "assert", "echo", "intersection_for",
}  # fmt: skip

LOWER = "abcdefghijklmnopqrstuvwxyz"
LETTERS = LOWER + LOWER.upper()
names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LOWER),
    st.text(alphabet=LOWER + "0123456789_", max_size=8),
).filter(lambda n: n not in KEYWORDS)
words = st.builds(
    lambda first, rest: (first + rest).strip(),
    st.sampled_from(LETTERS),
    st.text(alphabet=LETTERS + "0123456789 ", max_size=10),
)
ints = st.integers(min_value=-(10**9), max_value=10**9)
floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
numbers = st.one_of(ints, floats)
free_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00\ufffd"), max_size=30)
descriptions = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\ufffd"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool),
)


@dataclass(frozen=True)
class Spec:
    parameter: Parameter
    source: str


def number_source(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def string_source(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + escaped.replace("\r", "\\r") + '"'


@st.composite
def number_specs(draw: st.DrawFn, name: str) -> tuple[Parameter, str]:
    default = draw(numbers)
    style = draw(st.sampled_from(["plain", "max", "range", "stepped", "options", "labelled"]))
    parameter = Parameter(name=name, type="number", default=default)
    annotation = ""
    if style == "max":
        high = draw(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)))
        parameter = Parameter(name=name, type="number", default=default, min=0, max=high)
        annotation = f"[{number_source(high)}]"
    elif style in ("range", "stepped"):
        low, high = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        step = draw(st.one_of(st.integers(1, 100), st.floats(0.001, 100))) if style == "stepped" else None
        parameter = Parameter(name=name, type="number", default=default, min=low, max=high, step=step)
        middle = f":{number_source(step)}" if step is not None else ""
        annotation = f"[{number_source(low)}{middle}:{number_source(high)}]"
    elif style == "options":
        values = draw(st.lists(numbers, min_size=2, max_size=5))
        parameter = Parameter(name=name, type="number", default=default, options=tuple(Option(v) for v in values))
        annotation = "[" + ", ".join(number_source(v) for v in values) + "]"
    elif style == "labelled":
        pairs = draw(st.lists(st.tuples(numbers, words), min_size=1, max_size=5))
        parameter = Parameter(
            name=name, type="number", default=default, options=tuple(Option(v, label) for v, label in pairs)
        )
        annotation = "[" + ", ".join(f"{number_source(v)}:{label}" for v, label in pairs) + "]"
    return parameter, f"{name} = {number_source(default)};" + (f" // {annotation}" if annotation else "")


@st.composite
def string_specs(draw: st.DrawFn, name: str) -> tuple[Parameter, str]:
    style = draw(st.sampled_from(["plain", "options", "labelled"]))
    if style == "plain":
        default = draw(free_text)
        return Parameter(name=name, type="string", default=default), f"{name} = {string_source(default)};"
    values = draw(st.lists(words, min_size=1, max_size=5))
    labels = [draw(words) if style == "labelled" else None for _ in values]
    default = draw(st.sampled_from(values))
    parameter = Parameter(
        name=name,
        type="string",
        default=default,
        options=tuple(Option(v, label) for v, label in zip(values, labels, strict=True)),
    )
    items = ", ".join(v if label is None else f"{v}:{label}" for v, label in zip(values, labels, strict=True))
    return parameter, f"{name} = {string_source(default)}; // [{items}]"


@st.composite
def scad_files(draw: st.DrawFn) -> tuple[str, list[Parameter], list[str]]:
    """Source text, the parameters it declares in order, and the names of fixed assignments."""
    chosen = draw(st.lists(names, min_size=1, max_size=12, unique=True))
    lines: list[str] = []
    expected: list[Parameter] = []
    fixed: list[str] = []
    group: str | None = None
    hidden = False
    for index, name in enumerate(chosen):
        lines += draw(
            st.lists(
                st.sampled_from(
                    [
                        "",
                        "cube([1, 2, 3]);",
                        "/* a plain note */",
                        "include <lib/parts.scad>",
                        "use <other.scad>;",
                        "if (true) { inside = 1; } else { sphere(1); }",
                        "// a detached comment\n",
                        "translate([0, 0, 1])\n    cylinder(h = 2, r = 1);",
                    ]
                ),
                max_size=2,
            )
        )
        if draw(st.booleans()):
            header = draw(st.one_of(words.filter(lambda w: w.lower() != "hidden"), st.just("Hidden")))
            lines.append(f"/* [{header}] */")
            hidden = header == "Hidden"
            group = None if hidden else header
        if draw(st.integers(0, 5)) == 0:
            fixed_name = f"zz_fixed_{index}"
            lines.append(f"{fixed_name} = {draw(st.sampled_from(['[1, 2]', name + ' * 2', 'undef', '1 + 1']))};")
            fixed.append(fixed_name)
        description = draw(descriptions)
        if description is not None:
            lines.append(f"// {description}")
        kind = draw(st.sampled_from(["number", "string", "boolean"]))
        if kind == "number":
            parameter, source = draw(number_specs(name))
        elif kind == "string":
            parameter, source = draw(string_specs(name))
        else:
            value = draw(st.booleans())
            parameter, source = Parameter(name=name, type="boolean", default=value), f"{name} = {str(value).lower()};"
        lines.append(source)
        if hidden:
            fixed.append(name)
        else:
            expected.append(
                Parameter(
                    name=parameter.name,
                    type=parameter.type,
                    default=parameter.default,
                    description=description,
                    options=parameter.options,
                    min=parameter.min,
                    max=parameter.max,
                    step=parameter.step,
                    group=group,
                )
            )
    lines += ["module body() {", "    late_inside = 1;", "}", "late_after = 2; // [0:9]"]
    return "\n".join(lines) + "\n", expected, fixed


def comparable(value: ScalarValue | None) -> object:
    return (type(value).__name__ == "bool", value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=scad_files())
def test_rendered_specs_parse_back(generated: tuple[str, list[Parameter], list[str]]) -> None:
    source, expected, fixed = generated
    result = parse_scad_text(source)
    assert [p.name for p in result.parameters] == [p.name for p in expected]
    for got, want in zip(result.parameters, expected, strict=True):
        assert got == want, source
        assert comparable(got.default) == comparable(want.default)
    assert list(result.fixed) == fixed
    json.dumps([p.to_dict() for p in result.parameters])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=scad_files(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_chunking_never_changes_the_result(generated: tuple[str, list[Parameter], list[str]], cuts: list[int]) -> None:
    source = generated[0]
    positions = sorted({c % (len(source) + 1) for c in cuts})
    chunks = [source[a:b] for a, b in zip([0, *positions], [*positions, len(source)], strict=True)]
    assert parse_scad(chunks) == parse_scad_text(source)


SOUP = [
    "a", "b1", "$fn", "=", "==", "1", "-", "2.5e3", ".5", '"', '"s"', "\\", ";", "//", "/*", "*/", "[", "]",
    "(", ")", "{", "}", ":", ",", "<", ">", "module", "function", "include", "use", "true", "else", "if",
    "[Hidden]", "[G]", "\n", " ", "\t", "\r", "é", "\x00", "\ufffd", "e", "1.", "E+", "/", "*",
]  # fmt: skip


def parse_or_reject(text: str) -> None:
    try:
        result = parse_scad_text(text)
    except FileRejected as exc:
        assert exc.field == "file"
        return
    json.dumps([p.to_dict() for p in result.parameters])
    assert all(isinstance(w, str) for w in result.warnings)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_but_file_rejected(text: str) -> None:
    parse_or_reject(text)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.sampled_from(SOUP), max_size=80), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_token_soup_never_raises_and_chunking_agrees(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    parse_or_reject(text)
    positions = sorted({c % (len(text) + 1) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *positions], [*positions, len(text)], strict=True)]
    try:
        whole = parse_scad_text(text)
    except FileRejected as exc:
        try:
            parse_scad(chunks)
        except FileRejected as again:
            assert again.reason == exc.reason or "binary" in exc.reason + again.reason
        return
    try:
        assert parse_scad(chunks) == whole
    except FileRejected as exc:
        assert "binary" in exc.reason
