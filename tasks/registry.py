"""The one map from task_type to Celery task, and the policy every processor shares.

A processor is a module in tasks/processors/ whose function carries @processor(name);
that decorator is its only registration line. The name is both the Celery task name and
the `task_type` of the Kafka task topic. Defaults: retried with exponential backoff and
jitter on any error but a permanent one (bad input, missing row), acknowledged late and
re-queued when its worker dies, so a crash never loses the task.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.signals import task_failure
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist

from gochat_site.celery import app
from gochat_site.errors import GoChatError

logger = logging.getLogger(__name__)

# Retrying cannot fix these: the input is wrong or the row is gone.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (GoChatError, ObjectDoesNotExist, TypeError, ValueError)

DEFAULT_OPTIONS: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "dont_autoretry_for": PERMANENT_ERRORS,
    "retry_backoff": 2,  # seconds before the first retry, doubled each time
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


class UnknownTaskType(LookupError):
    """No processor is registered under this task_type."""


@task_failure.connect(dispatch_uid="tasks.record_failed_task")
def _record_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, einfo=None, **_):  # noqa: ANN001
    """Every task that ends in failure leaves a FailedTask row (a signal, not a base
    class, so tasks declared with plain @shared_task are covered too).

    Celery sends task_failure once per task, after the last retry (or at once for a
    permanent error), never for the attempts that were retried.
    """
    from tasks.services import record_failed_task

    request = getattr(sender, "request", None)
    attempts = (getattr(request, "retries", 0) or 0) + 1
    record_failed_task(
        name=getattr(sender, "name", "") or "",
        task_id=task_id or "",
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        error=f"{type(exception).__name__}: {exception}",
        traceback=str(einfo) if einfo is not None else "",
        attempts=attempts,
    )


_PROCESSORS: dict[str, Task] = {}


def processor(task_type: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register the decorated function as the Celery task named `task_type`.

    `options` override DEFAULT_OPTIONS (max_retries, soft_time_limit, acks_late, ...).
    """

    def register(function: Callable[..., Any]) -> Task:
        if task_type in _PROCESSORS:
            raise ImproperlyConfigured(f"task_type {task_type!r} is registered twice")
        task = app.task(name=task_type, **{**DEFAULT_OPTIONS, **options})(function)
        _PROCESSORS[task_type] = task
        return task

    return register


def _processors() -> dict[str, Task]:
    load_processors()
    found = dict(_PROCESSORS)
    # A module of tasks/processors/ that declares its task with plain @shared_task is a
    # processor all the same.
    for name, task in app.tasks.items():
        if getattr(task, "__module__", "").startswith("tasks.processors."):
            found.setdefault(name, task)
    return found


def get_processor(task_type: str) -> Task:
    """The task registered under `task_type`, or UnknownTaskType."""
    try:
        return _processors()[task_type]
    except KeyError:
        raise UnknownTaskType(task_type) from None


def task_types() -> list[str]:
    return sorted(_processors())


def load_processors() -> None:
    """Import every module of tasks/processors/ (idempotent; run by TasksConfig.ready)."""
    import tasks.processors as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
