"""The embedded default under a chosen ASGI server, for comparing gateway servers.

    .venv/bin/python -m bench.gateway_server --server uvicorn --port 8000

Migrates a fresh SQLite database in a temporary directory and serves
gochat_site.asgi:application with daphne, uvicorn or hypercorn until SIGTERM. The
embedded default keeps everything but the server the same (in-process bus, presence
and logic loop), so the difference between runs is the server's own cost per frame.
`docs/benchmarks.md` runs it under ../shared/peerbench's load generator (its gochat
driver starts whatever `gochat_cmd` says). Rate limits are lifted and an MD5 hasher
used, as in the peerbench harness: neither is what is measured.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SERVERS = ("daphne", "uvicorn", "hypercorn")
RELAX = {
    "WS_RATE_LIMIT": "1000000",
    "THROTTLE_LOGIN": "1000000/min",
    "THROTTLE_REGISTER": "1000000/min",
    "THROTTLE_SEND": "1000000/min",
}


def server_command(server: str, port: int) -> list[str]:
    app = "gochat_site.asgi:application"
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--ws", "websockets", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    raise SystemExit(f"unknown server {server!r}: one of {SERVERS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=SERVERS, default="daphne")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix=f"gochat-{args.server}-"))
    (data / "bench_settings.py").write_text(
        "from gochat_site.settings import *  # noqa: F403\n"
        "PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']\n"
    )
    service_variables = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL")
    env = {k: v for k, v in os.environ.items() if k not in service_variables}
    for name, value in RELAX.items():
        env.setdefault(name, value)
    env.update(
        DJANGO_SETTINGS_MODULE="bench_settings",
        PYTHONPATH=f"{data}:{Path.cwd()}",
        SQLITE_PATH=str(data / "db.sqlite3"),
        GATEWAY_ID=f"gw-{args.server}",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True)
    os.execve(sys.executable, server_command(args.server, args.port), env)


if __name__ == "__main__":
    main()
