"""Pausing logins after repeated failures, per username and per client address (a sliding window).

A guessing attack against one account is stopped by the per-user limit; one address trying many
accounts by the per-address limit. Both forget a key once its window has passed, and the number of
remembered keys is bounded so a flood of random usernames cannot grow memory without limit.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_user: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    max_keys: int = 100_000


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, username: str, address: str | None, now: datetime) -> float | None:
        """Seconds until a login for `username` from `address` may be tried again; None if it may now."""
        waits = [
            self._wait(key, limit, now)
            for key, limit in self._keys(username, address)
        ]
        longest = max((w for w in waits if w is not None), default=None)
        return longest

    def failed(self, username: str, address: str | None, now: datetime) -> None:
        for key, _ in self._keys(username, address):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times
            self._trim(times, now)
        while len(self._failures) > self.policy.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(_user_key(username), None)

    def _keys(self, username: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(_user_key(username), self.policy.max_failures_per_user)]
        if address:
            keys.append(("address:" + address, self.policy.max_failures_per_address))
        return keys

    def _wait(self, key: str, limit: int, now: datetime) -> float | None:
        times = self._failures.get(key)
        if not times:
            return None
        self._trim(times, now)
        if len(times) < limit:
            return None
        return max(0.0, (times[-limit] + self.policy.window - now).total_seconds())

    def _trim(self, times: deque[datetime], now: datetime) -> None:
        while times and times[0] + self.policy.window <= now:
            times.popleft()


def _user_key(username: str) -> str:
    return "user:" + username.strip().casefold()
