"""The one registry of GoChat's long-running bus consumers, and the loop that runs them.

Each consumer is named once with its topics, consumer group, partition count and
processing function (a dotted path, imported when the consumer starts). The loop is
poll -> process -> commit: offsets are committed by hand, only after the processing
function returned, so a crash re-delivers the batch (at-least-once).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

from gochat_site import metrics
from messaging.bus import BusRecord, Consumer, downstream_topic, ensure_topics, get_consumer

logger = logging.getLogger(__name__)

# A consume() call returns after this long without records, so stop requests are seen.
POLL_TIMEOUT_SECONDS = 0.5
# Pause before re-creating a consumer whose batch failed (resumes from the last commit).
RETRY_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    topics: Callable[[], list[str]]
    group: Callable[[], str]
    partitions: Callable[[], int]
    # fn(records) -> None; sync functions are run in a thread by the async loop.
    process: str

    def process_function(self) -> Callable[[Sequence[BusRecord]], object]:
        return import_string(self.process)


CONSUMERS: dict[str, ConsumerSpec] = {
    spec.name: spec
    for spec in (
        ConsumerSpec(
            name="logic",
            topics=lambda: [settings.KAFKA_UPSTREAM_TOPIC],
            group=lambda: settings.KAFKA_LOGIC_GROUP,
            partitions=lambda: settings.KAFKA_UPSTREAM_PARTITIONS,
            process="messaging.logic.process_upstream_batch",
        ),
        # Every gateway process runs one, on its own topic and in its own group.
        ConsumerSpec(
            name="gateway-downstream",
            topics=lambda: [downstream_topic(settings.GATEWAY_ID)],
            group=lambda: f"im-gateway-{settings.GATEWAY_ID}",
            # One partition keeps a gateway's frames in produce order (ack before
            # new-message), which the per-socket de-duplication relies on.
            partitions=lambda: 1,
            process="messaging.gateway.downstream.deliver_batch",
        ),
    )
}


class _LagSampler:
    """Publishes the consumer's lag at most every KAFKA_LAG_SAMPLE_SECONDS (it costs a
    broker round trip), right after a commit or an empty poll."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self.spec = spec
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def sample(self, consumer: Consumer) -> None:
        self.next_at = time.monotonic() + settings.KAFKA_LAG_SAMPLE_SECONDS
        try:
            lag = consumer.lag()
        except Exception:  # noqa: BLE001 - a metric must not stop the loop
            logger.warning("consumer_lag_failed", extra={"consumer": self.spec.name}, exc_info=True)
            return
        metrics.set_consumer_lag(consumer=self.spec.name, group=self.spec.group(), lag=lag)


def _open(spec: ConsumerSpec) -> Consumer:
    ensure_topics(spec.topics(), spec.partitions())
    consumer = get_consumer(spec.topics(), spec.group())
    logger.info("consumer_started", extra={"consumer": spec.name, "topics": spec.topics(), "group": spec.group()})
    return consumer


def run_consumer(spec: ConsumerSpec, *, stop: threading.Event, batch_size: int | None = None) -> None:
    """Run `spec` in this thread until `stop` is set (the run_logic command)."""
    process = spec.process_function()
    size = batch_size or settings.KAFKA_CONSUME_BATCH
    metrics.start_metrics_server()
    lag = _LagSampler(spec)
    consumer = _open(spec)
    try:
        while not stop.is_set():
            if lag.due():
                lag.sample(consumer)
            records = consumer.consume(size, POLL_TIMEOUT_SECONDS)
            if not records:
                continue
            # As Django does around a request: drop connections past CONN_MAX_AGE or broken.
            close_old_connections()
            try:
                process(records)
            except Exception:
                logger.exception("consumer_batch_failed", extra={"consumer": spec.name, "records": len(records)})
                # Reopen: the new consumer resumes from the last committed offset.
                consumer.close()
                stop.wait(RETRY_PAUSE_SECONDS)
                consumer = _open(spec)
                continue
            consumer.commit()
    finally:
        consumer.close()
        connections.close_all()
        logger.info("consumer_stopped", extra={"consumer": spec.name})


async def arun_consumer(
    spec: ConsumerSpec,
    *,
    stop: asyncio.Event,
    process: Callable[[Sequence[BusRecord]], Awaitable[object]] | None = None,
    batch_size: int | None = None,
) -> None:
    """Run `spec` as a task of the running event loop (gateway downstream, embedded logic).

    Blocking bus calls go through asyncio.to_thread; a sync processing function runs
    through database_sync_to_async so its database connections are managed.
    """
    if process is None:
        function = spec.process_function()
        if inspect.iscoroutinefunction(function):
            process = function  # type: ignore[assignment]
        else:
            from channels.db import database_sync_to_async

            process = database_sync_to_async(function)
    size = batch_size or settings.KAFKA_CONSUME_BATCH
    lag = _LagSampler(spec)
    consumer = await asyncio.to_thread(_open, spec)
    try:
        while not stop.is_set():
            if lag.due():
                await asyncio.to_thread(lag.sample, consumer)
            records = await asyncio.to_thread(consumer.consume, size, POLL_TIMEOUT_SECONDS)
            if not records:
                continue
            try:
                await process(records)  # type: ignore[misc]
            except Exception:
                logger.exception("consumer_batch_failed", extra={"consumer": spec.name, "records": len(records)})
                await asyncio.to_thread(consumer.close)
                try:
                    await asyncio.wait_for(stop.wait(), RETRY_PAUSE_SECONDS)
                except asyncio.TimeoutError:
                    pass
                consumer = await asyncio.to_thread(_open, spec)
                continue
            await asyncio.to_thread(consumer.commit)
    finally:
        await asyncio.to_thread(consumer.close)
        logger.info("consumer_stopped", extra={"consumer": spec.name})

