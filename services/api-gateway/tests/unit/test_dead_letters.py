"""Dead letters: the operator's list, and replay (one publish, forgotten after, unknown ids 404)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api_gateway.domain.dead_letters import DeadLetter, plan_replay, summarize

from .conftest import Harness

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(seq: int, consumer: str = "queue__print_requested", message_id: str = "m-1", *, count: int = 1,
          error: str = "ValueError('boom')", minutes: int = 0) -> DeadLetter:
    return DeadLetter(
        seq=seq,
        consumer=consumer,
        subject="orders.v1.order.print_requested",
        message_id=message_id,
        error=error,
        dead_letters=count,
        at=T0 + timedelta(minutes=minutes or seq),
        data=f'{{"id": "{message_id}", "n": {seq}}}'.encode(),
    )


def test_one_item_per_consumer_and_message_newest_first_with_the_latest_error() -> None:
    items = summarize([
        entry(1, message_id="a", error="first"),
        entry(2, message_id="b"),
        entry(3, message_id="a", error="second", count=2),
        entry(4, consumer="skus__order_changed", message_id="a"),
    ])
    assert [(i.consumer, i.message_id, i.count, i.error) for i in items] == [
        ("skus__order_changed", "a", 1, "ValueError('boom')"),
        ("queue__print_requested", "a", 2, "second"),
        ("queue__print_requested", "b", 1, "ValueError('boom')"),
    ]
    assert items[1].last_at == T0 + timedelta(minutes=3)


@given(st.lists(st.tuples(st.sampled_from(["c1", "c2"]), st.sampled_from(["m1", "m2", "m3"]),
                          st.integers(1, 5)), max_size=30))
def test_summaries_cover_every_entry_once_and_count_at_least_what_is_stored(
    rows: list[tuple[str, str, int]],
) -> None:
    entries = [entry(seq, c, m, count=n) for seq, (c, m, n) in enumerate(rows, start=1)]
    items = summarize(entries)
    assert len(items) == len({(c, m) for c, m, _ in rows})
    for item in items:
        group = [e for e in entries if (e.consumer, e.message_id) == (item.consumer, item.message_id)]
        assert item.count >= max(len(group), *(e.dead_letters for e in group))


def test_a_replay_serves_every_consumer_from_the_newest_copy_and_carries_the_count() -> None:
    replay = plan_replay([entry(1, count=1), entry(2, message_id="other"), entry(3, "skus__x", count=2)], "m-1")
    assert replay.from_seq == 3 and replay.data == entry(3).data
    assert replay.consumers == ("queue__print_requested", "skus__x")
    assert replay.stored_seqs == (1, 3) and replay.dead_letters == 2


def test_the_list_as_the_api_shows_it(harness: Harness) -> None:
    harness.dead_letters.add(entry(7, error="KeyError('sku')"))
    with harness.client() as client:
        reply = client.get("/api/v1/dead-letters")
    assert reply.status_code == 200
    assert reply.json() == {"items": [{
        "consumer": "queue__print_requested",
        "subject": "orders.v1.order.print_requested",
        "message_id": "m-1",
        "error": "KeyError('sku')",
        "count": 1,
        "last_at": "2026-01-01T00:07:00Z",
    }]}


def test_replay_republishes_once_then_the_dead_letter_is_gone(harness: Harness) -> None:
    harness.dead_letters.add(entry(1))
    harness.dead_letters.add(entry(2, "skus__order_changed"))
    with harness.client() as client:
        reply = client.post("/api/v1/dead-letters/m-1/replay")
        assert reply.status_code == 202
        assert reply.json() == {"message_id": "m-1", "subject": "orders.v1.order.print_requested",
                                "consumers": ["queue__print_requested", "skus__order_changed"]}
        assert harness.dead_letters.published == [("orders.v1.order.print_requested", entry(2).data)]
        assert client.get("/api/v1/dead-letters").json() == {"items": []}
        again = client.post("/api/v1/dead-letters/m-1/replay")
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert "m-1" in again.json()["detail"]


def test_dead_letters_need_credentials(harness: Harness) -> None:
    harness.dead_letters.add(entry(1))
    with harness.client(token=None) as client:
        assert client.get("/api/v1/dead-letters").status_code == 401
        assert client.post("/api/v1/dead-letters/m-1/replay").status_code == 401
    assert harness.dead_letters.published == []


def test_an_unreachable_bus_is_503_not_500(harness: Harness) -> None:
    harness.dead_letters.down = True
    with harness.client() as client:
        reply = client.get("/api/v1/dead-letters")
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "2"


def test_operators_see_dead_letters_and_only_admins_replay_them(harness: Harness) -> None:
    harness.dead_letters.add(entry(1))
    with harness.client() as admin:
        tokens = {
            role: admin.post("/api/v1/auth/tokens", json={"name": role, "role": role}).json()["token"]
            for role in ("viewer", "operator")
        }
    with harness.client(token=tokens["viewer"]) as viewer:
        assert viewer.get("/api/v1/dead-letters").status_code == 403, "errors carry internals"
    with harness.client(token=tokens["operator"]) as operator:
        assert operator.get("/api/v1/dead-letters").status_code == 200
        refused = operator.post("/api/v1/dead-letters/m-1/replay")
        assert refused.status_code == 403, refused.text
        assert refused.json()["required_role"] == "admin"
    assert harness.dead_letters.published == []
    assert list(harness.dead_letters.stored) == [1]
