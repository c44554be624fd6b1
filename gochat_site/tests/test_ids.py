"""Snowflake ids: unique, increasing, within a signed 64-bit integer; worker ids held as
Redis leases (real Redis) so two live processes never issue under the same one."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from gochat_site import ids

ROOT = Path(__file__).resolve().parents[2]


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


def test_without_redis_the_fixed_id_or_the_pid_is_used():
    assert ids.IdSource(redis_client=None, fixed_id=42).worker_id == 42
    assert ids.IdSource(redis_client=None, fixed_id=None).worker_id == os.getpid() % 1024


# --- leases on real Redis -------------------------------------------------------------------


@pytest.fixture
def redis_client():
    import redis

    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.fail("needs REDIS_URL: mark the test @pytest.mark.redis")
    client = redis.Redis.from_url(url)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client):
    """A key prefix of its own, so leases of this test never meet the suite's."""
    name = f"idtest-{uuid.uuid4().hex[:8]}"
    yield name
    for key in redis_client.scan_iter(f"{name}:*"):
        redis_client.delete(key)


def source(client, prefix, **kwargs) -> ids.IdSource:
    kwargs.setdefault("renew_in_background", False)
    return ids.IdSource(redis_client=client, prefix=prefix, **kwargs)


@pytest.mark.redis
def test_leased_worker_ids_are_distinct_while_held(redis_client, prefix):
    sources = [source(redis_client, prefix, fixed_id=None, pool_start=1000) for _ in range(24)]
    assert sorted(s.worker_id for s in sources) == list(range(1000, 1024))
    with pytest.raises(ids.WorkerIdUnavailable, match="no free snowflake worker id"):
        source(redis_client, prefix, fixed_id=None, pool_start=1000)
    sources[3].close()  # a clean exit hands its id back at once
    assert source(redis_client, prefix, fixed_id=None, pool_start=1000).worker_id == sources[3].worker_id


