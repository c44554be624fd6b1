"""Snowflake ids: unique, increasing, within a signed 64-bit integer, per-process workers."""
from __future__ import annotations

import threading

import pytest

from gochat_site import ids


def test_ids_are_unique_and_increasing_across_threads():
    generator = ids.SnowflakeGenerator(worker_id=7)
    results: list[list[int]] = [[] for _ in range(4)]

    def work(slot: int) -> None:
        for _ in range(5000):
            results[slot].append(generator.next_id())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for chunk in results for i in chunk]
    assert len(set(everything)) == len(everything) == 20000
    for chunk in results:
        assert chunk == sorted(chunk)
    assert max(everything) < 2**63


def test_two_workers_never_share_an_id():
    a, b = ids.SnowflakeGenerator(1), ids.SnowflakeGenerator(2)
    assert not {a.next_id() for _ in range(3000)} & {b.next_id() for _ in range(3000)}


def test_worker_id_out_of_range_is_refused():
    with pytest.raises(ValueError):
        ids.SnowflakeGenerator(1024)


def test_configured_worker_id_wins(settings):
    settings.SNOWFLAKE_WORKER_ID = "42"
    assert ids._worker_id() == 42


@pytest.mark.redis
def test_worker_ids_leased_from_redis_differ(settings):
    settings.SNOWFLAKE_WORKER_ID = ""
    first, second = ids._worker_id(), ids._worker_id()
    assert first != second
