"""The dead-letter record: the original bytes plus headers saying who gave up on them and why, so an
operator can see it and replay it after a fix.

A replay publishes the original bytes (so the envelope id, the key of every consumer's inbox, is the
same) to the original subject under a new `Nats-Msg-Id`: JetStream would drop the original id as a
duplicate inside the stream's duplicate window. Consumers that already applied the message skip it
by their inbox; the one that failed never recorded it (its transaction rolled back) and applies it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

ORIGINAL_SUBJECT = "Printfarm-Original-Subject"
ERROR = "Printfarm-Error"
CONSUMER = "Printfarm-Consumer"
MESSAGE_ID = "Printfarm-Message-Id"
DELIVERIES = "Printfarm-Deliveries"
DEAD_LETTERS = "Printfarm-Dead-Letters"
"""How many times this message ended as a dead letter, this one included; a replay carries it on."""
REPLAY_OF = "Printfarm-Replay-Of"
"""On a replayed message: the DEADLETTER stream sequence it was replayed from."""

MAX_ERROR_CHARS = 500


def message_id_of(data: bytes, headers: Mapping[str, str] | None, fallback: str) -> str:
    """The envelope id when the bytes are an envelope, else the publisher's `Nats-Msg-Id`, else `fallback`."""
    try:
        decoded = json.loads(data)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("id"), str) and decoded["id"]:
        return str(decoded["id"])
    if headers and headers.get("Nats-Msg-Id"):
        return headers["Nats-Msg-Id"]
    return fallback


def dead_letter_headers(
    *,
    consumer: str,
    original_subject: str,
    original_stream_seq: int,
    original_headers: Mapping[str, str] | None,
    data: bytes,
    error: str,
    deliveries: int,
) -> dict[str, str]:
    """Headers of a dead letter; its `Nats-Msg-Id` is stable per (consumer, stored message), so a
    consumer killed between publishing the dead letter and acking the original writes it only once."""
    previous = (original_headers or {}).get(DEAD_LETTERS, "0")
    return {
        "Nats-Msg-Id": f"dl:{consumer}:{original_stream_seq}",
        CONSUMER: consumer,
        ORIGINAL_SUBJECT: original_subject,
        MESSAGE_ID: message_id_of(data, original_headers, f"seq:{original_stream_seq}"),
        ERROR: error[:MAX_ERROR_CHARS],
        DELIVERIES: str(deliveries),
        DEAD_LETTERS: str((int(previous) if previous.isdigit() else 0) + 1),
    }


def replay_headers(dead_letter_seq: int, dead_letters: int) -> dict[str, str]:
    """A replay's `Nats-Msg-Id` is stable per dead letter: a replay request retried is stored once."""
    return {
        "Nats-Msg-Id": f"replay:{dead_letter_seq}",
        REPLAY_OF: str(dead_letter_seq),
        DEAD_LETTERS: str(dead_letters),
    }
