from __future__ import annotations

import io

import pytest

from skus.domain.files import FileKind, FileRejected, Option, Parameter, inspect_file, parse_scad_text


def params(text: str) -> dict[str, Parameter]:
    return {p.name: p for p in parse_scad_text(text).parameters}


def one(text: str) -> Parameter:
    (parameter,) = parse_scad_text(text).parameters
    return parameter


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a = 10;", 10),
        ("a = 0;", 0),
        ("a = 2.5;", 2.5),
        ("a = -3;", -3),
        ("a = +3;", 3),
        ("a = -0.25;", -0.25),
        ("a = .5;", 0.5),
        ("a = 1.;", 1.0),
        ("a = 1e3;", 1000.0),
        ("a = 2.5E-2;", 0.025),
        ("a = - 4;", -4),
    ],
)
def test_numbers(source: str, expected: float) -> None:
    parameter = one(source)
    assert parameter.type == "number"
    assert parameter.default == expected
    assert type(parameter.default) is type(expected)


def test_large_integer_becomes_float_and_overflow_is_fixed() -> None:
    result = parse_scad_text("a = 123456789012345678901234567890;\nb = 1e999;\n")
    assert [p.default for p in result.parameters] == [1.2345678901234568e29]
    assert result.fixed == ("b",)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('s = "hello";', "hello"),
        ('s = "";', ""),
        (r's = "say \"hi\"";', 'say "hi"'),
        (r's = "back\\slash";', "back\\slash"),
        (r's = "tab\there\nnew";', "tab\there\nnew"),
        (r's = "\x41\u00e9\U01F600";', "Aé😀"),
        (r's = "unknown \q";', "unknown \\q"),
        ('s = "has // slashes and /* stars */";', "has // slashes and /* stars */"),
        ('s = "multi\nline";', "multi\nline"),
    ],
)
def test_strings(source: str, expected: str) -> None:
    parameter = one(source)
    assert parameter.type == "string"
    assert parameter.default == expected


def test_booleans() -> None:
    found = params("yes = true;\nno = false;\n")
    assert (found["yes"].type, found["yes"].default) == ("boolean", True)
    assert (found["no"].type, found["no"].default) == ("boolean", False)


@pytest.mark.parametrize(
    "source",
    [
        "v = [1, 2, 3];",
        "e = 10 / 2;",
        "r = other;",
        "u = undef;",
        "n = !true;",
        "c = true ? 1 : 2;",
        'f = str("a", 1);',
        "g = function(x) x * 2;",
        "l = let(q = 1) q;",
        "r2 = [0:10];",
    ],
)
def test_vectors_and_expressions_are_fixed(source: str) -> None:
    result = parse_scad_text(source)
    assert result.parameters == ()
    assert result.fixed == (source.split("=")[0].strip(),)
    assert result.warnings == ()


def test_special_variables_are_fixed() -> None:
    result = parse_scad_text("$fn = 64;\nsize = 3;\n")
    assert [p.name for p in result.parameters] == ["size"]
    assert result.fixed == ("$fn",)


def test_description_comes_from_the_line_directly_above() -> None:
    found = params(
        "// Width of the box\nwidth = 10;\n\n// Detached comment\n\nheight = 5;\n"
        "// first line\n// second line\ndepth = 2;\nx = 1; // not a description\ny = 2;\n"
    )
    assert found["width"].description == "Width of the box"
    assert found["height"].description is None
    assert found["depth"].description == "second line"
    assert found["y"].description is None


def test_trailing_plain_comment_is_not_an_annotation() -> None:
    parameter = one("a = 5; // just a note\n")
    assert parameter.options is None and parameter.min is None and parameter.description is None


def test_dropdown_of_numbers() -> None:
    parameter = one("a = 2; // [1, 2, 3.5]\n")
    assert parameter.options == (Option(1), Option(2), Option(3.5))
    assert parameter.to_dict()["options"] == [1, 2, 3.5]


def test_dropdown_of_strings_with_quotes_and_spaces() -> None:
    parameter = one('s = "b"; // [a, b, "c, d", e f]\n')
    assert parameter.options == (Option("a"), Option("b"), Option("c, d"), Option("e f"))


