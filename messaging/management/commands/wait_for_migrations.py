"""`manage.py wait_for_migrations`: block until the database is reachable and every
migration of this code is applied, then exit 0; exit 1 after --timeout.

The roles' Kubernetes initContainer: a pod of a new release starts only once the
release's migrate Job is done (docs/deploy.md). Like `migrate --check` it never applies
anything; unlike it, it waits and survives a database that is not up yet.
"""
from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """`app.name` of every migration of this code not applied to the database."""
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]


class Command(BaseCommand):
    help = "Wait until every migration is applied (never applies one); exit 1 after --timeout."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most (default 600)")
        parser.add_argument("--interval", type=float, default=3.0, help="seconds between checks (default 3)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        last = ""
        while True:
            try:
                pending = pending_migrations(options["database"])
                why = f"{len(pending)} migrations not applied yet (first: {pending[0]})" if pending else ""
            except DatabaseError as exc:
                pending, why = ["?"], f"database not reachable: {exc.__class__.__name__}"
            finally:
                connections[options["database"]].close()
            if not pending:
                self.stdout.write("wait_for_migrations: every migration is applied")
                return
            if why != last:
                self.stderr.write(f"wait_for_migrations: {why}")
                last = why
            if time.monotonic() >= deadline:
                raise CommandError(f"wait_for_migrations: gave up after {options['timeout']:.0f}s: {why}")
            time.sleep(options["interval"])
