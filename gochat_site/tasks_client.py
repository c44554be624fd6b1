"""Hand work to a Celery task by its name, so lower apps never import `tasks`.

messaging triggers fan-out, push and indexing without importing the tasks app (the
import direction is accounts <- groups <- messaging <- tasks). Inside a transaction the
task is sent only after commit, so a worker never looks for a row that is not there yet.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def _send(name: str, kwargs: dict[str, Any]) -> None:
    from django.conf import settings

    from gochat_site.celery import app

    task = app.tasks.get(name)
    if task is not None:
        # Registered here: apply_async honours task_always_eager, which is what makes the
        # embedded default run fan-out, push and indexing in-process.
        task.apply_async(kwargs=kwargs)
    elif settings.CELERY_TASK_ALWAYS_EAGER:
        # Eager mode has no worker and no broker: a task this process does not know
        # cannot run anywhere. Say so rather than send it into the void.
        logger.warning("task_not_registered", extra={"task": name, "task_kwargs": kwargs})
        return
    else:
        # Not imported in this process (e.g. a slim gateway): the broker routes by name.
        app.send_task(name, kwargs=kwargs)
    logger.info("task_enqueued", extra={"task": name, "task_kwargs": kwargs})


def enqueue_task(name: str, **kwargs: Any) -> None:
    """Run the Celery task `name` with keyword arguments (ids and plain values only).

    Inside an atomic block the send waits for the commit; outside it happens now.
    """
    # on_commit runs the callback at once when no transaction is open.
    transaction.on_commit(lambda: _send(name, kwargs))
