"""Who does what on the bus, and the NATS permissions that follow: each service publishes under its own
prefix, consumes through the durable consumers it declares here, reads and writes the buckets named here,
and answers or asks the requests named here. Nothing else.

`nats_permissions(service)` derives one service's NATS user from this data and `contracts.registry`;
`python -m contracts.bus_access` renders the users into the deploy manifests (a test holds them equal).
A service added to `registry.SERVICE_PREFIXES` gets its user from the same rules.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contracts.envelope import ContractMessage
from contracts.orders.v1 import OrderCancelled, OrderChanged, OrderCompleted, OrderPrintRequested
from contracts.printers.v1 import (
    GATEWAY_ALIVE_SUBJECT,
    GATEWAY_FORWARD_SUBJECT,
    LEASES_BUCKET,
    REPLICAS_BUCKET,
    PrinterChanged,
    PrintUpdated,
)
from contracts.queue.v1 import (
    JobChanged,
    OrderForecastChanged,
    OrderJobsSummarized,
    SlicePart,
    StartPrint,
    StopPrint,
)
from contracts.registry import DEAD_LETTER_STREAM, SERVICE_PREFIXES, STREAMS
from contracts.skus.v1 import GET_SKUS_SUBJECT, PART_FILES_BUCKET, SkuChanged
from contracts.slicer.v1 import SLICED_FILES_BUCKET, SliceCompleted, SliceFailed


@dataclass(frozen=True)
class Consumer:
    """A durable pull consumer `durable` that `service` keeps on the stream of `message`'s owner."""

    service: str
    durable: str
    message: type[ContractMessage]

    @property
    def stream(self) -> str:
        return STREAMS[self.message.subject_owner()]


@dataclass(frozen=True)
class Bucket:
    """A JetStream object store or key-value bucket: its writers own it, its readers only read."""

    name: str
    kind: Literal["object", "kv"]
    writers: frozenset[str]
    readers: frozenset[str] = field(default_factory=frozenset)

    @property
    def stream(self) -> str:
        return f"{'OBJ' if self.kind == 'object' else 'KV'}_{self.name}"


@dataclass(frozen=True)
class Request:
    """Core NATS request/reply: `server` answers (load-balanced), `clients` ask."""

    subject: str
    server: str
    clients: frozenset[str]


CONSUMERS: tuple[Consumer, ...] = (
    Consumer("skus", "skus__order_changed", OrderChanged),
    Consumer("orders", "orders__sku_changed", SkuChanged),
    Consumer("orders", "orders__jobs_summarized", OrderJobsSummarized),
    Consumer("orders", "orders__forecast_changed", OrderForecastChanged),
    Consumer("queue", "queue__print_requested", OrderPrintRequested),
    Consumer("queue", "queue__order_cancelled", OrderCancelled),
    Consumer("queue", "queue__printer_changed", PrinterChanged),
    Consumer("queue", "queue__print_updated", PrintUpdated),
    Consumer("queue", "queue__slice_completed", SliceCompleted),
    Consumer("queue", "queue__slice_failed", SliceFailed),
    Consumer("slicer", "slicer__slice_part", SlicePart),
    Consumer("printer-gateway", "printer_gateway__start_print", StartPrint),
    Consumer("printer-gateway", "printer_gateway__stop_print", StopPrint),
    # outbound webhooks: completed orders and failed jobs become signed deliveries
    Consumer("api-gateway", "api_gateway__webhook_order_completed", OrderCompleted),
    Consumer("api-gateway", "api_gateway__webhook_job_changed", JobChanged),
)

BUCKETS: tuple[Bucket, ...] = (
    Bucket(PART_FILES_BUCKET, "object", writers=frozenset({"skus"}), readers=frozenset({"printer-gateway", "slicer"})),
    Bucket(SLICED_FILES_BUCKET, "object", writers=frozenset({"slicer"}), readers=frozenset({"printer-gateway"})),
    Bucket(LEASES_BUCKET, "kv", writers=frozenset({"printer-gateway"})),
    Bucket(REPLICAS_BUCKET, "kv", writers=frozenset({"printer-gateway"})),
)

REQUESTS: tuple[Request, ...] = (
    Request(GET_SKUS_SUBJECT, "skus", frozenset({"orders"})),
    Request(GATEWAY_FORWARD_SUBJECT.format(instance="*"), "printer-gateway", frozenset({"printer-gateway"})),
    Request(GATEWAY_ALIVE_SUBJECT.format(instance="*"), "printer-gateway", frozenset({"printer-gateway"})),
)

