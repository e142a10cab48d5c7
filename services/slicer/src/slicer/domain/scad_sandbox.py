"""Static refusal of OpenSCAD sources that would read other files on this server.

OpenSCAD has no sandbox: `include <...>`, `use <...>`, `import(...)`, `surface(file=...)` and the old
DXF readers open whatever path they name, and its warnings print the path back. A part is rendered
from its own file alone, copied into an empty directory, so any of these can only reach something
that is not the part: they are refused before OpenSCAD runs, with the line they are on. The scan
follows OpenSCAD's lexer (comments and string literals are skipped; `include`/`use` are keywords only
when a `<` follows), so a name tag reading "use <glue>" is still fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slicer.domain.errors import SourceRefused

MAX_SOURCE_BYTES = 8 * 1024 * 1024
FILE_READERS = frozenset(
    {"import", "surface", "import_stl", "import_off", "import_dxf", "dxf_linear_extrude", "dxf_rotate_extrude",
     "dxf_dim", "dxf_cross"}
)  # fmt: skip

# One pass, in the order that reproduces flex's longest match here: an `include`/`use` rule only when a
# `<` follows; a number only where it is longer than a name could be (it has a `.` or a signed exponent,
# so `1.5include <x>` is a number, then an include, while `1include` is one name); then names.
_TOKEN = re.compile(
    r"""
      (?P<space>[ \t\r\n\f\v\ufeff]+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>"(?:[^"\\]|\\.)*(?:"|\Z))
    | (?P<library>(?P<keyword>include|use)[ \t\r\n>]*<(?P<target>[^\t\r\n>]*)>?)
    | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]\d+)
    | (?P<name>\$?[A-Za-z0-9_]+)
    | (?P<op>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class FileReference:
    what: str
    """`include`, `use`, `import(...)`, `file=` ..."""
    target: str
    line: int


def decode_source(source: bytes) -> str:
    if len(source) > MAX_SOURCE_BYTES:
        raise SourceRefused(f"the OpenSCAD file is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB", field="file")
    if b"\x00" in source:
        raise SourceRefused("not OpenSCAD source: binary data", field="file")
    return source.decode("utf-8", "replace")


def file_references(text: str) -> list[FileReference]:
    """Every place the source would make OpenSCAD open another file."""
    found: list[FileReference] = []
    line = 1
    recent: list[str] = ["", "", "", ""]  # the last significant tokens: a name, an op character, or a kind
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        token = match.group()
        if kind == "library":
            found.append(FileReference(match["keyword"], match["target"], line))
        elif kind == "name" or kind == "op":
            if token == "(" and recent[-1] in FILE_READERS:
                found.append(FileReference(f"{recent[-1]}(...)", "", line))
            elif token == "=" and recent[-1] == "file" and recent[-2] in ("(", ","):
                found.append(FileReference("file=", "", line))
            recent = [*recent[1:], token]
        elif kind == "string" or kind == "number":
            recent = [*recent[1:], kind]
        if "\n" in token:
            line += token.count("\n")
    return found


def check_scad_source(text: str) -> None:
    """Raises `SourceRefused` naming the first reference to another file."""
    references = file_references(text)
    if not references:
        return
    first = references[0]
    if first.what in ("include", "use"):
        target = first.target if len(first.target) <= 120 else first.target[:117] + "..."
        raise SourceRefused(
            f"line {first.line}: {first.what} <{target}> is not allowed: a part is rendered from its own file "
            "alone, so it cannot include or use other files",
            field="file",
        )
    raise SourceRefused(
        f"line {first.line}: {first.what} is not allowed: a part is rendered from its own file alone, "
        "so it cannot read other files (import, surface, DXF)",
        field="file",
    )
