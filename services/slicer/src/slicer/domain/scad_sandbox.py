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

_LIBRARY = re.compile(r"(include|use)[ \t\r\n>]*<([^\t\r\n>]*)>?")
_NUMBER = re.compile(r"\d+\.\d*(?:[eE][+-]?\d+)?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"\$?[A-Za-z0-9_]+")
_SPACE = re.compile(r"[ \t\r\n\f\v\ufeff]+")
_LINE_COMMENT = re.compile(r"//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)', re.DOTALL)


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


def _next_token(text: str, pos: int) -> tuple[str, re.Match[str] | None, int]:
    """The token at `pos` the way OpenSCAD's flex lexer picks it: the longest match wins, and on a tie
    the `include`/`use` rule (listed first there) beats a number or a name."""
    for kind, pattern in (
        ("space", _SPACE),
        ("comment", _LINE_COMMENT),
        ("comment", _BLOCK_COMMENT),
        ("string", _STRING),
    ):
        match = pattern.match(text, pos)
        if match:
            return kind, match, match.end()
    best_kind, best = "op", None
    for kind, pattern in (("library", _LIBRARY), ("number", _NUMBER), ("name", _NAME)):
        match = pattern.match(text, pos)
        if match and match.end() > (best.end() if best else pos):
            best_kind, best = kind, match
    return (best_kind, best, best.end()) if best else ("op", None, pos + 1)


def file_references(text: str) -> list[FileReference]:
    """Every place the source would make OpenSCAD open another file."""
    found: list[FileReference] = []
    pos, line = 0, 1
    recent: list[str] = []  # the last significant tokens: a name, or the op character
    while pos < len(text):
        kind, match, end = _next_token(text, pos)
        token = text[pos:end]
        if kind == "library" and match is not None:
            found.append(FileReference(match.group(1), match.group(2), line))
        elif kind in ("name", "op"):
            if token == "(" and recent and recent[-1] in FILE_READERS:
                found.append(FileReference(f"{recent[-1]}(...)", "", line))
            if token == "=" and recent[-2:] in (["(", "file"], [",", "file"]):
                found.append(FileReference("file=", "", line))
            recent = [*recent[-3:], token]
        elif kind in ("string", "number"):
            recent = [*recent[-3:], kind]
        line += token.count("\n")
        pos = end
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
