"""The task bridge: turn records of the task topic into Celery tasks.

Non-Python services submit work by producing a protobuf TaskMessage to
KAFKA_TASK_TOPIC with a `task_type` header. process_task_records() looks each type up in
the processor registry and publishes the Celery task; a record it cannot dispatch
(unknown type, malformed body, arguments the task does not take) goes to
KAFKA_TASK_DLQ_TOPIC with a `dlq_reason` header instead of stopping the loop. It
knows bus records, not Kafka: the loop that polls and commits is the shared one of
messaging.consumers_registry, started by `manage.py run_task_bridge`.
"""
from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from google.protobuf.message import DecodeError

from gochat_site import metrics

from messaging.bus import BusRecord, get_producer
from messaging.consumers_registry import ConsumerSpec
from protos.gochat.v1 import envelopes_pb2 as pb
from tasks.registry import UnknownTaskType, get_processor

logger = logging.getLogger(__name__)

UNKNOWN_TASK_TYPE = "unknown_task_type"
MALFORMED_BODY = "malformed_body"
BAD_KWARGS = "bad_kwargs"


class Undispatchable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_task_record(record: BusRecord) -> tuple[str, dict[str, Any], str]:
    """(task_type, kwargs, trace_id) of a record, or Undispatchable(MALFORMED_BODY)."""
    task = pb.TaskMessage()
    try:
        task.ParseFromString(record.value)
    except DecodeError as exc:
        raise Undispatchable(MALFORMED_BODY, f"not a TaskMessage: {exc}") from None
    header_type = record.headers.get("task_type", "")
    if header_type and task.task_type and header_type != task.task_type:
        raise Undispatchable(MALFORMED_BODY, f"task_type header {header_type!r} != body {task.task_type!r}")
    task_type = header_type or task.task_type
    if not task_type:
        raise Undispatchable(MALFORMED_BODY, "no task_type header or field")
    try:
        kwargs = json.loads(task.kwargs_json) if task.kwargs_json else {}
    except ValueError as exc:
        raise Undispatchable(MALFORMED_BODY, f"kwargs_json is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise Undispatchable(MALFORMED_BODY, "kwargs_json is not a JSON object")
    return task_type, kwargs, task.trace_id or record.headers.get("trace_id", "")


def _check_kwargs(task: Any, kwargs: dict[str, Any]) -> None:
    try:
        inspect.signature(task.run).bind(**kwargs)
    except TypeError as exc:
        raise Undispatchable(BAD_KWARGS, str(exc)) from None


def _dead_letter(record: BusRecord, error: Undispatchable) -> None:
    headers = dict(record.headers)
    headers.update(
        {
            "dlq_reason": error.reason,
            "dlq_detail": error.detail[:500],
            "dlq_source": f"{record.topic}/{record.partition}/{record.offset}",
        }
    )
    get_producer().produce(settings.KAFKA_TASK_DLQ_TOPIC, record.value, key=record.key, headers=headers)
    metrics.count_dead_letter(topic=settings.KAFKA_TASK_DLQ_TOPIC, reason=error.reason)
    logger.warning(
        "task_dead_lettered",
        extra={
            "reason": error.reason,
            "detail": error.detail[:500],
            "task_type": record.headers.get("task_type", ""),
            "source": headers["dlq_source"],
        },
    )


def dispatch_record(record: BusRecord) -> str:
    """Publish the Celery task of one record; return its task id.

    Raises Undispatchable for a record that must go to the dead-letter topic; a broker
    error propagates, so the batch is not committed and is read again.
    """
    task_type, kwargs, trace_id = parse_task_record(record)
    try:
        task = get_processor(task_type)
    except UnknownTaskType:
        raise Undispatchable(UNKNOWN_TASK_TYPE, f"no processor named {task_type!r}") from None
    _check_kwargs(task, kwargs)
    result = task.apply_async(kwargs=kwargs, headers={"trace_id": trace_id} if trace_id else None)
    logger.info("task_bridged", extra={"task_type": task_type, "task_id": result.id, "trace_id": trace_id})
    return result.id


def process_task_records(records: Sequence[BusRecord]) -> None:
    """Dispatch a batch; returns only once every dead letter is acknowledged, so the
    caller's commit never skips a record that went nowhere."""
    dead = 0
    for record in records:
        try:
            dispatch_record(record)
        except Undispatchable as error:
            _dead_letter(record, error)
            dead += 1
    if dead:
        get_producer().flush()


# The bridge's entry in the consumer registry pattern. It lives on the tasks side:
# listing it in messaging.consumers_registry would make messaging import tasks.
TASK_BRIDGE = ConsumerSpec(
    name="task-bridge",
    topics=lambda: [settings.KAFKA_TASK_TOPIC],
    group=lambda: settings.KAFKA_TASK_BRIDGE_GROUP,
    partitions=lambda: settings.KAFKA_TASK_PARTITIONS,
    process="tasks.bridge.process_task_records",
)
