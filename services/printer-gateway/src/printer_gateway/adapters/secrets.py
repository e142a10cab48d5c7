"""Access codes are encrypted at rest with a key from the environment; they are never returned or logged."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger(__name__)


class AccessCodeCipher:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    @classmethod
    def from_settings(cls, key: str, data_dir: Path) -> AccessCodeCipher:
        """Production passes PRINTER_SECRET_KEY; a dev machine gets a key file made once in DATA_DIR."""
        if key:
            return cls(key)
        key_file = data_dir / "printer-secret.key"
        if not key_file.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
            log.warning("PRINTER_SECRET_KEY not set: generated a development key in %s", key_file)
        return cls(key_file.read_text().strip())

    def encrypt(self, access_code: str) -> bytes:
        return self._fernet.encrypt(access_code.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ValueError("access code cannot be decrypted: PRINTER_SECRET_KEY changed?") from exc
