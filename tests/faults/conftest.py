"""The fault matrix's session: private services started once, the table printed at the end."""
from __future__ import annotations

import json
import os
import time

import pytest

_RESULTS: list = []


@pytest.fixture(scope="session")
def fault_services():
    """PostgreSQL (migrated), Redis, a RabbitMQ vhost as the Celery broker and Tansu, private to this session."""
    from tests.faults.cluster import FaultCluster
    from tests.faults.services import PrivateServices

    services = PrivateServices()
    try:
        services.start()
        FaultCluster(services, services.root / "migrate").manage("migrate", "--noinput")
        yield services
    finally:
        services.stop()


@pytest.fixture
def fault_results():
    return _RESULTS


@pytest.fixture(scope="session")
def fault_logdir():
    """Where every run keeps its process logs, events.jsonl and verdict.json, after the
    session too. Not pytest's tmp_path: pytest keeps only the last three base temp
    directories of a user, so parallel sessions of other suites would delete these
    logs under a running matrix. FAULTS_LOG_DIR chooses the place."""
    import tempfile
    from pathlib import Path

    chosen = os.environ.get("FAULTS_LOG_DIR")
    path = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="gochat-faults-logs-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_table(rows: list[dict]) -> str:
    header = ["fault", "sent", "acked", "lost", "dup shown", "seq anomalies", "order", "never acked",
              "push missed", "by push", "by sync only", "recovery s", "verdict"]  # fmt: skip
    lines = [header]
    for row in rows:
        recovery = "never" if row["recovery"] is None else f"{row['recovery']:.1f}"
        lines.append(
            [row["fault"], row["sent"], row["acked"], row["lost"], row["dup_shown"], row["seq_anomalies"], row["order"],
             row["never_acked"], row["push_missed"], row["pushed"], row["synced_only"], recovery, row["verdict"]]
        )  # fmt: skip
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def pytest_terminal_summary(terminalreporter):  # noqa: ANN001 - pytest hook
    if not _RESULTS:
        return
    rows = []
    for result in _RESULTS:
        row = result.row()
        row["verdict"] = "FAIL" if result.failures() else ("pass" if result.push_guaranteed else "pass*")
        rows.append(row)
    terminalreporter.write_sep("=", f"fault matrix {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    terminalreporter.write_line(format_table(rows))
    if any(not result.push_guaranteed for result in _RESULTS):
        terminalreporter.write_line("pass*: the broker lost its data; push and recovery measured, not promised (docs/reliability.md)")
    for result in _RESULTS:
        if result.burst:
            terminalreporter.write_line(f"{result.fault} burst: {result.burst}")
        for problem in result.failures():
            terminalreporter.write_line(f"{result.fault}: {problem}")
        terminalreporter.write_line(f"{result.fault}: logs in {result.logdir}")
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1, default=str)
