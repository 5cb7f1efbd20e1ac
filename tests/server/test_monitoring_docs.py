"""The shipped Grafana dashboard and alert rules use only metrics ``/metrics`` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


async def exported_names(http: httpx.AsyncClient) -> set[str]:
    names: set[str] = set()
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            name = name.removesuffix("_total")  # an empty counter's TYPE line carries it
            names.update(name + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bklingwatch_[a-z_]+\b", text))


async def test_the_grafana_dashboard_queries_exported_metrics(http: httpx.AsyncClient) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = referenced("\n".join(exprs))
    assert len(used) >= 10
    assert used <= await exported_names(http)


async def test_the_alert_rules_use_exported_metrics(http: httpx.AsyncClient) -> None:
    rules = (DOCS / "alert-rules.yml").read_text()
    used = referenced(rules)
    assert {
        "klingwatch_stuck_tasks",
        "klingwatch_submissions_paused",
        "klingwatch_pack_exhausted",
    } <= used
    assert used <= await exported_names(http)
