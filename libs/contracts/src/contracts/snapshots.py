"""JSON Schema snapshots of every message and the compatibility rule that guards them.

Within a major version a message may only grow optional fields. `python -m contracts.snapshots`
writes the snapshots after a compatible change; the test in libs/contracts/tests refuses the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.registry import MESSAGES

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    return {m.SUBJECT: m.model_json_schema(mode="serialization") for m in MESSAGES}


def snapshot_path(subject: str) -> Path:
    return SNAPSHOT_DIR / f"{subject}.json"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return schema


def incompatibilities(
    old: dict[str, Any], new: dict[str, Any], path: str = "", old_root: Any = None, new_root: Any = None
) -> list[str]:
    """Why `new` would break a consumer written against `old` (or a producer of `old`)."""
    old_root = old_root if old_root is not None else old
    new_root = new_root if new_root is not None else new
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    if old.get("type") != new.get("type"):
        problems.append(f"{path or '<root>'}: type {old.get('type')!r} became {new.get('type')!r}")
    if "enum" in old and set(old["enum"]) - set(new.get("enum", old["enum"])):
        problems.append(f"{path}: enum values removed")
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: removed")
            continue
        problems += incompatibilities(old_prop, new_props[name], f"{path}.{name}", old_root, new_root)
    added_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(added_required):
        problems.append(f"{path}.{name}: new required field (only optional fields may be added)")
    if "items" in old and "items" in new:
        problems += incompatibilities(old["items"], new["items"], f"{path}[]", old_root, new_root)
    return problems


def write_snapshots() -> None:
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for subject, schema in current_schemas().items():
        snapshot_path(subject).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_snapshots()
    sys.stdout.write(f"wrote {len(current_schemas())} snapshots to {SNAPSHOT_DIR}\n")
