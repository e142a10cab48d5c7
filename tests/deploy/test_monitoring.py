"""deploy/k8s/monitoring is checked like code: the alert rules by `promtool` (syntax and unit tests of the
alerts that matter most) where it is installed, and everywhere: every metric the rules and the dashboard
name is one the services really register, and Prometheus can reach every service's metrics port."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from printer_gateway.entrypoints.metrics import GatewayMetrics
from printqueue.entrypoints.metrics import QueueMetrics
from servicekit.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "k8s" / "monitoring"
BIN = Path(sys.executable).parent
NOT_YET_EXPOSED = ("printfarm_slicer_",)
"""The slicer service's metrics: on the dashboard already, empty until the slicer runs."""


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MONITORING / name).read_text()) if d]


def rule_groups() -> dict[str, Any]:
    [rule] = load("prometheusrule.yaml")
    return {"groups": rule["spec"]["groups"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MONITORING / "dashboards" / "printfarm.json").read_text())
    return loaded


def exposed_series_names() -> set[str]:
    """Every series name the services can expose: the plumbing's metrics and each service's domain metrics."""
    metrics = ServiceMetrics("any", "any")
    sessions = cast(async_sessionmaker[AsyncSession], None)
    QueueMetrics(metrics, sessions)
    GatewayMetrics(metrics, sessions, lambda: 0)
    return series_names(metrics.registry)


def series_names(registry: CollectorRegistry) -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "info": ["_info"], "gauge": [""]}
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return names


def named_metrics(expression: str) -> set[str]:
    return set(re.findall(r"\bprintfarm_[a-z_]+\b", expression))


