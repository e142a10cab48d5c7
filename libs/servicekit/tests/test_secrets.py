"""servicekit.secrets: a list of Fernet keys, newest first, encrypts with the first and reads with any."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from servicekit.secrets import SecretCipher

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@given(st.text(max_size=300))
def test_a_secret_comes_back_and_is_not_in_its_token(secret: str) -> None:
    cipher = SecretCipher(OLD, setting="SOME_SECRET_KEY")
    token = cipher.encrypt(secret)
    assert cipher.decrypt(token) == secret
    if len(secret) >= 4:
        assert secret.encode() not in token


def test_rotation_reads_old_tokens_and_rewrites_them_under_the_newest_key() -> None:
    old, rotating, new = (SecretCipher(k, setting="SOME_SECRET_KEY") for k in (OLD, f"{NEW}, {OLD}", NEW))
    token = old.encrypt("s3cret-value")
    assert rotating.decrypt(token) == "s3cret-value" and not rotating.is_current(token)
    moved = rotating.reencrypt(token)
    assert rotating.is_current(moved) and new.decrypt(moved) == "s3cret-value"
    with pytest.raises(ValueError, match="SOME_SECRET_KEY"):
        new.decrypt(token)
    with pytest.raises(ValueError, match="no Fernet key"):
        SecretCipher(" , ", setting="SOME_SECRET_KEY")


def test_without_a_key_setting_a_development_key_is_made_once(tmp_path: Path) -> None:
    first = SecretCipher.from_settings("", tmp_path, setting="SOME_SECRET_KEY", key_file="some.key")
    again = SecretCipher.from_settings("", tmp_path, setting="SOME_SECRET_KEY", key_file="some.key")
    assert again.decrypt(first.encrypt("x")) == "x"
    assert stat.S_IMODE((tmp_path / "some.key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["some.key"]
    given_key = SecretCipher.from_settings(NEW, tmp_path, setting="SOME_SECRET_KEY", key_file="some.key")
    assert SecretCipher(NEW).decrypt(given_key.encrypt("y")) == "y"
