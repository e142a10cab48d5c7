"""Secrets a service must read back (printer access codes, webhook signing secrets) are stored encrypted
with keys from the environment; they are never returned or logged.

A key setting (`PRINTER_SECRET_KEY`, `WEBHOOK_SECRET_KEY`) is a comma-separated list of Fernet keys,
newest first: the first encrypts, every one decrypts. Rotation without downtime: put a new key in front
of the old one on every replica (stored secrets stay readable), let the service re-encrypt what it
stores under the new key (each does at start), then drop the old key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class SecretCipher:
    def __init__(self, keys: str, *, setting: str = "the secret key") -> None:
        """`setting` names the environment variable the keys come from, for the operator's error messages."""
        self.setting = setting
        fernets = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        if not fernets:
            raise ValueError(f"{setting} holds no Fernet key")
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, key: str, data_dir: Path, *, setting: str, key_file: str) -> SecretCipher:
        """Production passes the key setting; a dev machine gets a key file made once in DATA_DIR."""
        if key:
            return cls(key, setting=setting)
        path = data_dir / key_file
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            # Written aside and linked into place, so a replica starting at the same moment reads either
            # no file or a whole key, and only one key ever wins.
            draft = data_dir / f".{key_file}.{os.getpid()}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
            try:
                os.link(draft, path)
                log.warning("%s not set: generated a development key in %s", setting, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return cls(path.read_text().strip(), setting=setting)

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ValueError(f"a stored secret cannot be decrypted: its key is not in {self.setting}") from exc

    def is_current(self, token: bytes) -> bool:
        """Whether `token` was made with the newest key (nothing to re-encrypt)."""
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: bytes) -> bytes:
        """The same secret under the newest key (raises ValueError if no key reads it)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise ValueError(f"a stored secret cannot be decrypted: its key is not in {self.setting}") from exc