def test_labelled_dropdowns() -> None:
    number = one("q = 2; // [1:Fast, 2:Standard, 3:Slow and fine]\n")
    assert number.options == (Option(1, "Fast"), Option(2, "Standard"), Option(3, "Slow and fine"))
    assert number.to_dict()["options"] == [
        {"value": 1, "label": "Fast"},
        {"value": 2, "label": "Standard"},
        {"value": 3, "label": "Slow and fine"},
    ]
    text = one('size = "M"; // [S:Small, M:Medium, L]\n')
    assert text.options == (Option("S", "Small"), Option("M", "Medium"), Option("L"))
    assert text.to_dict()["options"] == [
        {"value": "S", "label": "Small"},
        {"value": "M", "label": "Medium"},
        {"value": "L", "label": "L"},
    ]


def test_single_labelled_option_is_a_dropdown_not_a_range() -> None:
    assert one("a = 1; // [1:Only]\n").options == (Option(1, "Only"),)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("[100]", (0, 100, None)),
        ("[5:50]", (5, 50, None)),
        ("[0:5:100]", (0, 100, 5)),
        ("[-10:0.5:10]", (-10, 10, 0.5)),
        ("[ 1.5 : 2.5 ]", (1.5, 2.5, None)),
        ("[-1e2:1e2]", (-100.0, 100.0, None)),
    ],
)
def test_ranges(annotation: str, expected: tuple[float, float, float | None]) -> None:
    parameter = one(f"a = 10; // {annotation}\n")
    assert (parameter.min, parameter.max, parameter.step) == expected
    assert parameter.options is None


def test_annotation_sits_on_the_line_of_the_semicolon() -> None:
    parameter = one("multi =\n    25; // [0:50]\n")
    assert (parameter.default, parameter.min, parameter.max) == (25, 0, 50)


def test_annotation_belongs_to_the_last_statement_on_the_line() -> None:
    found = params("a = 1; b = 2; // [0:5]\n")
    assert found["a"].max is None
    assert found["b"].max == 5


def test_boolean_ignores_annotations() -> None:
    parameter = one("flag = true; // [true, false]\n")
    assert parameter.options is None


def test_string_with_single_number_annotation_is_a_length_limit_and_ignored() -> None:
    parameter = one('label = "abc"; // [8]\n')
    assert parameter.options is None and parameter.max is None
    assert parse_scad_text('label = "abc"; // [8]\n').warnings == ()


@pytest.mark.parametrize(
    ("source", "warning"),
    [
        ("a = 5; // [10:0]\n", "minimum above maximum"),
        ("a = 5; // [0:-1:10]\n", "step must be positive"),
        ("a = 50; // [0:10]\n", "outside"),
        ("a = 4; // [1, 2, 3]\n", "not one of the options"),
        ("a = 1; // [1, two]\n", "not a number"),
        ("a = 1; // [0:10\n", "unclosed"),
        ("a = 1; // []\n", "empty annotation"),
        ('s = "x"; // [0:10]\n', "range on a string"),
    ],
)
def test_questionable_annotations_warn(source: str, warning: str) -> None:
    result = parse_scad_text(source)
    assert len(result.parameters) == 1
    assert any(warning in w for w in result.warnings), result.warnings


def test_groups_hidden_and_global() -> None:
    found = parse_scad_text(
        'top = 1;\n/* [Size] */\nw = 2;\n/*[ Looks ]*/\ncolor = "red";\n/* [Hidden] */\nsecret = 3;\n'
        "/* [Global] */\ng = 4;\n"
    )
    assert [(p.name, p.group) for p in found.parameters] == [
        ("top", None),
        ("w", "Size"),
        ("color", "Looks"),
        ("g", "Global"),
    ]
    assert found.fixed == ("secret",)


def test_plain_block_comments_are_not_groups_and_may_hide_code() -> None:
    found = parse_scad_text("/* a note */\na = 1;\n/*\nb = 2;\n*/\nc = 3; /* [0:9] */\n")
    assert [(p.name, p.group, p.max) for p in found.parameters] == [("a", None, None), ("c", None, None)]


