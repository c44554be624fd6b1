"""The operator's kit (docker/grafana/, docker/prometheus/) against the code: every
metric the Grafana dashboard and the alert rules query is one that a role's exporter
really serves. The exporters are scraped as Prometheus would: the gateway's /metrics
view, the consumer roles' health listener (run_logic, run_task_bridge), and the
METRICS_PORT server the Celery worker's main process starts (with its broker queue
collector) and run_grpc starts."""
from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
# Series Prometheus makes itself for every target.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][\w:]*", text):
        name = match.group(0)
        following = text[match.end():].lstrip()
        if following.startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_exprs() -> list[str]:
    exprs = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    for path in DASHBOARDS:
        walk(json.loads(path.read_text())["panels"])
    return exprs


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def exported_series(text: str) -> set[str]:
    """Every series name an exposition can carry, family by family (a labelled metric
    with no child yet still has its HELP/TYPE lines)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "unknown": ("",),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scraped(db, settings, monkeypatch) -> dict[str, set[str]]:
    """role -> series names its exporter serves, scraped over the real endpoints."""
    from gochat_site import metrics
    from gochat_site.health import serve_consumer_health
    from messaging.consumers_registry import ConsumerHealth

    exporters: dict[str, set[str]] = {}
    response = Client().get("/metrics")
    assert response.status_code == 200
    exporters["gateway"] = exported_series(response.content.decode())
    for role in ("logic", "task-bridge"):
        server = serve_consumer_health(ConsumerHealth(role), port=0)
        try:
            exporters[role] = exported_series(_get(f"http://127.0.0.1:{server.server_address[1]}/metrics"))
        finally:
            server.shutdown()
            server.server_close()
    # The worker's main process: what its worker_ready signal handler starts.
    monkeypatch.setattr(metrics, "_server_started", False)
    monkeypatch.setattr(metrics, "_extra_collectors", [])
    settings.METRICS_PORT = _free_port()
    registered = []
    monkeypatch.setattr(metrics, "register_extra_collector", lambda c: (registered.append(c), metrics.REGISTRY.register(c)))
    metrics._serve()
    try:
        exporters["worker"] = exported_series(_get(f"http://127.0.0.1:{settings.METRICS_PORT}/metrics"))
    finally:
        for collector in registered:
            metrics.REGISTRY.unregister(collector)
    return exporters


def test_promql_name_extraction():
    assert promql_metric_names('sum by (le) (rate(a_b_bucket{x="y", z=~"q|r"}[5m])) / on(job) up') == {"a_b_bucket", "up"}
    assert promql_metric_names("time() - max by (gateway) (gochat_hb)") == {"gochat_hb"}
    assert promql_metric_names("delta(sum by (group) (lag)[10m:1m]) > 0 and x_total offset 5m") == {"lag", "x_total"}
    assert promql_metric_names('histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))') == {"h_bucket"}


def test_every_queried_metric_is_exported(scraped):
    exported = set().union(*scraped.values()) | PROMETHEUS_SYNTHETIC
    queried = {name for expr in dashboard_exprs() for name in promql_metric_names(expr)}
    queried |= {name for rule in alert_rules() for name in promql_metric_names(rule["expr"])}
    assert len(queried) >= 15
    assert not queried - exported, f"queried but no exporter serves: {sorted(queried - exported)}"
    # Not only the gateway's page: the worker serves the broker's queue lengths.
    assert "gochat_celery_queue_length" in scraped["worker"]
    assert "gochat_celery_queue_length" not in scraped["gateway"]


def test_exported_series_sees_what_a_page_does_not_hold():
    text = "# HELP x_total a\n# TYPE x_total counter\nx_total 1.0\n# HELP h a\n# TYPE h histogram\n"
    assert {"x_total", "h_bucket", "h_count"} <= exported_series(text)
    assert "gochat_nonexistent" not in exported_series(text)


def test_dashboard_covers_the_operators_questions():
    queried = {name for expr in dashboard_exprs() for name in promql_metric_names(expr)}
    for name in (
        "gochat_messages_accepted_total",
        "gochat_messages_persisted_total",
        "gochat_messages_delivered_total",
        "gochat_message_delivery_latency_seconds_bucket",
        "gochat_kafka_consumer_lag",
        "gochat_celery_queue_length",
        "gochat_celery_tasks_total",
        "gochat_push_outcomes_total",
        "gochat_ws_connections",
        "gochat_db_errors_total",
        "gochat_redis_errors_total",
    ):
        assert name in queried, name
    heatmaps = [
        p for path in DASHBOARDS for p in json.loads(path.read_text())["panels"] if p["type"] == "heatmap"
    ]
    assert any("gochat_message_delivery_latency_seconds_bucket" in t["expr"] for p in heatmaps for t in p["targets"])


def test_dashboard_uses_the_provisioned_datasource():
    provisioning = ROOT / "docker" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    uids = {d["uid"] for d in datasources}
    providers = yaml.safe_load((provisioning / "dashboards" / "gochat.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in uids, panel["title"]
                assert panel["targets"], panel["title"]


def test_alert_rules_cover_lag_dead_letters_errors_and_gateway_heartbeat():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    names = {alert: promql_metric_names(rule["expr"]) for alert, rule in rules.items()}
    assert "gochat_kafka_consumer_lag" in names["GoChatConsumerLagGrowing"]
    assert "gochat_dead_letters_total" in names["GoChatDeadLetters"]
    assert "gochat_gateway_heartbeat_timestamp_seconds" in names["GoChatGatewayNotHeartbeating"]
    assert {"GoChatCeleryTaskFailureRate", "GoChatDatabaseErrors", "GoChatRedisErrors"} <= set(rules)
    for alert, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, alert
        assert rule["annotations"]["summary"], alert
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), alert
