"""`make run` shows the web UI's first admin login exactly once per data folder."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.cli import FIRST_ADMIN_FILE, first_admin_once


def test_first_login_is_shown_once_and_only_when_the_gateway_made_it(tmp_path: Path) -> None:
    assert first_admin_once(tmp_path) is None
    (tmp_path / FIRST_ADMIN_FILE).parent.mkdir(parents=True)
    (tmp_path / FIRST_ADMIN_FILE).write_text(json.dumps({"username": "admin", "password": "s3cret", "api_token": "t"}))
    line = first_admin_once(tmp_path)
    assert line is not None and "admin / s3cret" in line and "t\"" not in line
    assert first_admin_once(tmp_path) is None
