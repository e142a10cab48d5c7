"""Outbound webhooks without I/O: signing, what may be configured, the backoff schedule, and the
dispatcher's attempts against a fake store, a fake receiver and a fake clock."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api_gateway.domain import commands
from api_gateway.domain.errors import WebhookInvalid
from api_gateway.domain.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    RetryPolicy,
    Webhook,
    check_events,
    check_secret,
    check_url,
    sign,
    url_pattern,
    verify,
    webhook_event,
)
from api_gateway.service_layer import handlers
from api_gateway.service_layer.handlers import Deps
from api_gateway.service_layer.ports import Sender
from api_gateway.service_layer.webhook_dispatch import WebhookDispatcher
from contracts.envelope import Envelope

from .api_gateway_fakes import FakeUnitOfWork, Ids, Store

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
SECRET = "s3cret-s3cret-s3cret"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Rig:
    """The webhook handlers and the dispatcher on one fake store, a settable clock and ids in order."""

    def __init__(self, allowed_hosts: frozenset[str] = frozenset()) -> None:
        self.store, self.clock, self.ids = Store(), Clock(), Ids()
        self.deps = Deps(clock=self.clock, ids=self.ids, allowed_hosts=allowed_hosts)

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)

    @property
    def hooks(self) -> dict[str, Webhook]:
        return self.store.webhooks.hooks

    @property
    def deliveries(self) -> dict[str, Delivery]:
        return self.store.webhooks.deliveries

    async def create(self, url: str, events: list[str] | None = None, enabled: bool = True, description: str = "",
                     deps: Deps | None = None) -> Webhook:
        cmd = commands.CreateWebhook(url, SECRET, events, enabled, description)
        return await handlers.create_webhook(cmd, self.uow(), deps or self.deps)

    async def enqueue(self, event: str, event_id: str, body: bytes = b"{}", deps: Deps | None = None) -> int:
        """As the bus's consumer runs it: the handler joins the unit of work the bus opened, which commits."""
        envelope = Envelope(id=event_id, type="orders.v1.order.completed", source="/services/orders", data={})
        cmd = commands.EnqueueWebhookEvent(event, envelope, body)
        kept = dict(self.deliveries)
        async with self.uow() as uow:
            added = await handlers.enqueue_webhook_event(cmd, uow, deps or self.deps)
            assert self.deliveries == kept, "nothing is kept before the bus's commit"
            await uow.commit()
        return added

    def dispatcher(self, send: Sender, policy: RetryPolicy | None = None, **changes: Any) -> WebhookDispatcher:
        return WebhookDispatcher(self.uow, send, replace(self.deps, retry_policy=policy or RetryPolicy(), **changes))


class Receiver:
    """Answers each POST with the next status of `answers` (None: the connection fails)."""

    def __init__(self, answers: list[int | None]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        self.calls.append((url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        return (None, "connection refused") if answer is None else (answer, None)


# ---------------------------------------------------------------- pure rules


@given(st.binary(max_size=500), st.integers(min_value=0, max_value=2**40))
def test_a_signature_verifies_only_with_the_same_secret_timestamp_and_body(body: bytes, timestamp: int) -> None:
    signature = sign(SECRET, timestamp, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, timestamp, body, signature)
    assert not verify(SECRET + "x", timestamp, body, signature)
    assert not verify(SECRET, timestamp + 1, body, signature)
    assert not verify(SECRET, timestamp, body + b"x", signature)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_700_000_000, b"{}") == f"sha256={expected}"


@given(st.integers(min_value=1, max_value=40))
def test_backoff_doubles_up_to_the_longest_wait_then_gives_up(attempts: int) -> None:
    policy = RetryPolicy(base=timedelta(seconds=5), longest=timedelta(hours=1), max_attempts=12)
    delay = policy.delay_after(attempts)
    assert delay == min(timedelta(seconds=5 * 2 ** (attempts - 1)), timedelta(hours=1))
    assert policy.delay_after(attempts + 1) >= delay
    retry_at = policy.next_attempt(attempts, T0)
    assert (retry_at is None) == (attempts >= 12)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://shop.example/hook", "http"),
        ("https:///hook", "host"),
        ("https://user:pw@shop.example/hook", "credentials"),
        ("https://shop.example/hook#x", "fragment"),
    ],
)
def test_bad_addresses_are_refused_naming_the_url(url: str, problem: str) -> None:
    with pytest.raises(WebhookInvalid) as refused:
        check_url(url)
    assert refused.value.field == "url" and problem in refused.value.message
    assert check_url(" https://shop.example/hooks/printfarm?x=1 ") == "https://shop.example/hooks/printfarm?x=1"