HOLD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")
import django
django.setup()
from gochat_site import ids
print(ids.ensure_worker_id(), ids.new_id(), flush=True)
sys.stdin.read()  # hold the lease until the test closes stdin
"""


@pytest.mark.redis
def test_two_processes_never_get_the_same_worker_id(prefix):
    env = {**os.environ, "CACHE_KEY_PREFIX": prefix, "SNOWFLAKE_WORKER_ID": "", "SNOWFLAKE_LEASE_POOL_START": "1020",
           "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(4)
    ]
    try:
        lines = [p.stdout.readline().split() for p in procs]
        worker_ids = [int(line[0]) for line in lines]
        assert sorted(worker_ids) == [1020, 1021, 1022, 1023]
        # And each issued its id under its own worker id.
        assert [(int(line[1]) >> 12) & 1023 for line in lines] == worker_ids
        # A fifth process finds the pool full and refuses to start.
        fifth = subprocess.run([sys.executable, "-c", HOLD], cwd=ROOT, env=env, input="", capture_output=True,
                               text=True, timeout=60)
        assert fifth.returncode != 0 and "WorkerIdUnavailable" in fifth.stderr
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=30)


@pytest.mark.redis
def test_the_renewer_keeps_the_lease_alive(redis_client, prefix):
    held = source(redis_client, prefix, fixed_id=None, ttl=0.6, renew_in_background=True)
    key = ids.lease_key(prefix, held.worker_id)
    try:
        time.sleep(1.5)  # more than two TTLs
        assert redis_client.get(key).decode() == held.lease.owner
        assert held.lease.valid()
        assert 0 < redis_client.pttl(key) <= 600
    finally:
        held.close()
    assert redis_client.get(key) is None


@pytest.mark.redis
def test_an_expired_lease_taken_by_another_process_is_replaced_by_a_fresh_one(redis_client, prefix):
    held = source(redis_client, prefix, fixed_id=None, ttl=0.3, pool_start=1022)
    old_id = held.worker_id
    first = held.next_id()
    time.sleep(0.45)  # no renewal ran: Redis expired the key
    assert redis_client.get(ids.lease_key(prefix, old_id)) is None
    assert not held.lease.valid()  # and the process knew it before Redis did
    thief = ids.lease_any(redis_client, prefix=prefix, pool_start=old_id, ttl=30)
    assert thief.worker_id == old_id

    later = held.next_id()

    assert held.worker_id != old_id and held.lease.worker_id == held.worker_id
    assert (later >> 12) & 1023 == held.worker_id and later > first
    assert redis_client.get(ids.lease_key(prefix, old_id)).decode() == thief.owner


@pytest.mark.redis
def test_a_lease_that_expired_untaken_is_renewed_in_place(redis_client, prefix):
    held = source(redis_client, prefix, fixed_id=None, ttl=0.3)
    old_id = held.worker_id
    time.sleep(0.45)
    held.next_id()
    assert held.worker_id == old_id
    assert redis_client.get(ids.lease_key(prefix, old_id)).decode() == held.lease.owner


@pytest.mark.redis
def test_a_process_that_stops_renewing_stops_issuing_before_its_id_can_be_reused(redis_client, prefix):
    held = source(redis_client, prefix, fixed_id=None, ttl=0.6)
    time.sleep(0.45)  # past two thirds of the TTL, key still in Redis
    assert redis_client.pttl(ids.lease_key(prefix, held.worker_id)) > 0
    assert not held.lease.valid()
    held.client = held.lease.client = _Down()
    with pytest.raises(ids.WorkerIdUnavailable, match="Redis does not answer"):
        held.next_id()


class _Down:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("redis down")

        return fail


@pytest.mark.redis
def test_a_fixed_id_colliding_with_a_leased_one_is_refused(redis_client, prefix):
    leased = source(redis_client, prefix, fixed_id=None, pool_start=1023)
    assert leased.worker_id == 1023
    with pytest.raises(ids.WorkerIdConflict, match="held by another live process"):
        source(redis_client, prefix, fixed_id=1023)


@pytest.mark.redis
def test_a_fixed_id_is_claimed_once(redis_client, prefix):
    first = source(redis_client, prefix, fixed_id=5)
    with pytest.raises(ids.WorkerIdConflict):
        source(redis_client, prefix, fixed_id=5)
    # A leased process never takes a fixed id it sees claimed.
    assert source(redis_client, prefix, fixed_id=None, pool_start=5, ttl=5).worker_id != 5
    first.close()
    assert source(redis_client, prefix, fixed_id=5).worker_id == 5


@pytest.mark.redis
def test_a_fixed_id_taken_while_redis_was_away_stops_issuing(redis_client, prefix):
    fixed = source(redis_client, prefix, fixed_id=7, ttl=0.3)
    time.sleep(0.45)
    other = ids.claim_fixed(redis_client, prefix=prefix, worker_id=7, ttl=30)  # the key expired: taken
    assert fixed.renew() is False
    with pytest.raises(ids.WorkerIdConflict, match="stops issuing"):
        fixed.next_id()
    other.release()


@pytest.mark.redis
def test_new_id_uses_the_settings(settings, prefix, redis_client):
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    settings.SNOWFLAKE_WORKER_ID = ""
    settings.SNOWFLAKE_LEASE_POOL_START = 1000
    ids.reset_id_source()
    try:
        value = ids.new_id()
        worker_id = (value >> 12) & 1023
        assert 1000 <= worker_id <= 1023
        assert redis_client.get(ids.lease_key(prefix, worker_id)) is not None
    finally:
        ids.reset_id_source()


@pytest.mark.redis
def test_a_role_with_a_taken_fixed_id_refuses_to_start(redis_client, prefix):
    held = ids.claim_fixed(redis_client, prefix=prefix, worker_id=11, ttl=30)
    env = {**os.environ, "CACHE_KEY_PREFIX": prefix, "SNOWFLAKE_WORKER_ID": "11", "PYTHONPATH": str(ROOT)}
    try:
        run = subprocess.run([sys.executable, "manage.py", "run_logic"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    finally:
        held.release()
    assert run.returncode != 0
    assert "WorkerIdConflict" in run.stderr and "held by another live process" in run.stderr


def test_deployments_keep_fixed_ids_below_the_lease_pool():
    """compose and k8s give fixed ids only below SNOWFLAKE_LEASE_POOL_START, so a leased
    Celery child can never hold the id a gateway or logic pod needs to start."""
    import re

    from django.conf import settings

    from tests.test_deploy_manifests import k8s_containers, k8s_documents, project_services, unwrap_shell

    pool = settings.SNOWFLAKE_LEASE_POOL_START
    compose_ids = [int(svc["environment"]["SNOWFLAKE_WORKER_ID"]) for svc in project_services().values()
                   if "SNOWFLAKE_WORKER_ID" in svc.get("environment", {})]
    assert compose_ids and max(compose_ids) < pool
    hpa_max = {d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicas"]
               for d in k8s_documents() if d["kind"] == "HorizontalPodAutoscaler"}
    tops = []
    for workload, container in k8s_containers():
        _, exports = unwrap_shell(container["command"])
        fixed = {e["name"]: e.get("value") for e in container.get("env", [])}.get("SNOWFLAKE_WORKER_ID")
        if "SNOWFLAKE_WORKER_ID" in exports:
            base = int(re.match(r"\$\(\((\d+) \+", exports["SNOWFLAKE_WORKER_ID"]).group(1))
            tops.append(base + hpa_max.get(workload["metadata"]["name"], workload["spec"]["replicas"]) - 1)
        elif fixed is not None:
            tops.append(int(fixed))
    assert tops and max(tops) < pool
