"""new_id: RFC 9562 version 7 text that sorts in creation order."""

from __future__ import annotations

import time
import uuid

from servicekit.ids import new_id


def test_ids_are_version_7_rfc_variant_and_canonical_text() -> None:
    for _ in range(2_000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_strictly_ascend_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(5_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    first_ms = uuid.UUID(ids[0]).int >> 80
    assert first_ms >= before
