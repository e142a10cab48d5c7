"""The first admin's secrets, written once under DATA_DIR with owner-only permissions, and removed
once that admin's password has been changed (the file's password then no longer works anyway)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

FIRST_ADMIN_FILE = "first-admin.json"


class FirstAdminFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FIRST_ADMIN_FILE

    def write(self, username: str, password: str, api_token: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"username": username, "password": password, "api_token": api_token}, out, indent=2)
            out.write("\n")
        return str(self.path)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def password_changed(self, username: str) -> bool:
        """Remove the file if it holds `username`'s first password; True if it did."""
        try:
            written = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(written, dict) or written.get("username") != username:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return True
