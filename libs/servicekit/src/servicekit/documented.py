"""What a request model checks beyond its types, stated in the OpenAPI document as well.

Services validate some things in code (a name that is not blank, a colour, "may be left out but not
sent as null"). Saying so in the JSON Schema lets clients, and generated tests such as schemathesis,
send what the service accepts, instead of learning it from 422s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NOT_BLANK = r"\S"
"""A pattern: at least one character that is not white space."""

JsonSchemaExtra = Callable[[dict[str, Any]], None]


def documented(*, not_null: bool = False, **keywords: Any) -> JsonSchemaExtra:
    """``json_schema_extra`` for a field: JSON Schema ``keywords`` (``pattern``, ``format``, …) added to it
    and, with ``not_null``, the ``null`` branch of an optional field removed (it may be left out only)."""

    def update(schema: dict[str, Any]) -> None:
        options = schema.get("anyOf")
        if not_null and isinstance(options, list):
            kept = [option for option in options if option.get("type") != "null"]
            del schema["anyOf"]
            if len(kept) == 1:
                schema.update(kept[0])
            else:
                schema["anyOf"] = kept
            if schema.get("default", "") is None:
                del schema["default"]
        target = schema
        if isinstance(schema.get("anyOf"), list):  # keywords about text belong to the text branch
            target = next((o for o in schema["anyOf"] if o.get("type") == "string"), schema)
        target.update(keywords)

    return update
