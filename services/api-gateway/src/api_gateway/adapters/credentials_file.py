"""The first admin's secrets, written once under DATA_DIR with owner-only permissions."""

from __future__ import annotations

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
