"""Each service's NATS user may do exactly what its contracts need, proven against a real nats-server
started with the dev overlay's rendered configuration (`kubectl kustomize`, the same users as prod).

What a service needs comes from `contracts.registry` and `contracts.bus_access`, and is exercised
through servicekit's own `Bus` (the code the services run): set up its stream, publish under its
prefix, consume what it declares (pull, ack, dead letter), put and resolve claim checks, use its
buckets, ask and answer its requests, follow the event streams. Everything else a compromised service
might try (read or manage another stream, pull another's consumer, read another's replies, overwrite
another's claim checks or part files, publish under another prefix) is refused by the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml
from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy, KeyValueConfig

from contracts.bus_access import (
    BUCKETS,
    CONSUMERS,
    DEAD_LETTER_REPLAYERS,
    EVENT_READERS,
    REQUESTS,
    claim_check_bucket,
    consumers_of,
    deploy_files,
    inbox_prefix,
    nats_permissions,
    owners_read_by,
    replayable_subjects,
)
from contracts.envelope import Envelope
from contracts.registry import DEAD_LETTER_STREAM, MESSAGES, SERVICE_PREFIXES, STREAMS
from devstack import wait_until
from devstack.nats_server import nats_server_binary
from devstack.ports import HOST, free_ports
from devstack.process import ManagedProcess
from servicekit.messaging import Bus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = list(SERVICE_PREFIXES)
PASSWORDS = {service: secrets.token_hex(12) for service in SERVICES}
WAIT = 30.0


def password_variable(service: str) -> str:
    return service.upper().replace("-", "_") + "_NATS_PASSWORD"


def render(overlay: str) -> list[Any]:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "kubectl"), "kustomize", str(ROOT / f"deploy/k8s/overlays/{overlay}")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return list(yaml.safe_load_all(out))


def rendered_nats_conf() -> str:
    """nats.conf as the dev overlay deploys it (the ConfigMap kustomize generates)."""
    for doc in render("dev"):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("nats-config"):
            conf: str = doc["data"]["nats.conf"]
            return conf
    raise AssertionError("the dev overlay renders no nats-config ConfigMap")


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    """nats-server with the rendered configuration and the passwords its users read from the environment."""
    folder = tmp_path_factory.mktemp("nats-permissions")
    conf = folder / "nats.conf"
    rendered = rendered_nats_conf()
    assert "store_dir: /data/jetstream" in rendered
    conf.write_text(rendered.replace("store_dir: /data/jetstream", f"store_dir: {json.dumps(str(folder / 'js'))}"))
    port, monitor = free_ports(2)
    env = {**os.environ, "POD_NAME": "permissions-test"}
    env.update({password_variable(s): PASSWORDS[s] for s in SERVICES})
    argv = [str(nats_server_binary()), "-c", str(conf), "-a", HOST, "-p", str(port), "-m", str(monitor)]
    process = ManagedProcess("nats", argv, log_path=folder / "nats.log", env=env)
    await process.start()

    async def healthy() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
                return (await client.get(f"http://{HOST}:{monitor}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await wait_until(healthy, WAIT, "nats-server with the rendered configuration")
        yield port
    finally:
        await process.stop(10)


def url(service: str, port: int) -> str:
    return f"nats://{service}:{PASSWORDS[service]}@{HOST}:{port}"


def test_the_deploy_manifests_hold_the_users_the_contracts_give() -> None:
    """Rendered from `contracts` (`python -m contracts.bus_access` rewrites them), so a service added to
    the registry gets its user, and a hand edit is caught."""
    for path, expected in deploy_files(ROOT).items():
        assert path.read_text() == expected, f"{path}: run `python -m contracts.bus_access`"
    prod = yaml.safe_load((ROOT / "deploy/k8s/overlays/prod/nats-values.yaml").read_text())
    assert prod["config"]["nats"]["tls"]["enabled"] is True, "prod NATS speaks TLS"
    users = {u["user"]: u for u in prod["config"]["merge"]["authorization"]["users"]}
    assert set(users) == set(SERVICES)
    for service, user in users.items():
        assert tuple(user["permissions"]["publish"]["allow"]) == nats_permissions(service).publish
    deployments = {d["metadata"]["name"]: d for d in render("prod") if d and d["kind"] == "Deployment"}
    for service in SERVICES:
        env = {
            e["name"]: e.get("value") for e in deployments[service]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env.get("NATS_TLS_CA_FILE") == "/etc/nats-ca/ca.crt", f"{service} does not trust the NATS CA in prod"


def envelope(subject: str, data: dict[str, Any] | None = None) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), type=subject, source="/permissions-test", data=data or {})


async def test_every_service_can_do_what_its_contracts_need(server: int) -> None:
    buses = {s: Bus(url(s, server), s, max_deliver=1, ack_wait=5) for s in SERVICES}
    try:
        for bus in buses.values():
            await bus.connect()  # sets up its own stream, under its own user

        for c in CONSUMERS:
            if c.service in buses:
                buses[c.service].consume(c.message, c.durable, _never_called, _no_uow)
        await asyncio.gather(*(bus.start() for bus in buses.values()))

        # publish under its own prefix; every consumer pulls, fails to decode, dead-letters and acks
        for message in MESSAGES:
            owner = next((s for s, p in SERVICE_PREFIXES.items() if p == message.subject_owner()), None)
            if owner is not None:
                await buses[owner].js.publish(message.SUBJECT, b"not an envelope", timeout=5)
        for service, bus in buses.items():
            expected = len([c for c in consumers_of(service) if c.message.subject_owner() in SERVICE_PREFIXES.values()])
            await wait_until(lambda b=bus, n=expected: b.dead_lettered >= n, WAIT, f"{service} to consume")  # type: ignore[misc]

        # dead-letter replay: the replayer reads DEADLETTER, republishes to a dead letter's subject, deletes it
        for service in DEAD_LETTER_REPLAYERS:
            bus = buses[service]
            sub = await bus.js.subscribe(
                "deadletter.>", stream=DEAD_LETTER_STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            dead = await sub.next_msg(timeout=5)
            await sub.unsubscribe()
            for subject in replayable_subjects():
                await bus.replay(subject, b"not an envelope", {"Nats-Msg-Id": f"replay-{service}-{subject}"})
            await bus.js.delete_msg(DEAD_LETTER_STREAM, dead.metadata.sequence.stream)

        # claim checks: the owner writes its own bucket, the readers of its messages resolve them
        for service, prefix in SERVICE_PREFIXES.items():
            if prefix is None:
                continue
            subject = next(m.SUBJECT for m in MESSAGES if m.subject_owner() == prefix)
            big = envelope(subject, {"blob": "x" * 600_000})
            await buses[service].publish(big)
            readers = [s for s in SERVICES if prefix in owners_read_by(s) and s != service]
            for reader in readers:
                resolved = await buses[reader].resolve(big.model_copy(update={"data": None, "dataref": big.id}))
                assert resolved.data == big.data

        # buckets: writers create, put and read; readers read
        for bucket in BUCKETS:
            writers = [s for s in bucket.writers if s in buses]
            if not writers:
                continue
            writer = buses[writers[0]]
            if bucket.kind == "object":
                store = await writer.object_store(bucket.name)
                await store.put("probe", b"probe bytes")
                for reader in (s for s in bucket.readers if s in buses):
                    readable = await buses[reader].readable_object_store(bucket.name)
                    assert (await readable.get("probe")).data == b"probe bytes"
            else:
                kv = await writer.js.create_key_value(KeyValueConfig(bucket=bucket.name, history=1, ttl=30))
                revision = await kv.create("probe", b"1")
                await kv.update("probe", b"2", last=revision)
                assert (await kv.get("probe")).value == b"2"

                async def listed(kv: Any = kv) -> bool:
                    # nats-py's keys() may call its listing complete before the key already sent was read
                    # (NoKeysError now and then, as the gateway's leases found): asked again until it is listed.
                    with contextlib.suppress(nats.js.errors.NoKeysError):
                        return "probe" in await kv.keys()
                    return False

                await wait_until(listed, WAIT, f"'probe' listed in {bucket.name}")

        # requests: the server answers (allow_responses), the clients ask
        for request in REQUESTS:
            subject = request.subject.replace("*", "instance-1")

            async def answer(msg: Any) -> None:
                await msg.respond(b"pong")

            await buses[request.server].nc.subscribe(subject, cb=answer)
            await buses[request.server].nc.flush()
            for client in request.clients:

                async def answered(client: str = client, subject: str = subject) -> bool:
                    # The server's interest reaches another account's client a moment after its flush.
                    try:
                        return (await buses[client].nc.request(subject, b"ping", timeout=5)).data == b"pong"
                    except nats.errors.NoRespondersError:
                        return False

                await wait_until(answered, 15, f"{client}'s request on {subject} answered by {request.server}")

        # the event feed: ephemeral ordered consumers over whole streams
        for service, owners in EVENT_READERS.items():
            for owner in owners:
                sub = await buses[service].js.subscribe(
                    f"{owner}.>", stream=STREAMS[owner], ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
                )
                assert (await sub.next_msg(timeout=5)).subject.startswith(f"{owner}.")
                await sub.unsubscribe()
    finally:
        await asyncio.gather(*(bus.close() for bus in buses.values()), return_exceptions=True)


async def _never_called(*_: Any) -> None:
    raise AssertionError("no valid message was published")


def _no_uow() -> Any:
    raise AssertionError("no valid message was published")


def forbidden_publishes(service: str) -> list[str]:
    """What a compromised `service` might try, none of which its contracts need."""
    prefix = SERVICE_PREFIXES[service]
    own_stream = STREAMS.get(prefix or "")
    read = {STREAMS[o] for o in EVENT_READERS.get(service, ())} | {c.stream for c in consumers_of(service)}
    streams = [*STREAMS.values(), DEAD_LETTER_STREAM, *(b.stream for b in BUCKETS)]
    streams += [f"OBJ_{claim_check_bucket(p)}" for p in STREAMS]
    subjects = [m.SUBJECT for m in MESSAGES if m.subject_owner() != prefix]
    if service in DEAD_LETTER_REPLAYERS:  # republishes a dead letter to its subject, only those
        subjects = [s for s in subjects if s not in replayable_subjects()]
    else:
        subjects += [f"$JS.API.STREAM.MSG.DELETE.{DEAD_LETTER_STREAM}"]
    subjects += [f"$JS.API.STREAM.DELETE.{s}" for s in streams]
    subjects += [f"$JS.API.STREAM.PURGE.{s}" for s in STREAMS.values()]
    subjects += [f"$JS.API.STREAM.UPDATE.{s}" for s in [*STREAMS.values(), DEAD_LETTER_STREAM] if s != own_stream]
    subjects += [f"$JS.API.CONSUMER.CREATE.{s}.spy.>" for s in STREAMS.values() if s not in read]
    subjects += [f"$JS.API.CONSUMER.CREATE.{DEAD_LETTER_STREAM}.spy"]
    for c in CONSUMERS:
        subjects.append(f"$JS.API.CONSUMER.DELETE.{c.stream}.{c.durable}")
        if c.service != service:
            subjects += [
                f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}",
                f"$JS.API.CONSUMER.CREATE.{c.stream}.{c.durable}",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{c.stream}.{c.durable}",
                f"$JS.ACK.{c.stream}.{c.durable}.1.1.1.1.1",
            ]
    subjects += [f"$O.{claim_check_bucket(p)}.C.overwrite" for p in STREAMS if p != prefix]
    for bucket in BUCKETS:
        if service not in bucket.writers:
            marker = "$O" if bucket.kind == "object" else "$KV"
            subjects += [f"{marker}.{bucket.name}.C.overwrite", f"$JS.API.STREAM.PURGE.{bucket.stream}"]
    subjects += [r.subject.replace("*", "x") for r in REQUESTS if service not in r.clients]
    subjects += [f"deadletter.{other}.forged" for other in SERVICES if other != service]
    return sorted(set(subjects))


def forbidden_subscriptions(service: str) -> list[str]:
    subjects = ["_INBOX.>", ">", "$JS.API.>", *(m.SUBJECT for m in MESSAGES)]
    subjects += [f"{inbox_prefix(other)}.>" for other in SERVICES if other != service]
    subjects += [r.subject for r in REQUESTS if r.server != service]
    return sorted(set(subjects))


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_can_do_nothing_else(server: int, service: str) -> None:
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        refused.append(str(exc))

    nc: NatsClient = await nats.connect(
        url(service, server), inbox_prefix=inbox_prefix(service), error_cb=on_error, max_reconnect_attempts=0
    )
    try:
        publishes, subscriptions = forbidden_publishes(service), forbidden_subscriptions(service)
        for subject in publishes:
            await nc.publish(subject, b"attack", reply=f"{inbox_prefix(service)}.x")
        for subject in subscriptions:
            await nc.subscribe(subject)
        await nc.flush()

        def missing() -> list[str]:
            said = "\n".join(refused).lower()
            wanted = [f'publish to "{s}"' for s in publishes] + [f'subscription to "{s}"' for s in subscriptions]
            return [w for w in wanted if w.lower() not in said]

        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: not missing(), WAIT, f"the server to refuse all of {service}'s attempts")
        assert missing() == [], f"{service} was allowed these"
        assert nc.is_connected, "a refused attempt must not cost the service its connection"
    finally:
        await nc.close()
