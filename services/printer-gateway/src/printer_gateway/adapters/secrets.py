"""Access codes are encrypted at rest with keys from the environment; they are never returned or logged.

`PRINTER_SECRET_KEY` is a comma-separated list of Fernet keys, newest first: the first encrypts, every
one decrypts. Rotation without downtime: put a new key in front of the old one on every replica (codes
stay readable), let the gateway re-encrypt the stored codes under the new key (it does at start,
`reencrypt_stale`), then drop the old key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class AccessCodeCipher:
    def __init__(self, keys: str) -> None:
        fernets = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        if not fernets:
            raise ValueError("PRINTER_SECRET_KEY holds no Fernet key")
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

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
            raise ValueError("access code cannot be decrypted: its key is not in PRINTER_SECRET_KEY") from exc

    def is_current(self, token: bytes) -> bool:
        """Whether `token` was made with the newest key (nothing to re-encrypt)."""
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: bytes) -> bytes:
        """The same access code under the newest key (raises ValueError if no key reads it)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise ValueError("access code cannot be decrypted: its key is not in PRINTER_SECRET_KEY") from exc
