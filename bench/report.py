"""Bench results: one record per scenario and mode, printed as one human line each and
collected into one JSON document. Targets are compared and shown as pass/miss beside the
numbers; a miss is information, never a failure of the run."""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

# (metric, comparison, bound, unit) per scenario: the production-mode goals of the brief.
TARGETS: dict[str, list[tuple[str, str, float, str]]] = {
    "s1_load": [("delivered_per_s", ">=", 1000, "msg/s"), ("p99_ms", "<=", 100, "ms")],
    "s1_unloaded": [("p99_ms", "<=", 10, "ms")],
    "s2_group": [("last_member_ms", "<=", 500, "ms")],
    "s3_idle": [("kib_per_socket", "<=", 40, "KiB")],
}


def check(scenario: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of `scenario` with the measured value and pass/miss."""
    verdicts = []
    for metric, op, bound, unit in TARGETS.get(scenario, []):
        value = metrics.get(metric)
        if value is None:
            ok = False
        else:
            ok = value >= bound if op == ">=" else value <= bound
        verdicts.append({"metric": metric, "target": f"{op} {bound:g} {unit}", "value": value, "pass": ok})
    return verdicts


@dataclass
class Report:
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    results: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, mode: str, scenario: str, metrics: dict[str, Any], *, params: dict[str, Any] | None = None) -> None:
        record = {"mode": mode, "scenario": scenario, "params": params or {}, "metrics": metrics}
        record["targets"] = check(scenario, metrics)
        self.results.append(record)
        print(human_line(record), flush=True)

    def add_error(self, mode: str, scenario: str, error: str) -> None:
        record = {"mode": mode, "scenario": scenario, "error": error}
        self.results.append(record)
        print(f"{mode:10} {scenario:12} FAILED: {error}", flush=True)

    def document(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "machine": machine(),
            "results": self.results,
            **self.extra,
        }


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _verdicts(record: dict[str, Any]) -> str:
    parts = [f"{t['metric']} {t['target']}: {'pass' if t['pass'] else 'MISS'}" for t in record.get("targets", [])]
    return f"  [{'; '.join(parts)}]" if parts else ""


def human_line(record: dict[str, Any]) -> str:
    m = record["metrics"]
    scenario = record["scenario"]
    if scenario in ("s1_load", "s1_unloaded"):
        text = (
            f"{m['delivered']} delivered in {m['seconds']} s = {m['delivered_per_s']} msg/s, "
            f"p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, max {m['max_ms']} ms "
            f"({m['pairs']} pairs x {m['in_flight_per_pair']} in flight; "
            f"undelivered {m['undelivered']}, error frames {m['error_frames']})"
        )
        if m.get("cpu_cores"):
            text += " cores: " + ", ".join(f"{k} {v}" for k, v in m["cpu_cores"].items())
    elif scenario == "s2_group":
        text = (
            f"last of {m['online_members']} online members after {m['last_member_ms']} ms "
            f"(median of {m['rounds']} rounds; worst {m['last_member_max_ms']} ms, "
            f"median member {m['median_member_ms']} ms, missing {m['missing_deliveries']})"
        )
        before = record["params"].get("before") or {}
        if before.get("celery_backlog"):
            text += f" after draining {before['celery_backlog']} queued tasks in {before['drained_in_s']} s"
    elif scenario == "s3_idle":
        steps = ", ".join(f"{s['sockets']} sockets: {s['kib_per_socket']} KiB each" for s in m["steps"])
        text = f"{steps} (gateway RSS {m['baseline_rss_mib']} -> {m['steps'][-1]['rss_mib']} MiB)"
    else:
        text = json.dumps(m)
    return f"{record['mode']:10} {scenario:12} {text}{_verdicts(record)}"
