"""The bus interface: produce with key and headers; consume a batch, process, commit.

Two implementations share it: bus/kafka.py (confluent-kafka) and bus/memory.py (one
process, the embedded default). Code above this interface is the same in both modes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BusRecord:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = 0


class BusDeliveryError(RuntimeError):
    """The broker did not acknowledge some produced records (raised by flush())."""


class Producer(Protocol):
    def produce(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Queue one record; delivery errors surface from flush()."""

    def flush(self, timeout: float = 10.0) -> None:
        """Block until every queued record is acknowledged by the broker (raise on failure)."""

    def check(self, timeout: float = 2.0) -> None:
        """Raise if the broker cannot be reached within timeout seconds (readiness)."""


class Consumer(Protocol):
    def consume(self, max_records: int, timeout: float) -> list[BusRecord]:
        """Up to max_records records, waiting at most timeout seconds for the first."""

    def commit(self, *, wait: bool = True) -> None:
        """Commit the offsets of everything consume() returned so far; `wait=False`
        sends the commit and returns at once (its result is not awaited)."""

    def rewind(self, records: list[BusRecord]) -> None:
        """Consume these records again: seek each of their partitions back to its first
        offset among them (a failed batch; raises if a partition is no longer owned)."""

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this group member owns now (tests, diagnostics)."""

    def lag(self) -> dict[tuple[str, int], int]:
        """Per owned partition: records after the group's committed offset (metrics)."""

    def group_progress(self) -> dict[tuple[str, int], tuple[int, int]]:
        """Per partition of the subscribed topics, owned by this member or not:
        (the group's committed offset, the end of the log). The stall detector of the
        consumer loop watches it: a partition with records after its committed offset
        whose committed offset does not move is stuck, whoever owns it."""

    def close(self) -> None: ...