EVENT_READERS: dict[str, tuple[str, ...]] = {"api-gateway": ("orders", "queue", "printers")}
"""Services that follow whole owners' streams through ephemeral ordered consumers (the live event feed)."""

DEAD_LETTER_REPLAYERS: tuple[str, ...] = ("api-gateway",)
"""Services that list and replay dead letters (an admin's action): they read the DEADLETTER stream, remove
the dead letters they replayed, and publish a dead letter again to its subject, the subject of a message
a durable consumer takes (`replayable_subjects`), nothing else under another service's prefix."""


def replayable_subjects() -> list[str]:
    """The subjects a dead letter can have: those of the messages the declared durable consumers take."""
    return list(dict.fromkeys(c.message.SUBJECT for c in CONSUMERS))


def claim_check_bucket(owner: str) -> str:
    """Payloads too large for one message, per publishing owner: only the owner writes its bucket and
    only the consumers of its messages read it, so no service can overwrite another's claim checks."""
    return f"claim-checks-{owner}"


def inbox_prefix(service: str) -> str:
    """Each service's private reply subjects: no one else may subscribe to them (replies to its
    JetStream API calls and its pull requests carry data)."""
    return f"_INBOX_{service.replace('-', '_')}"


def consumers_of(service: str) -> list[Consumer]:
    return [c for c in CONSUMERS if c.service == service]


def consumer(service: str, durable: str) -> Consumer:
    """The declared consumer, or KeyError: a consumer not declared here has no NATS permission."""
    for c in CONSUMERS:
        if c.service == service and c.durable == durable:
            return c
    raise KeyError(f"{service} consumer {durable!r} is not declared in contracts.bus_access.CONSUMERS")


def owners_read_by(service: str) -> list[str]:
    """Owners whose messages `service` reads (and so whose claim checks it must resolve)."""
    owners = {c.message.subject_owner() for c in consumers_of(service)}
    owners.update(EVENT_READERS.get(service, ()))
    return sorted(owners)


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool


def _stream_reader(stream: str) -> list[str]:
    """Read a stream through unnamed ephemeral (ordered, push) consumers and direct gets, nothing more:
    no named consumer, so no one else's durable can be taken over or deleted."""
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.FC.{stream}.>",
    ]


