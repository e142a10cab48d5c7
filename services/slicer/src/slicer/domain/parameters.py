"""Order-line values as OpenSCAD `-D name=value` arguments that cannot become anything but values.

`-D` takes an OpenSCAD *expression*, so every value is written as a literal: numbers finite only,
booleans `true`/`false`, strings double-quoted with every character that could end the literal or the
line escaped. Names must be plain identifiers and not keywords. The arguments go into an argv list
(never a shell), so nothing here is ever interpreted by anything but OpenSCAD's own lexer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from slicer.domain.errors import SourceRefused

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEYWORDS = frozenset(
    {
        "module", "function", "if", "else", "for", "let", "assert", "echo", "each", "true", "false",
        "undef", "include", "use", "intersection_for",
    }
)  # fmt: skip
MAX_NAME_LENGTH = 128
MAX_STRING_LENGTH = 4096
_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def openscad_literal(name: str, value: object) -> str:
    """`value` as an OpenSCAD literal; `name` only words the error."""
    field = f"parameters.{name}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise SourceRefused(f"parameter {name!r}: {value} is too large for OpenSCAD", field=field)
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SourceRefused(f"parameter {name!r}: {value!r} is not a finite number", field=field)
        return repr(value)
    if isinstance(value, str):
        return _string_literal(name, value)
    raise SourceRefused(
        f"parameter {name!r}: a {type(value).__name__} value cannot be passed to OpenSCAD "
        "(text, number or true/false only)",
        field=field,
    )


def _string_literal(name: str, value: str) -> str:
    field = f"parameters.{name}"
    if len(value) > MAX_STRING_LENGTH:
        raise SourceRefused(f"parameter {name!r}: text longer than {MAX_STRING_LENGTH} characters", field=field)
    if "\x00" in value:
        raise SourceRefused(f"parameter {name!r}: text contains a NUL character", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceRefused(f"parameter {name!r}: text is not valid Unicode", field=field) from None
    out = ['"']
    for char in value:
        simple = _SIMPLE_ESCAPES.get(char)
        if simple is not None:
            out.append(simple)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise SourceRefused(
            f"parameter name {name!r} is not an OpenSCAD variable name (letters, digits and _, not first a digit)",
            field="parameters",
        )
    if name in KEYWORDS:
        raise SourceRefused(f"parameter name {name!r} is an OpenSCAD keyword", field="parameters")
    return name


def define_arguments(parameters: Mapping[str, object]) -> list[str]:
    """`["-D", "name=literal", ...]` in name order, so the same values give the same argv."""
    argv: list[str] = []
    for name in sorted(parameters, key=str):
        checked = check_name(name)
        argv += ["-D", f"{checked}={openscad_literal(checked, parameters[name])}"]
    return argv
