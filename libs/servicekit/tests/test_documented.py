"""Constraints checked in code are stated in the JSON Schema too."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicekit.documented import NOT_BLANK, documented


class Patch(BaseModel):
    name: str | None = Field(
        default=None, max_length=10, json_schema_extra=documented(not_null=True, pattern=NOT_BLANK)
    )
    note: str | None = Field(default=None, json_schema_extra=documented(format="email"))


def test_a_field_that_may_be_left_out_but_not_null_has_no_null_branch() -> None:
    schema = Patch.model_json_schema()["properties"]
    assert schema["name"] == {"type": "string", "maxLength": 10, "pattern": NOT_BLANK, "title": "Name"}


def test_keywords_about_text_go_to_the_text_branch_of_a_nullable_field() -> None:
    schema = Patch.model_json_schema()["properties"]["note"]
    assert {"type": "string", "format": "email"} in schema["anyOf"] and {"type": "null"} in schema["anyOf"]
