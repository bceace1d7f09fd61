"""The Grafana dashboard and the Prometheus alert rules in deploy/ query
metrics the code registers, with labels those metrics carry: a renamed
metric or label fails here, not silently on a wall screen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import streams.llm.metrics  # noqa: F401 - registers the LLM metrics
import streams.metrics  # noqa: F401 - registers the pipeline's metrics

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "murmur-dashboard.json"
# Labels Prometheus adds to every scraped series, and histograms' bucket bound.
TARGET_LABELS = {"job", "instance", "service", "le"}
SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\s*(\{[^}]*\})?")
PROMQL_WORDS = {"sum", "by", "rate", "increase", "delta", "histogram_quantile", "and", "or", "unless", "without",
                "avg", "max", "min", "count", "up"}


def collectors() -> dict[str, object]:
    return dict(REGISTRY._names_to_collectors)


def labels_of(collector) -> set[str]:
    return set(getattr(collector, "_labelnames", ()))


def check(expr: str, where: str) -> list[str]:
    known = collectors()
    problems, labels = [], set()
    for name, braces in SELECTOR.findall(expr):
        if name in PROMQL_WORDS or not name.startswith("murmur_") and name != "up":
            continue
        if name == "up":
            used = set(re.findall(r"([a-z_]+)\s*=~?", braces or ""))
            problems += [f"{where}: up has no label {u}" for u in used - TARGET_LABELS]
            labels |= TARGET_LABELS
            continue
        if name not in known:
            problems.append(f"{where}: no metric {name} is registered")
            continue
        have = labels_of(known[name]) | TARGET_LABELS
        labels |= have
        used = set(re.findall(r"([a-z_]+)\s*=~?", braces or ""))
        problems += [f"{where}: {name} has no label {u}" for u in used - have]
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        for label in filter(None, (x.strip() for x in group.split(","))):
            if label not in labels:
                problems.append(f"{where}: groups by {label}, which none of its metrics carries")
    return problems


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_every_alert_queries_registered_metrics_and_their_labels():
    found = rules()
    assert len(found) >= 8
    problems = [p for r in found for p in check(r["expr"], r["alert"])]
    assert problems == []
    for r in found:  # an annotation can only name labels the expression keeps
        kept = set(re.findall(r"\bby\s*\(([^)]*)\)", r["expr"]))
        kept = {x.strip() for k in kept for x in k.split(",")}
        if "by" not in r["expr"]:
            kept = set().union(*(labels_of(collectors()[n]) for n, _ in SELECTOR.findall(r["expr"])
                                 if n in collectors())) | TARGET_LABELS
        for ann in r.get("annotations", {}).values():
            for label in re.findall(r"\$labels\.([a-z_]+)", ann):
                assert label in kept, f"{r['alert']}: annotation names {label}, which its expression drops"


def test_every_dashboard_panel_queries_registered_metrics_and_their_labels():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [(p["title"], t["expr"]) for p in panels for t in p["targets"]]
    assert len(exprs) >= 10
    assert [p for title, e in exprs for p in check(e, title)] == []


def test_the_checker_catches_a_wrong_name_and_a_wrong_label():
    assert check("rate(murmur_no_such_total[5m])", "x") == ["x: no metric murmur_no_such_total is registered"]
    assert check('sum by (nope) (murmur_dead_letters_total{stage="agent"})', "y") == [
        "y: groups by nope, which none of its metrics carries"]
    assert check('murmur_dead_letters_total{colour="red"}', "z") == ["z: murmur_dead_letters_total has no label colour"]


def test_prometheus_loads_the_rules_and_compose_mounts_them():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]