def test_alerts_and_dashboard_name_only_metrics_the_services_expose() -> None:
    exposed = exposed_series_names()
    expressions = [r["expr"] for g in rule_groups()["groups"] for r in g["rules"]]
    expressions += [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    expressions += [v["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    unknown = {
        name
        for expression in expressions
        for name in named_metrics(expression)
        if name not in exposed and not name.startswith(NOT_YET_EXPOSED)
    }
    assert unknown == set(), f"named but never exposed: {sorted(unknown)}"


def test_every_alert_says_how_bad_and_what_happened() -> None:
    alerts = [r for g in rule_groups()["groups"] for r in g["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "PrintfarmOutboxBacklogGrowing",
        "PrintfarmDeadLetters",
        "PrintfarmConsumerNotProgressing",
        "PrintfarmPrintersOffline",
        "PrintfarmNoMatchingPass",
    }
    for alert in alerts:
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]


def test_the_dashboard_has_the_three_views_and_well_formed_panels() -> None:
    board = dashboard()
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert [r.split(" (")[0] for r in rows] == ["Farm overview", "Messaging health", "Per-service RED"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), "panel ids are unique"
    for panel in panels:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_prometheus_can_scrape_every_service_off_its_public_port() -> None:
    base = ROOT / "deploy" / "k8s" / "base"
    [monitor] = load("servicemonitor.yaml")
    selector = monitor["spec"]["selector"]["matchLabels"]
    port_name = monitor["spec"]["endpoints"][0]["port"]
    [policy] = load("networkpolicy.yaml")
    allowed = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    for service in ("skus", "orders", "queue", "printer-gateway", "api-gateway"):
        [svc] = [d for d in yaml.safe_load_all((base / service / "service.yaml").read_text()) if d]
        [config] = [d for d in yaml.safe_load_all((base / service / "configmap.yaml").read_text()) if d]
        deployment = next(d for d in yaml.safe_load_all((base / service / "deployment.yaml").read_text()) if d)
        assert selector.items() <= svc["metadata"]["labels"].items(), f"{service}: ServiceMonitor misses it"
        metrics_port = int(config["data"]["METRICS_PORT"])
        assert metrics_port != int(config["data"]["PORT"]), f"{service}: metrics must be off the service port"
        [target] = [p for p in svc["spec"]["ports"] if p["name"] == port_name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        [declared] = [p for p in container["ports"] if p["name"] == target["targetPort"]]
        assert declared["containerPort"] == metrics_port in allowed, service


def said(alertname: str, summary: str) -> dict[str, str]:
    """The annotations an alert should carry: `summary` as rendered, the rule's description."""
    [rule] = [r for g in rule_groups()["groups"] for r in g["rules"] if r.get("alert") == alertname]
    return {"summary": summary, "description": rule["annotations"]["description"]}


DEAD = 'namespace="pf",job="queue",durable="queue__print_updated"'
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)


@needs_promtool
def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups()))
    result = subprocess.run([str(PROMTOOL), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alerts_fire_when_they_should_and_stay_quiet_otherwise(tmp_path: Path) -> None:
    """promtool's rule unit tests: series over time in, firing alerts out."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "matching stopped while jobs wait",
                "interval": "1m",
                "input_series": [
                    # The last full pass at t=0 (timestamp 0), then none; 3 jobs queued throughout.
                    {"series": 'printfarm_queue_matching_last_full_pass_timestamp_seconds{namespace="pf",pod="q1"}',
                     "values": "0x10"},
                    {"series": 'printfarm_queue_jobs{namespace="pf",pod="q1",status="queued"}', "values": "3x10"},
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "PrintfarmNoMatchingPass", "exp_alerts": []},
                    {"eval_time": "3m", "alertname": "PrintfarmNoMatchingPass", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "namespace": "pf"},
                        "exp_annotations": said("PrintfarmNoMatchingPass",
                                                "No matching pass for over a minute while jobs wait"),
                    }]},
                ],
            },
            {
                "name": "no jobs waiting: an idle matcher is fine",
                "interval": "1m",
                "input_series": [
                    {"series": 'printfarm_queue_matching_last_full_pass_timestamp_seconds{namespace="pf",pod="q1"}',
                     "values": "0x10"},
                    {"series": 'printfarm_queue_jobs{namespace="pf",pod="q1",status="queued"}', "values": "0x10"},
                ],
                "alert_rule_test": [{"eval_time": "5m", "alertname": "PrintfarmNoMatchingPass", "exp_alerts": []}],
            },
            {
                "name": "a dead letter",
                "interval": "1m",
                "input_series": [
                    {"series": f"printfarm_dead_letters_total{{{DEAD}}}", "values": "0 0 1 1 1"},
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "PrintfarmDeadLetters", "exp_alerts": []},
                    {"eval_time": "3m", "alertname": "PrintfarmDeadLetters", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "namespace": "pf", "job": "queue",
                                       "durable": "queue__print_updated"},
                        "exp_annotations": said(
                            "PrintfarmDeadLetters", "queue__print_updated dead-lettered 1 message(s)"
                        ),
                    }]},
                ],
            },
            {
                "name": "a consumer with work that applies nothing",
                "interval": "1m",
                "input_series": [
                    {"series": 'printfarm_consumer_pending_messages{namespace="pf",job="queue",durable="queue__x"}',
                     "values": "5x30"},
                    {"series": 'printfarm_consumer_ack_pending_messages{namespace="pf",job="queue",durable="queue__x"}',
                     "values": "1x30"},
                    {"series": 'printfarm_consumer_deliveries_total{namespace="pf",job="queue",durable="queue__x",'
                               'outcome="retry"}', "values": "0+1x30"},
                    {"series": 'printfarm_consumer_deliveries_total{namespace="pf",job="queue",durable="queue__y",'
                               'outcome="applied"}', "values": "0+1x30"},
                    {"series": 'printfarm_consumer_pending_messages{namespace="pf",job="queue",durable="queue__y"}',
                     "values": "5x30"},
                    {"series": 'printfarm_consumer_ack_pending_messages{namespace="pf",job="queue",durable="queue__y"}',
                     "values": "0x30"},
                ],
                "alert_rule_test": [
                    {"eval_time": "25m", "alertname": "PrintfarmConsumerNotProgressing", "exp_alerts": [{
                        "exp_labels": {
                            "severity": "critical", "namespace": "pf", "job": "queue", "durable": "queue__x"
                        },
                        "exp_annotations": said("PrintfarmConsumerNotProgressing",
                                                "queue__x has 6 messages waiting and applied none in 10 minutes"),
                    }]},
                ],
            },
            {
                "name": "printers offline, counted once however many gateway replicas report them",
                "interval": "1m",
                "input_series": [
                    {"series": 'printfarm_printers{namespace="pf",pod="g1",state="offline",online="false"}',
                     "values": "2x10"},
                    {"series": 'printfarm_printers{namespace="pf",pod="g2",state="offline",online="false"}',
                     "values": "2x10"},
                ],
                "alert_rule_test": [
                    {"eval_time": "8m", "alertname": "PrintfarmPrintersOffline", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "namespace": "pf"},
                        "exp_annotations": said("PrintfarmPrintersOffline", "2 printer(s) offline for 5 minutes"),
                    }]},
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
