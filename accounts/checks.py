"""System checks of accounts: the demo superuser never reaches a real deployment.

seed_demo creates DEMO_ADMIN_USERNAME with a password printed on screen and written in
the README. That is fine where only the person running `make run` can log in (DEBUG, or
the embedded default); anywhere else (settings.ALLOW_DEMO_ADMIN off) an active account of
that name is an open admin, so the check is an error. It reads the database, so Django
runs it with the database checks: at every `migrate` (which every deployment runs before
its roles start: docker/, docker/k8s/) and at `manage.py check --database default`.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

DEMO_ADMIN_USERNAME = "demo-admin"


@checks.register(checks.Tags.database, checks.Tags.security)
def demo_admin_not_in_production(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not databases or settings.ALLOW_DEMO_ADMIN:
        return []
    from django.db import connections

    from accounts.models import User

    errors: list[checks.CheckMessage] = []
    for alias in databases:
        if User._meta.db_table not in connections[alias].introspection.table_names():
            continue  # the first migrate: no users table, so no demo superuser either
        if User.objects.using(alias).filter(username=DEMO_ADMIN_USERNAME, is_active=True).exists():
            errors.append(
                checks.Error(
                    f"the demo superuser {DEMO_ADMIN_USERNAME!r} (made by seed_demo, its password is public) "
                    f"exists in database {alias!r}",
                    hint=(
                        f"Delete or deactivate it (python manage.py shell -c \"from accounts.models import User; "
                        f"User.objects.filter(username='{DEMO_ADMIN_USERNAME}').delete()\") and create a real "
                        "admin with createsuperuser; or set ALLOW_DEMO_ADMIN=1 on a private demo host."
                    ),
                    id="accounts.E001",
                )
            )
    return errors
