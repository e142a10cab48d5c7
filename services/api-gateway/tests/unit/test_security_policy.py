"""The gateway's pure security rules: the role policy, login throttling, path refusal, header hygiene
and body budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from api_gateway.domain.auth import Role, lower_role
from api_gateway.domain.forwarding import named_in_connection, request_headers, response_headers
from api_gateway.domain.login_throttle import LoginThrottle, ThrottlePolicy
from api_gateway.domain.permissions import required_role
from api_gateway.domain.routing import body_budget, path_refusal

T0 = datetime(2026, 12, 4, tzinfo=UTC)
segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)
    assert lower_role(Role.ADMIN, Role.VIEWER) is Role.VIEWER


def test_the_policy_table() -> None:
    assert required_role("GET", "/api/v1/orders") is Role.VIEWER
    assert required_role("POST", "/api/v1/orders") is Role.OPERATOR
    assert required_role("POST", "/api/v1/orders/1/print-jobs") is Role.OPERATOR
    assert required_role("POST", "/api/v1/parts") is Role.OPERATOR
    assert required_role("POST", "/api/v1/printers") is Role.ADMIN
    assert required_role("PATCH", "/api/v1/printers/p1") is Role.ADMIN
    assert required_role("DELETE", "/api/v1/printers/p1") is Role.ADMIN
    assert required_role("POST", "/api/v1/printers/p1/bed-cleared") is Role.OPERATOR
    assert required_role("GET", "/api/v1/users") is Role.ADMIN
    assert required_role("PATCH", "/api/v1/users/u1") is Role.ADMIN
    assert required_role("POST", "/api/v1/auth/tokens") is Role.VIEWER
    assert required_role("POST", "/api/v1/auth/password") is Role.VIEWER
    assert required_role("POST", "/api/v1/dead-letters/m1/replay") is Role.ADMIN


@given(st.lists(segments, min_size=1, max_size=5), st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
def test_any_unknown_route_needs_an_operator_to_change_and_a_viewer_to_read(parts: list[str], method: str) -> None:
    path = "/api/v1/new-" + "/".join(parts)
    assert required_role(method, path) is Role.OPERATOR
    assert required_role("GET", path) is Role.VIEWER


@given(st.lists(st.integers(min_value=0, max_value=2000), min_size=0, max_size=40))
def test_a_user_is_paused_exactly_after_the_limit_within_the_window(offsets: list[int]) -> None:
    policy = ThrottlePolicy(max_failures_per_user=5, max_failures_per_address=10_000, window=timedelta(seconds=900))
    throttle = LoginThrottle(policy)
    times = sorted(T0 + timedelta(seconds=s) for s in offsets)
    for at in times:
        throttle.failed("Alice", "10.0.0.1", at)
    now = (times[-1] if times else T0) + timedelta(seconds=1)
    recent = [t for t in times if t + policy.window > now]
    wait = throttle.retry_after("alice", None, now)
    assert (wait is not None) == (len(recent) >= 5)
    if wait is not None:
        assert 0 <= wait <= policy.window.total_seconds()
        assert throttle.retry_after("alice", None, now + timedelta(seconds=wait + 0.001)) is None


def test_a_success_clears_the_user_but_not_the_address() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_failures_per_user=2, max_failures_per_address=3))
    for name in ("a", "a", "b"):
        throttle.failed(name, "10.0.0.9", T0)
    assert throttle.retry_after("a", "10.0.0.1", T0) is not None
    throttle.succeeded("a")
    assert throttle.retry_after("a", "10.0.0.1", T0) is None
    assert throttle.retry_after("c", "10.0.0.9", T0) is not None


def test_remembered_keys_are_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_keys=100))
    for i in range(1000):
        throttle.failed(f"user{i}", f"10.0.{i // 256}.{i % 256}", T0)
    assert len(throttle._failures) <= 100


@given(st.lists(segments, min_size=1, max_size=6))
def test_ordinary_paths_pass(parts: list[str]) -> None:
    assert path_refusal(("/api/v1/" + "/".join(parts)).encode()) is None
    assert path_refusal(("/api/v1/" + "/".join(parts) + "/").encode()) is None


DISGUISES = [".", "..", "%2e", "%2e%2e", "%2E%2e", ".%2e", "%252e%252e", "a%2fb", "a%5cb", "a\\b", "", "a%00"]


@given(st.lists(segments, max_size=3), st.lists(segments, max_size=3), st.sampled_from(DISGUISES))
def test_dot_segments_and_their_disguises_are_refused(before: list[str], after: list[str], bad: str) -> None:
    path = "/" + "/".join([*before, bad, *after, "x"])
    assert path_refusal(path.encode()) is not None


def test_encoded_ordinary_characters_pass() -> None:
    assert path_refusal(("/api/v1/orders/" + quote("#1001 é")).encode()) is None


def test_connection_names_more_hop_by_hop_headers() -> None:
    sent = [("Connection", "keep-alive, X-Hop , x-other"), ("X-Hop", "1"), ("X-Other", "2"), ("X-Keep", "3")]
    assert named_in_connection(sent) == {"keep-alive", "x-hop", "x-other"}
    forwarded = dict(request_headers(sent, "10.1.1.1", "https", "farm"))
    assert "X-Hop" not in forwarded and "X-Other" not in forwarded and forwarded["X-Keep"] == "3"
    assert response_headers([("Connection", "x-a"), ("x-a", "1"), ("ETag", '"1"')]) == [("ETag", '"1"')]


def test_forwarding_claims_are_replaced() -> None:
    sent = [("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6"),
            ("X-Forwarded-Host", "evil"), ("X-Forwarded-Proto", "https")]
    assert request_headers(sent, "10.1.1.1", "http", "farm") == [
        ("x-forwarded-for", "10.1.1.1"), ("x-forwarded-proto", "http"), ("x-forwarded-host", "farm")
    ]


def test_only_part_uploads_get_the_upload_budget() -> None:
    assert body_budget("POST", "/api/v1/parts") == "part-upload"
    assert body_budget("POST", "/api/v1/parts/") == "part-upload"
    assert body_budget("PATCH", "/api/v1/parts/p1") == "json"
    assert body_budget("POST", "/api/v1/orders") == "json"
    assert body_budget("POST", "/api/v1/parts/p1/anything") == "json"
