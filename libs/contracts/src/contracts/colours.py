"""A colour's canonical form on the wire: `#RRGGBB`, upper case.

Messages carry colours (`Material.color`, printers' loaded spools) that come from uploads, slicer
projects, printer reports and people. Every service reads them through `canonical_color`, so two
spellings of one colour (`ff0000`, `#FF0000FF`, ` #ff0000 `) are one colour everywhere.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"#?([0-9A-Fa-f]{6})(?:[0-9A-Fa-f]{2})?")


def canonical_color(raw: object) -> str | None:
    """`RRGGBB`, `#RRGGBB`, `RRGGBBAA` or `#RRGGBBAA` (any case, surrounding blanks) → `#RRGGBB` upper
    case; anything else (not text, a name like `red`, `#FFF`) → None. Alpha is dropped: a spool is
    opaque to matching and planning."""
    if not isinstance(raw, str):
        return None
    found = _HEX.fullmatch(raw.strip())
    return f"#{found.group(1).upper()}" if found else None