def _stream_owner(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.UPDATE.{stream}", f"$JS.API.STREAM.INFO.{stream}"]


def _bucket_writer(bucket: Bucket) -> list[str]:
    prefix = "$O" if bucket.kind == "object" else "$KV"
    return [
        f"{prefix}.{bucket.name}.>",
        *_stream_owner(bucket.stream),
        f"$JS.API.STREAM.PURGE.{bucket.stream}",
        *_stream_reader(bucket.stream),
        f"$JS.API.CONSUMER.CREATE.{bucket.stream}.>",  # its own bucket: watchers with names
        f"$JS.API.CONSUMER.INFO.{bucket.stream}.>",
        f"$JS.API.CONSUMER.DELETE.{bucket.stream}.>",
    ]


def _durable(c: Consumer) -> list[str]:
    return [
        f"$JS.API.STREAM.INFO.{c.stream}",
        f"$JS.API.STREAM.CREATE.{c.stream}",  # before its owner starts; an existing stream is never changed
        f"$JS.API.CONSUMER.CREATE.{c.stream}.{c.durable}",
        f"$JS.API.CONSUMER.CREATE.{c.stream}.{c.durable}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{c.stream}.{c.durable}",
        f"$JS.API.CONSUMER.INFO.{c.stream}.{c.durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}",
        f"$JS.ACK.{c.stream}.{c.durable}.>",
    ]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def nats_permissions(service: str) -> Permissions:
    """Exactly what `service`'s code needs on NATS (see the module docstring)."""
    prefix = SERVICE_PREFIXES[service]
    publish: list[str] = ["$JS.API.INFO", "$JS.API.STREAM.NAMES"]  # names only: nats-py finds a bucket's stream
    subscribe: list[str] = [f"{inbox_prefix(service)}.>"]
    if prefix is not None:
        publish += [f"{prefix}.>", *_stream_owner(STREAMS[prefix])]
        claim_checks = Bucket(claim_check_bucket(prefix), "object", writers=frozenset({service}))
        publish += _bucket_writer(claim_checks)
    if consumers_of(service):
        publish += [f"deadletter.{service}.>", f"$JS.API.STREAM.CREATE.{DEAD_LETTER_STREAM}"]
        publish += [f"$JS.API.STREAM.INFO.{DEAD_LETTER_STREAM}"]
    for c in consumers_of(service):
        publish += _durable(c)
    if service in DEAD_LETTER_REPLAYERS:
        publish += [*_stream_reader(DEAD_LETTER_STREAM), f"$JS.API.STREAM.MSG.DELETE.{DEAD_LETTER_STREAM}"]
        publish += replayable_subjects()
    for owner in EVENT_READERS.get(service, ()):
        publish += [*_stream_reader(STREAMS[owner]), f"$JS.API.STREAM.CREATE.{STREAMS[owner]}"]
    for owner in owners_read_by(service):
        if owner != prefix:
            publish += _stream_reader(f"OBJ_{claim_check_bucket(owner)}")
    for bucket in BUCKETS:
        if service in bucket.writers:
            publish += _bucket_writer(bucket)
        elif service in bucket.readers:
            publish += _stream_reader(bucket.stream)
    for request in REQUESTS:
        if service in request.clients:
            publish.append(request.subject)
        if service == request.server:
            subscribe.append(request.subject)
    serves = any(r.server == service for r in REQUESTS)
    return Permissions(publish=_unique(publish), subscribe=_unique(subscribe), allow_responses=serves)


# ---- rendering into deploy/ ---------------------------------------------------------------------

USERS_BEGIN = "# BEGIN users: rendered by `python -m contracts.bus_access` from libs/contracts; do not edit"
USERS_END = "# END users"


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_") + "_NATS_PASSWORD"


def render_nats_conf_users(indent: str = "  ") -> str:
    """The `users` list of a nats-server configuration file (the dev overlay's nats.conf)."""
    lines = [f"{indent}{USERS_BEGIN}", f"{indent}users: ["]
    for service in SERVICE_PREFIXES:
        p = nats_permissions(service)
        lines += [
            f"{indent}  {{",
            f"{indent}    user: {service}",
            f"{indent}    password: ${_env_name(service)}",
            f"{indent}    permissions: {{",
            f"{indent}      publish: {{ allow: {json.dumps(list(p.publish))} }}",
            f"{indent}      subscribe: {{ allow: {json.dumps(list(p.subscribe))} }}",
        ]
        if p.allow_responses:
            lines.append(f"{indent}      allow_responses: true")
        lines += [f"{indent}    }}", f"{indent}  }}"]
    lines += [f"{indent}]", f"{indent}{USERS_END}"]
    return "\n".join(lines)


def render_helm_users(indent: str = "      ") -> str:
    """The same users as YAML for the NATS Helm chart's `config.merge.authorization.users`."""
    lines = [f"{indent}{USERS_BEGIN}", f"{indent}users:"]
    for service in SERVICE_PREFIXES:
        p = nats_permissions(service)
        lines += [
            f"{indent}  - user: {service}",
            f"{indent}    password: ${_env_name(service)}",
            f"{indent}    permissions:",
            f"{indent}      publish:",
            f"{indent}        allow:",
            *(f"{indent}          - {json.dumps(s)}" for s in p.publish),
            f"{indent}      subscribe:",
            f"{indent}        allow:",
            *(f"{indent}          - {json.dumps(s)}" for s in p.subscribe),
        ]
        if p.allow_responses:
            lines.append(f"{indent}      allow_responses: true")
    lines.append(f"{indent}{USERS_END}")
    return "\n".join(lines)


def replace_users(text: str, rendered: str) -> str:
    """`text` with the block between the BEGIN and END markers (markers included) replaced."""
    start = text.index(USERS_BEGIN)
    start = text.rindex("\n", 0, start) + 1
    end = text.index(USERS_END, start) + len(USERS_END)
    return text[:start] + rendered + text[end:]


def deploy_files(root: Path) -> dict[Path, str]:
    """Each deploy file that holds NATS users, with its users rendered from the current contracts."""
    dev = root / "deploy" / "k8s" / "overlays" / "dev" / "nats" / "nats.conf"
    prod = root / "deploy" / "k8s" / "overlays" / "prod" / "nats-values.yaml"
    return {
        dev: replace_users(dev.read_text(), render_nats_conf_users()),
        prod: replace_users(prod.read_text(), render_helm_users()),
    }


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    for path, text in deploy_files(root).items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"rewrote {path}")


if __name__ == "__main__":
    main()
