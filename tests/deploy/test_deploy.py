"""deploy/ is checked like code: rendered manifests against the Kubernetes schemas, Dockerfiles and YAML
linted, and the NATS subject permissions held against the contracts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contracts.bus_access import claim_check_bucket, consumers_of, replayable_subjects
from contracts.printers.v1 import GATEWAY_FORWARD_SUBJECT, LEASES_BUCKET, REPLICAS_BUCKET
from contracts.queue.v1 import SlicePart
from contracts.registry import MESSAGES, SERVICE_PREFIXES, STREAMS
from contracts.skus.v1 import GET_SKUS_SUBJECT, PART_FILES_BUCKET
from contracts.slicer.v1 import SLICED_FILES_BUCKET
from slicer.service_layer.handlers import SLICE_PART_DURABLE

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSION = "1.33.0"
CRDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def test_every_rendered_manifest_is_valid_against_the_kubernetes_schema(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, docs = rendered
    problems = []
    for doc in docs:
        kind = (doc["apiVersion"], doc["kind"])
        if kind in CRDS:
            assert doc["metadata"]["name"] and doc["spec"], doc
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{overlay} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert problems == []


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_service_has_its_parts_and_runs_locked_down(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, docs = rendered
    deployments, jobs = _by_kind(docs, "Deployment"), _by_kind(docs, "Job")
    for service in SERVICE_PREFIXES:
        for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
            assert service in _by_kind(docs, kind), f"{overlay}: {kind} {service} missing"
        assert f"{service}-migrate" in jobs
        pod = deployments[service]["spec"]["template"]["spec"]
        assert pod["initContainers"][0]["args"] == ["wait-for-migrations"]
        for container in pod["containers"] + pod["initContainers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
        main = pod["containers"][0]
        assert main["readinessProbe"]["httpGet"]["path"] == "/health"
        assert main["livenessProbe"]["httpGet"]["path"] == "/health"


def test_only_the_api_gateway_is_reachable_from_outside(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    ingresses = list(_by_kind(docs, "Ingress").values())
    assert [i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] for i in ingresses] == [
        "api-gateway"
    ]
    policies = _by_kind(docs, "NetworkPolicy")
    assert policies["default-deny-all"]["spec"]["podSelector"] == {}
    for service in SERVICE_PREFIXES:
        sources = [peer for rule in policies[service]["spec"]["ingress"] for peer in rule["from"]]
        if service == "api-gateway":
            assert all("namespaceSelector" in p for p in sources)
        else:
            assert sources == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api-gateway"}}}]


def test_each_database_admits_only_its_own_service(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    policies = _by_kind(docs, "NetworkPolicy")
    for service in SERVICE_PREFIXES:
        rules = policies[f"{service}-db"]["spec"]["ingress"]
        on_5432 = [r for r in rules if any(p.get("port") == 5432 for p in r.get("ports", []))]
        app_peers = [p for r in on_5432 for p in r["from"] if "podSelector" in p]
        assert app_peers == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": service}}}]


def test_prod_runs_three_queue_replicas_and_autoscales_the_gateways() -> None:
    docs = render("prod")
    assert _by_kind(docs, "Deployment")["queue"]["spec"]["replicas"] == 3
    assert set(_by_kind(docs, "HorizontalPodAutoscaler")) == {"printer-gateway", "api-gateway"}
    assert set(_by_kind(docs, "Cluster")) == {f"{s}-db" for s in SERVICE_PREFIXES}


def test_prod_scales_the_slicer_on_its_pending_slice_requests() -> None:
    """KEDA's nats-jetstream trigger watches the one durable consumer every slicer replica shares."""
    docs = render("prod")
    scaled = _by_kind(docs, "ScaledObject")["slicer"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "slicer" and scaled["minReplicaCount"] >= 1
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == STREAMS[SlicePart.subject_owner()]
    assert trigger["metadata"]["consumer"] == SLICE_PART_DURABLE
    pod = _by_kind(docs, "Deployment")["slicer"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["requests"]["cpu"] == "1", "a slice keeps one core busy"


DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_stages() -> dict[str, tuple[str, str]]:
    """Each stage of the one Dockerfile by name: (what it is built FROM, its instructions)."""
    stages: dict[str, tuple[str, str]] = {}
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for block in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        match = re.fullmatch(r"FROM (\S+) AS (\S+)", head.strip())
        assert match, f"every stage is named: {head}"
        stages[match[2]] = (match[1], body)
    return stages


def test_one_dockerfile_builds_every_service() -> None:
    """Images differ only in the service's stage: its module and, where it needs them, its system packages."""
    assert sorted(ROOT.glob("services/*/Dockerfile")) == [], "one parametrised build, not one file per service"
    stages = dockerfile_stages()
    for service in SERVICE_PREFIXES:
        parent, body = stages[service]
        assert parent == "runtime", f"{service}: built on the shared runtime stage"
        [module] = re.findall(r"SERVICE_MODULE=(\w+)", body)
        assert (ROOT / "services" / service / "src" / module / "__main__.py").is_file(), (service, module)
    assert "openscad" in stages["slicer"][1] and "prusa-slicer" in stages["slicer"][1]
    assert "ffmpeg" in stages["printer-gateway"][1]
    system_packages = {"slicer", "printer-gateway"}
    assert not any("apt-get" in stages[s][1] for s in SERVICE_PREFIXES if s not in system_packages)
    final, body = stages[list(stages)[-1]]
    assert final == "${SERVICE}", "the image is the stage the SERVICE build argument names"
    assert "COPY --from=build /app/services/${SERVICE} /app/services/${SERVICE}" in body


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_from_the_lock_file_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    assert 'uv sync --frozen --no-dev --package "printfarm-${SERVICE}"' in text
    assert "COPY pyproject.toml uv.lock" in text
    assert re.search(r"^USER 10001", text, re.M) and "HEALTHCHECK" in text
    stages = dockerfile_stages()

    def ancestry(stage: str) -> tuple[list[str], str]:
        """The stages an image is built on, and the image the first of them starts from."""
        chain = []
        while stage in stages:
            chain.append(stage)
            stage = stages[stage][0]
        return chain, stage

    for service in SERVICE_PREFIXES:
        chain, image = ancestry(service)
        assert "build" not in chain, f"{service}: no build tools in the final image"
        assert image == ancestry("build")[1] == "python:3.11-slim-bookworm"
    assert not re.search(r"\buv\b|pip install", stages["runtime"][1]), "no build tools in the runtime stage"


def test_yaml_passes_yamllint() -> None:
    result = subprocess.run(
        [str(BIN / "yamllint"), "-c", str(ROOT / ".yamllint.yaml"), str(ROOT / "deploy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


# ---- NATS permissions against the contracts


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: `*` is one token, `>` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


REPLAYABLE = replayable_subjects()
"""The API gateway publishes no events, but replays a dead letter to its original subject (admins): the
subjects of the messages a durable consumer takes."""


def publishes(service: str) -> list[str]:
    """Every subject the service's code publishes on, from the contracts it is built on."""
    prefix = SERVICE_PREFIXES[service]
    subjects = [m.SUBJECT for m in MESSAGES if m.subject_owner() == prefix]
    for c in consumers_of(service):
        subjects += [f"deadletter.{service}.{c.durable}", f"$JS.ACK.{c.stream}.{c.durable}.1.2.3.4.5"]
        subjects.append(f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}")
    if prefix is not None:
        subjects += [f"$O.{claim_check_bucket(prefix)}.C.chunk", f"$JS.API.STREAM.INFO.{prefix.upper()}"]
    if service == "skus":
        subjects.append(f"$O.{PART_FILES_BUCKET}.C.chunk")
    if service == "orders":
        subjects.append(GET_SKUS_SUBJECT)
    if service == "slicer":
        subjects.append(f"$O.{SLICED_FILES_BUCKET}.C.chunk")
    if service == "api-gateway":
        subjects += REPLAYABLE
    if service == "printer-gateway":
        subjects += [
            f"$KV.{LEASES_BUCKET}.printer-1",
            f"$KV.{REPLICAS_BUCKET}.replica-1",
            GATEWAY_FORWARD_SUBJECT.format(instance="printer-gateway-7d9f"),
        ]
    return subjects


def dev_permissions() -> dict[str, list[str]]:
    text = (K8S / "overlays" / "dev" / "nats" / "nats.conf").read_text()
    user_block = r"user:\s*(\S+)\s+password:[^\n]*\n\s*permissions:\s*\{\s*publish:\s*\{\s*allow:\s*(\[.*?\])"
    users = re.findall(user_block, text)
    return {user: json.loads(allow) for user, allow in users}


def prod_permissions() -> dict[str, list[str]]:
    values = yaml.safe_load((K8S / "overlays" / "prod" / "nats-values.yaml").read_text())
    users = values["config"]["merge"]["authorization"]["users"]
    return {u["user"]: u["permissions"]["publish"]["allow"] for u in users}


@pytest.mark.parametrize("source", [dev_permissions, prod_permissions], ids=["dev", "prod"])
def test_every_service_may_publish_what_it_publishes_and_nothing_under_another_prefix(source: Any) -> None:
    allowed = source()
    assert set(allowed) == set(SERVICE_PREFIXES)
    for service, patterns in allowed.items():
        denied = [s for s in publishes(service) if not any(subject_matches(p, s) for p in patterns)]
        assert denied == [], f"{service} publishes on subjects its NATS user may not: {denied}"
        others = [m.SUBJECT for m in MESSAGES if m.subject_owner() != SERVICE_PREFIXES[service]]
        if service == "api-gateway":
            others = [s for s in others if s not in REPLAYABLE]  # it replays dead letters (checked above)
        trespass = [s for s in others if any(subject_matches(p, s) for p in patterns)]
        assert trespass == [], f"{service} may publish under another service's prefix: {trespass}"


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("orders.>", "orders.v1.order.changed", True),
        ("orders.>", "orders", False),
        ("rpc.printers.v1.gateway.*.command", "rpc.printers.v1.gateway.a.command", True),
        ("rpc.printers.v1.gateway.*.command", "rpc.printers.v1.gateway.a.b.command", False),
        ("queue.>", "orders.v1.order.changed", False),
    ],
)
def test_subject_matching(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected
