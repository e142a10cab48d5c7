"""Which role each API call needs, by method and path: the whole authorisation policy in one table.

Reading is for every signed-in role; changing things is for operators, unless a rule below says
otherwise. A new route therefore needs an operator to change anything without a new line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from api_gateway.domain.auth import Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL_METHODS = SAFE_METHODS | UNSAFE_METHODS


@dataclass(frozen=True)
class Rule:
    """`pattern` is a path of segments; `*` matches one segment, a trailing `**` any number (even none)."""

    methods: frozenset[str]
    pattern: str
    role: Role

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and _match(self.pattern.strip("/").split("/"), path.strip("/").split("/"))


RULES: tuple[Rule, ...] = (
    # one's own session, password and tokens: every role (the handlers keep each to its own)
    Rule(ALL_METHODS, "/api/v1/auth/**", Role.VIEWER),
    # people and printers are the admins'
    Rule(ALL_METHODS, "/api/v1/users/**", Role.ADMIN),
    # where farm events are sent, with a signing secret: the admins'
    Rule(ALL_METHODS, "/api/v1/webhooks/**", Role.ADMIN),
    Rule(frozenset({"POST"}), "/api/v1/printers", Role.ADMIN),
    Rule(frozenset({"PUT", "PATCH", "DELETE"}), "/api/v1/printers/*", Role.ADMIN),
    Rule(frozenset({"POST"}), "/api/v1/printers/*/bed-cleared", Role.OPERATOR),
    # failed messages carry internals; replaying one is an admin's decision
    Rule(SAFE_METHODS, "/api/v1/dead-letters/**", Role.OPERATOR),
    Rule(UNSAFE_METHODS, "/api/v1/dead-letters/**", Role.ADMIN),
)


def required_role(method: str, path: str) -> Role:
    """The least role that may call `method path` (`path` already normalised)."""
    method = method.upper()
    for rule in RULES:
        if rule.matches(method, path):
            return rule.role
    return Role.VIEWER if method in SAFE_METHODS else Role.OPERATOR


def _match(pattern: list[str], segments: list[str]) -> bool:
    if pattern and pattern[-1] == "**":
        head = pattern[:-1]
        return len(segments) >= len(head) and _match(head, segments[: len(head)])
    return len(pattern) == len(segments) and all(p in ("*", s) for p, s in zip(pattern, segments, strict=True))