@given(st.data(), st.sampled_from([frozenset(), frozenset({"127.0.0.1", "localhost", "::1"})]))
def test_every_address_the_openapi_pattern_allows_is_accepted(data: st.DataObject, hosts: frozenset[str]) -> None:
    """The document's pattern is `check_url`'s rule: clients (and schemathesis) that follow it are not refused."""
    url = data.draw(st.from_regex(url_pattern(hosts), fullmatch=True).filter(lambda u: len(u) <= 2000))
    assert check_url(url, hosts) == url.strip()


def test_the_openapi_pattern_refuses_what_check_url_refuses() -> None:
    local = re.compile(url_pattern(frozenset({"127.0.0.1", "::1"})))
    assert local.match("http://[::1]:8080/hook") and local.match("https://127.0.0.1/x?y=1")
    for url in ("ftp://shop.example/h", "https:///h", "https://u:p@shop.example/h", "https://shop.example/h#x"):
        assert not re.match(url_pattern(), url), url
    assert not local.match("https://shop.example/hook")


def test_secrets_and_events_are_checked() -> None:
    with pytest.raises(WebhookInvalid, match="between"):
        check_secret("short")
    with pytest.raises(WebhookInvalid) as unknown:
        check_events(["order.completed", "order.exploded"])
    assert unknown.value.field == "events"
    with pytest.raises(WebhookInvalid):
        check_events([])
    assert check_events(["job.failed", "order.completed", "job.failed"]) == ("order.completed", "job.failed")


def test_which_messages_are_webhook_events() -> None:
    assert webhook_event("orders.v1.order.completed", {"id": "o"}) == "order.completed"
    assert webhook_event("queue.v1.job.changed", {"status": "failed"}) == "job.failed"
    assert webhook_event("queue.v1.job.changed", {"status": "printing"}) is None
    assert webhook_event("orders.v1.order.changed", {"status": "completed"}) is None


# ---------------------------------------------------------------- use cases and the dispatcher


async def test_the_secret_is_kept_but_changes_are_checked() -> None:
    rig = Rig()
    created = await rig.create("https://shop.example/h", description=" shop ")
    assert created.events == ("order.completed", "job.failed") and created.description == "shop"
    assert created.id == "id-1" and created.created_at == T0
    with pytest.raises(WebhookInvalid):
        await handlers.update_webhook(commands.UpdateWebhook(created.id, url="nope"), rig.uow(), rig.deps)
    assert rig.hooks[created.id].url == "https://shop.example/h", "a refused change changes nothing"
    change = commands.UpdateWebhook(created.id, events=["job.failed"], secret="another-secret-value")
    changed = await handlers.update_webhook(change, rig.uow(), rig.deps)
    assert changed.events == ("job.failed",) and rig.hooks[created.id].secret == "another-secret-value"


async def test_an_event_becomes_one_delivery_per_interested_webhook_and_a_duplicate_none() -> None:
    rig = Rig()
    wants = await rig.create("https://a.example/h", ["order.completed"])
    await rig.create("https://b.example/h", ["job.failed"])
    await rig.create("https://c.example/h", ["order.completed"], enabled=False)
    assert await rig.enqueue("order.completed", "evt-1") == 1
    assert await rig.enqueue("order.completed", "evt-1") == 0
    (delivery,) = rig.deliveries.values()
    assert delivery.webhook_id == wants.id and delivery.status == "pending" and delivery.next_attempt_at == T0
    assert delivery.event_id == "evt-1"


async def test_an_event_wakes_the_dispatcher_only_when_it_added_a_delivery() -> None:
    woken: list[bool] = []
    rig = Rig()
    deps = replace(rig.deps, wake_dispatcher=lambda: woken.append(True))
    await rig.create("https://a.example/h", ["order.completed"])
    assert await rig.enqueue("job.failed", "evt-1", deps=deps) == 0 and woken == []
    assert await rig.enqueue("order.completed", "evt-2", deps=deps) == 1 and woken == [True]


