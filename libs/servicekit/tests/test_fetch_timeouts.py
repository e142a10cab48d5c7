"""A pull fetch's timeout reaches FastStream's pull loop as the error that loop suppresses."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import nats.errors
import pytest
from faststream.nats.subscriber.usecases import stream_pull_subscriber
from nats.js import JetStreamContext

from servicekit import messaging


async def test_a_bare_timeout_from_fetch_becomes_the_one_faststreams_pull_loop_suppresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fetch_whose_deadline_ran_out(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        raise TimeoutError  # what nats-py 2.16 raises when the deadline ran out during its first probe

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", fetch_whose_deadline_ran_out)
    with pytest.raises(TimeoutError), suppress(stream_pull_subscriber.TimeoutError):
        await JetStreamContext.PullSubscription.fetch(object())  # type: ignore[arg-type]
    messaging.fetch_timeouts_as_nats_timeouts()
    messaging.fetch_timeouts_as_nats_timeouts()  # twice wraps once

    with suppress(stream_pull_subscriber.TimeoutError):  # the loop's own suppress: nothing escapes
        await JetStreamContext.PullSubscription.fetch(object())  # type: ignore[arg-type]
    with pytest.raises(nats.errors.TimeoutError) as raised:
        await JetStreamContext.PullSubscription.fetch(object())  # type: ignore[arg-type]
    assert type(raised.value.__cause__) is TimeoutError


async def test_other_errors_of_fetch_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        raise nats.errors.ConnectionClosedError

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", failing)
    messaging.fetch_timeouts_as_nats_timeouts()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await JetStreamContext.PullSubscription.fetch(object())  # type: ignore[arg-type]
