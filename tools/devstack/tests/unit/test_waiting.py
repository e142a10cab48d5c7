import pytest

from devstack import wait_until


async def test_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "ready"])
    assert await wait_until(lambda: next(calls), 1, "a value", interval=0.001) == "ready"


async def test_async_predicates_are_awaited() -> None:
    async def ready() -> int:
        return 7

    assert await wait_until(ready, 1, "seven") == 7


async def test_timeout_names_what_was_awaited() -> None:
    with pytest.raises(TimeoutError, match="waiting for the moon"):
        await wait_until(lambda: False, 0.01, "the moon", interval=0.001)


async def test_a_raising_predicate_ends_the_wait() -> None:
    def dead() -> bool:
        raise RuntimeError("process died")

    with pytest.raises(RuntimeError, match="process died"):
        await wait_until(dead, 5, "anything")