async def test_failed_attempts_are_recorded_and_retried_with_backoff_until_delivered() -> None:
    rig = Rig()
    clock = rig.clock
    hook = await rig.create("https://shop.example/h")
    body = json.dumps({"id": "evt-1", "type": "orders.v1.order.completed"}).encode()
    await rig.enqueue("order.completed", "evt-1", body)
    receiver = Receiver([500, None, 200])
    policy = RetryPolicy(base=timedelta(seconds=5), longest=timedelta(minutes=1), max_attempts=5)
    dispatcher = rig.dispatcher(receiver, policy)

    assert await dispatcher.run_due() == 1
    (delivery,) = rig.deliveries.values()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_status_code == 500
    assert delivery.next_attempt_at == T0 + timedelta(seconds=5)
    assert await dispatcher.run_due() == 0, "not due before its backoff ends"

    clock.now = T0 + timedelta(seconds=5)
    assert await dispatcher.run_due() == 1
    delivery = rig.deliveries[delivery.id]
    assert delivery.attempts == 2 and delivery.last_error == "connection refused"
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=10)

    clock.now += timedelta(seconds=10)
    assert await dispatcher.run_due() == 1
    delivery = rig.deliveries[delivery.id]
    assert delivery.status == "delivered" and delivery.delivered_at == clock.now and delivery.next_attempt_at is None
    assert [a.status_code for a in delivery.history] == [500, None, 200]

    url, sent, headers = receiver.calls[-1]
    assert url == hook.url and sent == body
    assert verify(SECRET, int(headers[TIMESTAMP_HEADER]), sent, headers[SIGNATURE_HEADER])
    assert headers["X-Printfarm-Event"] == "order.completed" and headers["X-Printfarm-Delivery"] == delivery.id


async def test_a_delivery_that_never_succeeds_ends_failed_after_the_last_attempt() -> None:
    rig = Rig()
    await rig.create("https://shop.example/h")
    await rig.enqueue("job.failed", "evt-2")
    policy = RetryPolicy(base=timedelta(seconds=1), longest=timedelta(seconds=4), max_attempts=3)
    dispatcher = rig.dispatcher(Receiver([503, 503, 503, 200]), policy)
    for _ in range(3):
        assert await dispatcher.run_due() == 1
        rig.clock.now += timedelta(seconds=10)
    (delivery,) = rig.deliveries.values()
    assert delivery.status == "failed" and delivery.attempts == 3 and delivery.next_attempt_at is None
    assert await dispatcher.run_due() == 0


async def test_a_sender_that_raises_is_recorded_as_a_failed_attempt() -> None:
    rig = Rig()
    await rig.create("https://shop.example/h")
    await rig.enqueue("job.failed", "evt-3")

    async def broken(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        raise RuntimeError("bug")

    await rig.dispatcher(broken).run_due()
    (delivery,) = rig.deliveries.values()
    assert delivery.status == "pending" and delivery.attempts == 1 and "RuntimeError" in (delivery.last_error or "")


async def test_only_allowed_hosts_are_accepted_and_sent_to() -> None:
    loopback = frozenset({"127.0.0.1", "localhost"})
    rig = Rig(allowed_hosts=loopback)
    with pytest.raises(WebhookInvalid) as refused:
        await rig.create("https://shop.example/h")
    assert refused.value.field == "url" and "127.0.0.1" in refused.value.message
    await rig.create("http://LOCALHOST:8000/h")
    # Set while any host was allowed, then the gateway was narrowed: recorded as refused, never sent.
    await rig.create("https://shop.example/h", deps=replace(rig.deps, allowed_hosts=frozenset()))
    await rig.enqueue("job.failed", "evt-4")
    receiver = Receiver([])
    dispatcher = rig.dispatcher(receiver)
    assert await dispatcher.run_due() == 2
    assert [url for url, _, _ in receiver.calls] == ["http://LOCALHOST:8000/h"]
    refused_delivery = next(d for d in rig.deliveries.values() if d.last_status_code is None)
    assert (refused_delivery.last_error or "").startswith("not sent:")


async def test_a_ping_is_a_pending_delivery_that_wakes_the_dispatcher() -> None:
    woken: list[bool] = []
    rig = Rig()
    deps = replace(rig.deps, wake_dispatcher=lambda: woken.append(True))
    hook = await rig.create("https://shop.example/h")
    delivery = await handlers.ping_webhook(commands.PingWebhook(hook.id), rig.uow(), deps)
    assert delivery.event_type == "ping" and rig.deliveries[delivery.id].status == "pending" and woken == [True]
    assert json.loads(delivery.body)["subject"] == hook.id
