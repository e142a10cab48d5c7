"""The smoke client's own parts, without a stack: where it looks for the API and its token, how it reads
problem details, what it uploads, and that waiting ends at its deadline.
(`tests/integration/test_smoke_client.py` runs the whole walk against a real stack.)"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from .smoke_client import (
    Checks,
    Reply,
    StepFailed,
    default_token,
    is_problem,
    multipart_form,
    names_field,
    parse_arguments,
    sliced_project,
    wait_for,
)

PROBLEM = {"content-type": "application/problem+json"}


def problem(status: int, **extra: object) -> bytes:
    return json.dumps({"type": "about:blank", "title": "T", "status": status, **extra}).encode()


def test_the_api_follows_port_as_make_run_does_unless_api_is_given() -> None:
    assert parse_arguments([], {}).api == "http://127.0.0.1:8080"
    assert parse_arguments([], {"PORT": "18180"}).api == "http://127.0.0.1:18180"
    assert parse_arguments([], {"PORT": "18180", "API": "https://farm.example"}).api == "https://farm.example"
    assert parse_arguments(["--api", "http://x:1"], {"API": "https://farm.example"}).api == "http://x:1"


def test_the_token_comes_from_api_token_else_from_the_stack_data_folder(tmp_path: Path) -> None:
    (tmp_path / "api_token").write_text("from-file\n", encoding="utf-8")
    assert default_token({"DEVSTACK_DATA_DIR": str(tmp_path)}) == "from-file"
    assert default_token({"DEVSTACK_DATA_DIR": str(tmp_path), "API_TOKEN": "from-env"}) == "from-env"
    assert default_token({"DEVSTACK_DATA_DIR": str(tmp_path / "missing")}) == ""


def test_a_problem_needs_its_media_type_and_status() -> None:
    assert is_problem(Reply(404, problem(404), PROBLEM), 404)
    assert not is_problem(Reply(404, problem(404), {"content-type": "application/json"}), 404)
    assert not is_problem(Reply(409, problem(404), PROBLEM), 409)
    assert not is_problem(Reply(500, b"Internal Server Error", {"content-type": "text/plain"}), 500)


def test_a_field_is_named_only_by_the_errors_list() -> None:
    named = Reply(422, problem(422, errors=[{"field": "line_items[0].quantity", "message": "≥ 1"}]), PROBLEM)
    assert names_field(named, "quantity")
    assert not names_field(named, "sku_id")
    assert not names_field(Reply(422, problem(422, detail="quantity is wrong"), PROBLEM), "quantity")


def test_headers_are_read_without_regard_to_case() -> None:
    assert Reply(201, b"{}", {"Idempotent-Replayed": "true"}).header("idempotent-replayed") == "true"


def test_the_sliced_project_holds_one_plate_of_gcode_naming_its_filament() -> None:
    with zipfile.ZipFile(io.BytesIO(sliced_project("PETG", minutes=12, grams=3.5))) as project:
        gcode = project.read("Metadata/plate_1.gcode").decode()
    assert "; filament_type = PETG" in gcode
    assert "; total filament weight [g] : 3.5" in gcode
    assert "; model printing time: 12m 0s" in gcode


def test_the_multipart_form_carries_fields_and_the_file_between_boundaries() -> None:
    body, content_type = multipart_form({"name": "Widget"}, {"file": ("w.gcode.3mf", b"PK\x03\x04")})
    boundary = content_type.split("boundary=")[1]
    assert content_type.startswith("multipart/form-data; ")
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="name"\r\n\r\nWidget\r\n' in body
    assert b'filename="w.gcode.3mf"' in body and b"PK\x03\x04\r\n" in body


def test_waiting_returns_the_first_truthy_value() -> None:
    answers = iter([None, [], ["ready"]])
    assert wait_for(lambda: next(answers), 5, "readiness", every=0) == ["ready"]


def test_waiting_fails_at_its_deadline_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(StepFailed, match="the bed to be cleared"):
        wait_for(lambda: False, 0.05, "the bed to be cleared", every=0.01)
    assert time.monotonic() - started < 2


def test_a_failed_requirement_stops_the_walk_and_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    checks = Checks()
    checks.check("fine", True)
    with pytest.raises(StepFailed):
        checks.require("broken", False, "why")
    assert checks.failed == ["broken"]
    assert "FAIL broken  -- why" in capsys.readouterr().out
