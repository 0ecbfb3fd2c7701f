"""Grafana and Prometheus provisioning for docker-compose: consistent with each other and the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tickpipe.json"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [target for panel in dashboard["panels"] for target in panel["targets"]]


def test_panels_cover_what_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for wanted in ("candles", "volume", "events/s", "lag", "dead-letter"):
        assert wanted in titles, f"no panel for {wanted}: {titles}"
    kinds = {panel["type"] for panel in dashboard["panels"]}
    assert "candlestick" in kinds


def test_every_query_uses_a_provisioned_data_source(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/tickpipe.yaml").read_text())
    uids = {source["uid"]: source["type"] for source in provisioned["datasources"]}
    used = [target["datasource"] for target in _targets(dashboard)]
    used += [variable["datasource"] for variable in dashboard["templating"]["list"]]
    for source in used:
        assert uids.get(source["uid"]) == source["type"], f"unprovisioned data source {source}"
    clickhouse = next(s for s in provisioned["datasources"] if s["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD", "no password in the repo"


def test_dashboards_folder_is_the_one_compose_mounts() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/tickpipe.yaml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{providers['providers'][0]['options']['path']}:ro" in mounts


def test_exact_metric_names_exist_in_the_services() -> None:
    """Names the dashboard spells out must be real: a typo is an empty panel nobody notices."""
    from tickpipe_producer.metrics import ProducerMetrics

    # Families, not samples: a labelled counter has no sample until its first increment.
    exposed = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in ProducerMetrics().registry.collect()
    }
    expressions = " ".join(t.get("expr", "") for t in _targets(json.loads(DASHBOARD.read_text())))
    named = set(re.findall(r"\b(tickpipe_producer_[a-z_]+)\b", expressions))
    assert named, "the dashboard should chart the producer"
    assert named <= exposed, f"not exposed by the producer: {named - exposed}"


def test_prometheus_scrapes_every_service_where_compose_runs_it() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target: group["labels"]["service"]
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {"producer:9101": "producer", "processor:9102": "processor", "sink:9103": "sink"}
