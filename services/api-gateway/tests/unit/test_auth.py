"""Access: bearer tokens, the UI's session cookie with its CSRF check, the first admin, AUTH_DISABLED."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from api_gateway.adapters.passwords import Argon2Passwords
from api_gateway.domain.auth import digest

from .conftest import TOKEN, Harness, Recorder


def first_admin(tmp_path: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((tmp_path / "first-admin.json").read_text())
    return data


def test_no_credentials_is_a_401_problem(harness: Harness) -> None:
    with harness.client(token=None) as client:
        reply = client.get("/api/v1/orders")
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_wrong_token_and_wrong_scheme_are_401(harness: Harness) -> None:
    with harness.client(token="nope") as client:
        assert client.get("/api/v1/orders").status_code == 401
        assert client.get("/api/v1/orders", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_the_env_token_is_accepted(harness: Harness) -> None:
    with harness.client(token=TOKEN) as client:
        assert client.get("/api/v1/orders").status_code == 200
        assert client.get("/api/v1/auth/me").json()["via"] == "env-token"


def test_health_stays_open_for_probes(harness: Harness) -> None:
    with harness.client(token=None) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/health").status_code == 200


def test_first_start_writes_the_first_admin_once_and_never_logs_secrets(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with harness.client():
        pass
    written = first_admin(tmp_path)
    assert set(written) == {"username", "password", "api_token"}
    assert stat.S_IMODE((tmp_path / "first-admin.json").stat().st_mode) == 0o600
    assert str(tmp_path / "first-admin.json") in caplog.text
    assert written["password"] not in caplog.text and written["api_token"] not in caplog.text
    (tmp_path / "first-admin.json").unlink()
    with harness.client():
        pass
    assert not (tmp_path / "first-admin.json").exists()
    with harness.client(token=written["api_token"]) as client:
        assert client.get("/api/v1/orders").status_code == 200


def test_tokens_are_stored_hashed_listed_without_secrets_and_revocable(harness: Harness) -> None:
    with harness.client() as client:
        created = client.post("/api/v1/auth/tokens", json={"name": "ci"})
        assert created.status_code == 201
        secret = created.json()["token"]
        assert all(t.token_sha256 != secret for t in harness.store.tokens.values())
        assert any(t.token_sha256 == digest(secret) for t in harness.store.tokens.values())
        listed = client.get("/api/v1/auth/tokens").json()["items"]
        assert "ci" in [t["name"] for t in listed]
        assert secret not in json.dumps(listed)
        assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}").status_code == 204
        assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}").status_code == 404


def test_login_sets_a_session_cookie_and_unsafe_methods_need_the_csrf_header(
    harness: Harness, tmp_path: Path, recorder: Recorder
) -> None:
    with harness.client(token=None) as client:
        admin = first_admin(tmp_path)
        wrong = client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"})
        assert wrong.status_code == 401
        login = client.post("/api/v1/auth/login", json={"username": admin["username"], "password": admin["password"]})
        assert login.status_code == 200
        cookies = login.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("pf_session="))
        assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
        csrf = login.json()["csrf_token"]

        assert client.get("/api/v1/orders").status_code == 200
        refused = client.post("/api/v1/orders", json={"a": 1})
        assert refused.status_code == 403
        assert len(recorder.requests) == 1
        accepted = client.post("/api/v1/orders", json={"a": 1}, headers={"X-CSRF-Token": csrf})
        assert accepted.status_code == 201
        assert "cookie" not in recorder.requests[-1]["headers"]

        assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        client.cookies.clear()
        assert client.get("/api/v1/orders").status_code == 401


def test_a_stolen_expired_session_is_refused(harness: Harness, tmp_path: Path) -> None:
    with harness.client(token=None) as client:
        admin = first_admin(tmp_path)
        client.post("/api/v1/auth/login", json={"username": "admin", "password": admin["password"]})
        harness.clock.advance(13 * 3600)
        assert client.get("/api/v1/orders").status_code == 401


def test_auth_disabled_lets_everything_through(harness: Harness, tmp_path: Path) -> None:
    with harness.client(token=None, auth_disabled=True) as client:
        assert client.get("/api/v1/orders").status_code == 200
    assert not (tmp_path / "first-admin.json").exists()


async def test_argon2_hashes_verify_only_the_right_password() -> None:
    passwords = Argon2Passwords()
    hashed = await passwords.hash("correct horse")
    assert hashed.startswith("$argon2")
    assert await passwords.verify(hashed, "correct horse")
    assert not await passwords.verify(hashed, "wrong")
    assert not await passwords.verify("not-a-hash", "wrong")


def test_a_given_first_admin_password_is_used(harness: Harness, tmp_path: Path) -> None:
    with harness.client(token=None, first_admin_password="from-a-secret") as client:
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": "from-a-secret"})
    assert login.status_code == 200
    assert first_admin(tmp_path)["password"] == "from-a-secret"
