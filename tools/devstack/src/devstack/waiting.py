"""Waiting for a condition with a deadline, instead of sleeping and hoping: the launcher and the tests share
one implementation, `servicekit.testing.wait_until`."""

from __future__ import annotations

from servicekit.testing import wait_until

__all__ = ["wait_until"]
