"""Why a part cannot be made printable, in the words of the tool that refused it, and what an operator
asks for that does not exist."""

from __future__ import annotations

from typing import Literal

from servicekit.domain_errors import DomainError

SliceStage = Literal["fetch", "render", "slice", "package", "profile"]


class SliceError(Exception):
    """The same inputs fail the same way: callers record the failure instead of retrying.

    `message` is the tool's own words (OpenSCAD's ERROR lines, PrusaSlicer's refusal) or our rule that
    was broken, never a path on this server.
    """

    def __init__(self, stage: SliceStage, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage: SliceStage = stage
        self.message = message
        self.transient = transient
        """True when the same inputs may well succeed another time: a tool killed at its time or memory
        limit (a busy machine), a tool not installed here, a source whose bytes do not match their hash.
        A caller may answer with it but should not cache it as the inputs' outcome."""


class SourceRefused(SliceError):
    """The source or its parameter values break a rule before any tool ran (a client's mistake, 4xx)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__("render", message)
        self.field = field
        """Where the problem is, e.g. `parameters.label`, when it is one input."""


class SliceNotFound(DomainError):
    """An operator asked for a cache key no request ever made."""

    status, title = 404, "Not found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no slice with key {key}")
        self.key = key
