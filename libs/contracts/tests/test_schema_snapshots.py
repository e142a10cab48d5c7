"""The v1 contracts may only grow: every committed snapshot must still be satisfied."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.registry import MESSAGES, STREAMS, stream_subjects
from contracts.snapshots import current_schemas, incompatibilities, snapshot_path

SUBJECTS = [m.SUBJECT for m in MESSAGES]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_message_has_a_committed_snapshot(subject: str) -> None:
    assert snapshot_path(subject).exists(), f"run `python -m contracts.snapshots` and commit {subject}"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_current_schema_is_compatible_with_snapshot(subject: str) -> None:
    old = json.loads(snapshot_path(subject).read_text())
    assert incompatibilities(old, current_schemas()[subject]) == []


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


def test_rule_accepts_a_new_optional_field() -> None:
    old = _schema({"a": {"type": "string"}}, ["a"])
    new = _schema({"a": {"type": "string"}, "b": {"type": "integer"}}, ["a"])
    assert incompatibilities(old, new) == []


@pytest.mark.parametrize(
    "new",
    [
        _schema({}, []),
        _schema({"a": {"type": "integer"}}, ["a"]),
        _schema({"a": {"type": "string"}, "b": {"type": "integer"}}, ["a", "b"]),
    ],
    ids=["removed", "retyped", "new-required"],
)
def test_rule_refuses_breaking_changes(new: dict[str, Any]) -> None:
    old = _schema({"a": {"type": "string"}}, ["a"])
    assert incompatibilities(old, new) != []


def test_subjects_follow_the_naming_rule_and_belong_to_their_owner_stream() -> None:
    for m in MESSAGES:
        owner, version, *rest = m.SUBJECT.split(".")
        assert version == "v1" and len(rest) == 2, m.SUBJECT
        assert owner in STREAMS
        assert m.SUBJECT in stream_subjects(owner)
