"""OpenSCAD customizer parameters: top-level literal assignments before the first module/function.

Follows the customizer's comment conventions: `// description` on the line above, a trailing
`// [..]` for dropdowns and ranges, `/* [Group] */` tabs, `/* [Hidden] */` to hide. Tokens are
streamed and reading stops at the first module or function, so the size of the geometry after the
parameters does not matter. Malformed input yields what could be read plus warnings.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .budget import ByteSource, InspectionBudget, InspectionLimits
from .errors import FileRejected
from .model import FileInfo, FileKind, Option, Parameter, ParameterType, ScalarValue

_READ_BYTES = 1 << 20
_SNIFF_CHARS = 4096
# A token ending this close to the end of the buffer might be longer (`1e` + `-5`, `=` + `=`).
_LOOKAHEAD = 3
_TOKEN = re.compile(
    r"""
      (?P<newline>\n)
    | (?P<space>[ \t\r\f\v\ufeff]+)
    | (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*[^*]*+\*++(?:[^/*][^*]*+\*++)*+/)
    | (?P<open_comment>/\*)
    | (?P<string>"[^"\\]*+(?:\\.[^"\\]*+)*+")
    | (?P<open_string>")
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(x[0-7][0-9a-fA-F]|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{6}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")
_MAX_SAFE_INT = 2**53
_MAX_ANNOTATION_CHARS = 16_384
"""A customizer dropdown or range fits in far less; a longer one is not worth reading."""


class _Token(NamedTuple):
    kind: str
    text: str
    line: int
    end_line: int


@dataclass(frozen=True)
class ScadParameters:
    parameters: tuple[Parameter, ...]
    fixed: tuple[str, ...]
    warnings: tuple[str, ...]


def read_scad(source: ByteSource, budget: InspectionBudget | None = None) -> FileInfo:
    """The source is read twice (a quick scan, then the parse), each time from its start as UTF-8 text
    (undecodable bytes replaced, line ends kept as they are)."""
    budget = budget or InspectionBudget(InspectionLimits())

    def chunks() -> Iterator[str]:
        source.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while data := source.read(_READ_BYTES):
            if chunk := decoder.decode(data):
                budget.spend(len(chunk))
                yield chunk
        if rest := decoder.decode(b"", final=True):
            budget.spend(len(rest))
            yield rest

    result = parse_scad(chunks(), may_read_files=mentions_file_access(chunks()))
    return FileInfo(
        kind=FileKind.SCAD,
        parameters=result.parameters,
        fixed_parameters=result.fixed,
        warnings=result.warnings,
    )


def parse_scad_text(text: str) -> ScadParameters:
    return parse_scad([text], may_read_files=mentions_file_access([text]))


def parse_scad(chunks: Iterable[str], *, may_read_files: bool = True) -> ScadParameters:
    """Customizer parameters from OpenSCAD source given as consecutive text chunks. Source that may
    read files (`mentions_file_access`) is tokenised to its end so file access anywhere is refused;
    other source is read only up to its first module or function."""
    tokens = _tokens(_checked(iter(chunks)))
    if not may_read_files:
        return _Parser(tokens).run()
    guarded = _refusing_file_access(tokens)
    result = _Parser(guarded).run()
    for _ in guarded:
        pass
    return result


_FILE_ACCESS_WORDS = ("include", "use", "import", "surface", "dxf_")
_WORD_OVERLAP = 16


def mentions_file_access(chunks: Iterable[str]) -> bool:
    """A quick scan at C speed: False means the source cannot read a file, whatever its size (True may
    be a word in a comment: the source is then checked token by token)."""
    tail = ""
    for chunk in chunks:
        window = tail + chunk
        if any(word in window for word in _FILE_ACCESS_WORDS):
            return True
        tail = chunk[-_WORD_OVERLAP:]
    return False


_LIBRARY = frozenset({"include", "use"})
_FILE_READERS = frozenset({"import", "surface", "dxf_linear_extrude", "dxf_rotate_extrude", "dxf_dim", "dxf_cross"})
"""Modules that make OpenSCAD read a file. A part is one self-contained file: nothing sits beside it in
the store, and what it could read on the server is nothing a print needs (and would leak through the
render's error messages)."""
_INSIGNIFICANT = frozenset({"space", "newline", "line_comment", "block_comment"})


def _refusing_file_access(tokens: Iterator[_Token]) -> Iterator[_Token]:
    """Passes the tokens through, refusing file readers and library paths that leave the library
    folders (`include </etc/passwd>`, `use <../../secret.scad>`)."""
    name: _Token | None = None
    path: list[str] | None = None
    for token in tokens:
        yield token
        if path is not None:
            if token.kind == "newline" or (token.kind == "op" and token.text == ">"):
                _check_library_path(name, "".join(path))
                name, path = None, None
            else:
                path.append(token.text)
            continue
        if token.kind in _INSIGNIFICANT:
            continue
        if name is not None and token.kind == "op":
            if name.text in _LIBRARY and token.text == "<":
                path = []
                continue
            if name.text in _FILE_READERS and token.text == "(":
                raise FileRejected(
                    "file",
                    f"line {name.line}: {name.text}() reads another file; upload one self-contained .scad",
                )
        name = token if token.kind == "name" and token.text in _LIBRARY | _FILE_READERS else None
    if path is not None:
        _check_library_path(name, "".join(path))


def _check_library_path(statement: _Token | None, path: str) -> None:
    line = statement.line if statement is not None else 0
    keyword = statement.text if statement is not None else "include"
    parts = path.strip().replace("\\", "/").split("/")
    if path.strip().startswith(("/", "~", "\\")) or ":" in path or ".." in parts:
        raise FileRejected(
            "file",
            f"line {line}: {keyword} <{path.strip()}> leaves the OpenSCAD library folders; only library "
            "paths like <MCAD/gears.scad> are accepted",
        )


def _checked(chunks: Iterator[str]) -> Iterator[str]:
    """Refuses binary data up front, from the first few kilobytes."""
    first = True
    for chunk in chunks:
        if first and chunk:
            first = False
            sniff = chunk[:_SNIFF_CHARS]
            if "\x00" in sniff or sniff.count("\ufffd") * 10 > len(sniff):
                raise FileRejected("file", "not OpenSCAD source: binary data")
        yield chunk


def _tokens(chunks: Iterator[str]) -> Iterator[_Token]:
    """Tokens from streamed text; a token that may continue past the buffer waits for more text."""
    buffer = ""
    pos = 0
    line = 1
    eof = False
    while True:
        if pos >= len(buffer):
            if eof:
                return
            buffer, pos, eof = _refill(buffer, pos, chunks)
            continue
        match = _TOKEN.match(buffer, pos)
        if match is None:  # unreachable: the last alternative matches any character
            return
        kind = match.lastgroup or "op"
        text = match.group()
        if not eof and (match.end() + _LOOKAHEAD > len(buffer) or kind in ("open_comment", "open_string")):
            pending = len(buffer) - pos
            buffer, pos, eof = _refill(buffer, pos, chunks)
            if not eof or len(buffer) != pending:
                continue
            # nothing more came: the token stands as matched, no need to scan it again
        end_line = line + text.count("\n") if kind in ("newline", "block_comment", "string") else line
        yield _Token(kind, text, line, end_line)
        line = end_line
        pos += len(text)


def _refill(buffer: str, pos: int, chunks: Iterator[str]) -> tuple[str, int, bool]:
    """Appends at least as much as is pending, so re-scanning a long open token stays linear."""
    pending = buffer[pos:]
    added: list[str] = []
    wanted = max(len(pending), 1)
    size = 0
    for chunk in chunks:
        added.append(chunk)
        size += len(chunk)
        if size >= wanted:
            break
    if not added:
        return pending, 0, True
    return pending + "".join(added), 0, False


def group_name(comment: str) -> str | None:
    """`/* [Name] */` → 'Name' (a customizer tab); any other block comment → None. String operations, not
    a regular expression: a hostile megabyte-long comment costs linear time."""
    if not (comment.startswith("/*") and comment.endswith("*/")):
        return None
    inner = comment[2:-2].strip()
    if len(inner) < 2 or inner[0] != "[" or inner[-1] != "]":
        return None
    name = inner[1:-1].strip()
    if "[" in name or "]" in name:
        return None
    return name


def _decode_string(literal: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[escape]
        if len(escape) > 1 and escape[0] in "xuU":
            code = int(escape[1:], 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return "\ufffd"
            return chr(code)
        return match.group(0)

    return _ESCAPE.sub(replace, literal[1:-1])


def _number(text: str) -> int | float | None:
    """A finite int (when written as one and JSON-safe) or float; None for inf/overflow."""
    if not any(c in text for c in ".eE"):
        digits = text.lstrip("+-")
        if len(digits) <= 16:
            value = int(text)
            if abs(value) < _MAX_SAFE_INT:
                return value
    number = float(text)
    return number if math.isfinite(number) else None


def _literal(tokens: list[_Token], count: int) -> tuple[ParameterType, ScalarValue] | None:
    if count == 1:
        (token,) = tokens[:1]
        if token.kind == "number":
            value = _number(token.text)
            return None if value is None else ("number", value)
        if token.kind == "string":
            return "string", _decode_string(token.text)
        if token.kind == "name" and token.text in ("true", "false"):
            return "boolean", token.text == "true"
    if count == 2 and tokens[0].kind == "op" and tokens[0].text in "+-" and tokens[1].kind == "number":
        value = _number(tokens[0].text + tokens[1].text)
        return None if value is None else ("number", value)
    return None


class _Parser:
    """Statement-level walk over the top level; bodies of other statements are skipped unread."""

    def __init__(self, tokens: Iterator[_Token]) -> None:
        self._tokens = tokens
        self._pushed: list[_Token] = []
        self._at_statement_start = False
        self._last_code_line = 0
        self._comment_above: tuple[int, str] | None = None
        self._group: str | None = None
        self._hidden = False
        self._ended = False
        self._statements = 0
        self._stopped_at_definition = False
        self._params: dict[str, Parameter] = {}
        self._fixed: dict[str, int] = {}
        self._warnings: list[str] = []

    def run(self) -> ScadParameters:
        pending: _Token | None = None
        while not self._ended:
            token = pending or self._statement_start()
            pending = None
            if token is None:
                break
            if token.kind == "op" and token.text == ";":
                continue
            if token.kind == "name" and token.text in ("module", "function"):
                self._stopped_at_definition = True
                break
            if token.kind == "name" and token.text in ("include", "use"):
                self._skip_include()
                continue
            if token.kind == "name":
                after = self._next()
                if after is not None and after.kind == "op" and after.text == "=":
                    pending = self._assignment(token)
                    continue
                if after is not None:
                    self._push(after)
            self._skip_statement(token)
        if self._statements == 0 and not self._stopped_at_definition:
            raise FileRejected("file", "not OpenSCAD source: no statements found")
        return ScadParameters(
            parameters=tuple(self._params.values()),
            fixed=tuple(self._fixed),
            warnings=tuple(self._warnings),
        )

    # --- tokens -------------------------------------------------------------------------------

    def _raw(self) -> _Token | None:
        if self._pushed:
            return self._pushed.pop()
        if self._ended:
            return None
        token = next(self._tokens, None)
        if token is None:
            self._ended = True
        return token

    def _push(self, token: _Token) -> None:
        self._pushed.append(token)

    def _statement_start(self) -> _Token | None:
        self._at_statement_start = True
        try:
            return self._next()
        finally:
            self._at_statement_start = False

    def _next(self) -> _Token | None:
        """The next significant token; comments are noted on the way (descriptions, groups)."""
        while (token := self._raw()) is not None:
            kind = token.kind
            if kind in ("space", "newline"):
                continue
            if kind == "line_comment":
                if token.line != self._last_code_line:
                    self._comment_above = (token.line, token.text[2:].strip())
                continue
            if kind == "block_comment":
                if self._at_statement_start:
                    self._group_header(token.text)
                continue
            if kind == "open_comment":
                self._warnings.append(f"line {token.line}: unterminated block comment")
                self._ended = True
                return None
            if kind == "open_string":
                self._warnings.append(f"line {token.line}: unterminated string")
                self._ended = True
                return None
            self._last_code_line = token.end_line
            return token
        return None

    def _group_header(self, text: str) -> None:
        name = group_name(text)
        if not name:
            return
        self._hidden = name.lower() == "hidden"
        self._group = None if self._hidden else name

    # --- statements ---------------------------------------------------------------------------

    def _skip_include(self) -> None:
        """`include <path>` / `use <path>`: the path is not tokenised as code, so skip to '>'."""
        self._statements += 1
        while (token := self._raw()) is not None:
            if token.kind == "newline" or (token.kind == "op" and token.text == ">"):
                return
            if token.kind in ("open_comment", "open_string"):
                self._push(token)
                return

    def _skip_statement(self, first: _Token) -> None:
        if first.kind == "op" and first.text in _CLOSERS:
            self._warnings.append(f"line {first.line}: unbalanced {first.text!r}")
            return
        depth = 0
        token: _Token | None = first
        while token is not None:
            if token.kind == "op":
                if token.text in _OPENERS:
                    depth += 1
                elif token.text in _CLOSERS:
                    depth = max(depth - 1, 0)
                    if depth == 0 and token.text == "}":
                        following = self._statement_start()
                        if following is not None and following.kind == "name" and following.text == "else":
                            token = self._next()
                            continue
                        if following is not None:
                            self._push(following)
                        self._statements += 1
                        return
                elif token.text == ";" and depth == 0:
                    self._statements += 1
                    return
            elif token is not first and depth == 0 and token.kind == "name" and token.text == "module":
                self._warnings.append(f"line {first.line}: statement not terminated by ';'")
                self._push(token)
                self._statements += 1
                return
            token = self._next()
        self._warnings.append(f"line {first.line}: statement not terminated by ';'")

    def _assignment(self, name: _Token) -> _Token | None:
        """Reads `name = value;`; returns the name token of a following assignment when a ';' is missing."""
        above = self._comment_above
        description = above[1] if above is not None and above[0] == name.line - 1 and above[1] else None
        kept: list[_Token] = []
        count = 0
        depth = 0
        previous: _Token | None = None
        while True:
            token = self._next()
            if token is None:
                self._warnings.append(f"line {name.line}: assignment to {name.text!r} not terminated by ';'")
                return None
            if token.kind == "op" and depth == 0:
                if token.text == ";":
                    break
                if token.text == "=" and previous is not None and previous.kind == "name":
                    self._warnings.append(f"line {name.line}: missing ';' after the value of {name.text!r}")
                    self._record(name, kept[: count - 1], count - 1, description, None)
                    self._push(token)
                    return previous
            if token.kind == "name" and token.text == "module" and depth == 0:
                self._warnings.append(f"line {name.line}: missing ';' after the value of {name.text!r}")
                self._record(name, kept, count, description, None)
                self._push(token)
                return None
            if token.kind == "op":
                if token.text in _OPENERS:
                    depth += 1
                elif token.text in _CLOSERS:
                    depth = max(depth - 1, 0)
            if len(kept) < 4:
                kept.append(token)
            count += 1
            previous = token
        self._record(name, kept, count, description, self._trailing_comment())
        return None

    def _trailing_comment(self) -> str | None:
        """The `//` comment right after a statement's ';' on the same line, if there is one."""
        while (token := self._raw()) is not None:
            if token.kind == "space":
                continue
            if token.kind == "line_comment":
                return token.text[2:].strip()
            self._push(token)
            return None
        return None

    def _record(
        self,
        name: _Token,
        tokens: list[_Token],
        count: int,
        description: str | None,
        annotation: str | None,
    ) -> None:
        self._statements += 1
        if count <= 0:
            self._warnings.append(f"line {name.line}: {name.text!r} has no value")
            return
        literal = _literal(tokens, count)
        key = name.text
        if key in self._params or key in self._fixed:
            self._warnings.append(f"line {name.line}: {key!r} is assigned again; OpenSCAD uses the last value")
        if literal is None or self._hidden or key.startswith("$"):
            self._params.pop(key, None)
            self._fixed[key] = name.line
            return
        self._fixed.pop(key, None)
        kind, default = literal
        parameter = Parameter(name=key, type=kind, default=default, description=description, group=self._group)
        if annotation is not None and kind != "boolean":
            parameter = _annotate(parameter, annotation, name.line, self._warnings)
        self._params[key] = parameter


# --- annotations --------------------------------------------------------------------------------


def _split_items(content: str) -> list[str]:
    """Splits on commas outside double quotes."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in content:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _annotation_number(text: str) -> int | float | None:
    text = text.strip()
    return _number(text) if _NUMBER.fullmatch(text) else None


def _annotate(parameter: Parameter, annotation: str, line: int, warnings: list[str]) -> Parameter:
    """Applies a trailing `// [..]` comment: a range for numbers, otherwise a dropdown."""
    if not annotation.startswith("["):
        return parameter
    if len(annotation) > _MAX_ANNOTATION_CHARS:
        warnings.append(f"line {line}: {parameter.name!r}: annotation over {_MAX_ANNOTATION_CHARS} characters; ignored")
        return parameter
    close = annotation.rfind("]")
    if close < 0:
        warnings.append(f"line {line}: {parameter.name!r}: unclosed '[' in the annotation; ignored")
        return parameter
    content = annotation[1:close].strip()
    items = _split_items(content)
    if not items:
        warnings.append(f"line {line}: {parameter.name!r}: empty annotation; ignored")
        return parameter
    if len(items) == 1:
        bounds = [_annotation_number(part) for part in items[0].split(":")]
        if 1 <= len(bounds) <= 3 and all(b is not None for b in bounds):
            numbers = [b for b in bounds if b is not None]
            if parameter.type == "number":
                return _with_range(parameter, numbers, line, warnings)
            if len(numbers) == 1:
                return parameter  # OpenSCAD: the maximum length of a text box
            warnings.append(f"line {line}: {parameter.name!r}: a range on a string parameter; ignored")
            return parameter
    return _with_options(parameter, items, line, warnings)


def _with_range(parameter: Parameter, numbers: list[int | float], line: int, warnings: list[str]) -> Parameter:
    low: int | float
    high: int | float
    step: int | float | None = None
    if len(numbers) == 1:
        low, high = 0, numbers[0]
    elif len(numbers) == 2:
        low, high = numbers
    else:
        low, step, high = numbers
    if low > high:
        warnings.append(f"line {line}: {parameter.name!r}: range minimum above maximum; ignored")
        return parameter
    if step is not None and step <= 0:
        warnings.append(f"line {line}: {parameter.name!r}: range step must be positive; step ignored")
        step = None
    default = parameter.default
    if isinstance(default, int | float) and not isinstance(default, bool) and not low <= default <= high:
        warnings.append(f"line {line}: {parameter.name!r}: default {default} outside [{low}, {high}]")
    return Parameter(
        name=parameter.name,
        type=parameter.type,
        default=parameter.default,
        description=parameter.description,
        min=low,
        max=high,
        step=step,
        group=parameter.group,
    )


def _with_options(parameter: Parameter, items: list[str], line: int, warnings: list[str]) -> Parameter:
    options: list[Option] = []
    for item in items:
        closing = item.find('"', 1) if item.startswith('"') else -1
        if closing > 0:
            value_text = item[: closing + 1]
            _, sep, label_part = item[closing + 1 :].partition(":")
        else:
            value_text, sep, label_part = item.partition(":")
        label = label_part.strip() if sep else None
        value: ScalarValue
        if parameter.type == "number":
            number = _annotation_number(value_text)
            if number is None:
                warnings.append(
                    f"line {line}: {parameter.name!r}: option {value_text.strip()!r} is not a number; options ignored"
                )
                return parameter
            value = number
        else:
            value = _unquote(value_text)
        options.append(Option(value=value, label=label or None))
    if all(o.value != parameter.default for o in options):
        warnings.append(f"line {line}: {parameter.name!r}: default {parameter.default!r} is not one of the options")
    return Parameter(
        name=parameter.name,
        type=parameter.type,
        default=parameter.default,
        description=parameter.description,
        options=tuple(options),
        group=parameter.group,
    )