def test_stops_at_first_module_or_function_definition() -> None:
    found = parse_scad_text("a = 1;\nmodule m() { b = 2; }\nc = 3;\n")
    assert [p.name for p in found.parameters] == ["a"]
    found = parse_scad_text("a = 1;\nfunction f(x) = x;\nc = 3;\n")
    assert [p.name for p in found.parameters] == ["a"]


def test_includes_uses_and_other_statements_are_skipped() -> None:
    source = """include <MCAD/boxes.scad>
use <lib/threads.scad>;
a = 1;
cube([a, a, a]);
translate([1, 0, 0]) { inner = 5; sphere(1); }
if (a > 0) { x = 1; } else if (a < 0) { y = 2; } else { z = 3; }
for (i = [0:2]) translate([i, 0, 0]) cube(1);
!#%*cube(2);
{ scoped = 4; }
b = "two";
"""
    found = parse_scad_text(source)
    assert [p.name for p in found.parameters] == ["a", "b"]
    assert found.warnings == ()


def test_reassignment_keeps_position_and_last_value() -> None:
    found = parse_scad_text("a = 1;\nb = 2;\na = 3; // [0:5]\n")
    assert [(p.name, p.default, p.max) for p in found.parameters] == [("a", 3, 5), ("b", 2, None)]
    assert any("assigned again" in w for w in found.warnings)
    found = parse_scad_text("a = 1;\na = [1];\n")
    assert found.parameters == () and found.fixed == ("a",)


def test_missing_semicolon_is_recovered_with_a_warning() -> None:
    found = parse_scad_text("a = 1\nb = 2;\n")
    assert [(p.name, p.default) for p in found.parameters] == [("a", 1), ("b", 2)]
    assert any("missing ';'" in w for w in found.warnings)


def test_unterminated_constructs_return_what_was_read() -> None:
    for source in ("a = 1;\nb = 2", 'a = 1;\nb = "open', "a = 1;\n/* open comment\nb = 2;", "a = 1;\ncube("):
        found = parse_scad_text(source)
        assert [p.name for p in found.parameters] == ["a"], source
        assert found.warnings, source


def test_unbalanced_closer_warns() -> None:
    found = parse_scad_text("a = 1;\n}\nb = 2;\n")
    assert [p.name for p in found.parameters] == ["a", "b"]
    assert any("unbalanced" in w for w in found.warnings)


def test_crlf_tabs_and_bom() -> None:
    found = params("\ufeff// Size\r\nsize\t=\t4;\t// [1:8]\r\n")
    assert (found["size"].description, found["size"].min, found["size"].max) == ("Size", 1, 8)


def test_only_a_module_is_fine() -> None:
    assert parse_scad_text("module m() { cube(1); }\n").parameters == ()


@pytest.mark.parametrize("source", ["", "   \n\n", "// nothing but a comment\n", "hello world", "\x00\x01\x02binary"])
def test_text_that_is_not_openscad_is_rejected(source: str) -> None:
    with pytest.raises(FileRejected) as caught:
        parse_scad_text(source)
    assert caught.value.field == "file"
    assert caught.value.reason.startswith("not OpenSCAD source")


def test_to_dict_omits_absent_keys() -> None:
    parameter = one("// Size\nsize = 3; // [0:1:9]\n")
    assert parameter.to_dict() == {
        "name": "size",
        "type": "number",
        "default": 3,
        "description": "Size",
        "min": 0,
        "max": 9,
        "step": 1,
    }
    assert one("b = true;").to_dict() == {"name": "b", "type": "boolean", "default": True}


def test_inspect_file_streams_a_scad_file_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from skus.domain.files import scad

    monkeypatch.setattr(scad, "_READ_BYTES", 7)
    source = '// Width ≤ 20\nwidth = 12.5; // [1:0.5:20]\nlabel = "a \\"long\\" string";\nmodule m() {}\n'
    info = inspect_file(io.BytesIO(source.encode()), "BOX.SCAD")
    assert info.kind is FileKind.SCAD
    assert [p.to_dict() for p in info.parameters] == [p.to_dict() for p in parse_scad_text(source).parameters]
    assert info.parameters[0].step == 0.5
