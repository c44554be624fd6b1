"""The logic's batch step alone, against the PostgreSQL of DATABASE_URL: CPU per message.

`process_upstream_batch` (persist, acknowledge, route) runs on ROUNDS batches of
one-to-one messages, PAIRS pairs x PER_PAIR messages each, on the in-process bus (so no
broker hop is measured). Printed: wall ms per batch, and CPU per message of this process
and of its PostgreSQL backend (read from /proc: the server must be on this machine).
Compare two commits with farm-bench or by running it on each; peerbench's s1 is too
noisy to show a change of a few percent in one part of the stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gochat_bench \\
        .venv/bin/python -m bench.logic_batch [--rounds 300] [--pairs 20] [--per-pair 2]

The database is migrated on first use; each run adds its own users and conversations.
"""
from __future__ import annotations

import argparse
import os
import time
import uuid


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--per-pair", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("DATABASE_URL must name a PostgreSQL database")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")
    os.environ["BUS_BACKEND"] = "memory"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from messaging.bus import BusRecord
    from messaging.logic import process_upstream_batch
    from messaging.presence import get_presence
    from messaging.services import get_or_create_single_conversation
    from protos.gochat.v1 import envelopes_pb2 as pb

    stamp = uuid.uuid4().hex[:8]
    pairs = []
    for i in range(args.pairs):
        sender = User.objects.create(username=f"bs{stamp}{i}", password="!")
        peer = User.objects.create(username=f"bp{stamp}{i}", password="!")
        conversation, _ = get_or_create_single_conversation(user_id=sender.id, peer_id=peer.id)
        pairs.append((sender.id, conversation.id))
        # Both online, as in peerbench's s1: routed to a gateway, no offline push.
        for user in (sender, peer):
            get_presence().connect(user.id, f"bench-{user.id}", "bench-gw")

    def batch(round_: int) -> list[BusRecord]:
        records = []
        for n in range(args.per_pair):
            for i, (sender_id, conversation_id) in enumerate(pairs):
                upstream = pb.UpstreamMessage(
                    sender_id=sender_id,
                    conversation_id=conversation_id,
                    client_msg_id=f"{stamp}-{round_}-{n}-{i}",
                    content=f"message {round_} {n}",
                    gateway_id="bench-gw",
                    connection_id="bench-conn",
                )
                records.append(BusRecord(topic="upstream", value=upstream.SerializeToString(), key=None,
                                         headers={}, partition=0, offset=len(records)))
        return records

    batches = [batch(r) for r in range(args.rounds + 20)]
    for records in batches[:20]:  # warm-up: caches, prepared statements
        process_upstream_batch(records)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    own_start, pg_start, wall_start = time.process_time(), _cpu_seconds(backend), time.perf_counter()
    for records in batches[20:]:
        process_upstream_batch(records)
    wall = time.perf_counter() - wall_start
    own, pg = time.process_time() - own_start, _cpu_seconds(backend) - pg_start
    messages = args.rounds * args.pairs * args.per_pair
    print(
        f"logic_batch: {args.rounds} batches of {args.pairs * args.per_pair}: {wall / args.rounds * 1000:.2f} ms"
        f" per batch; CPU per message: logic {own / messages * 1000:.3f} ms, PostgreSQL backend"
        f" {pg / messages * 1000:.3f} ms, total {(own + pg) / messages * 1000:.3f} ms"
    )


if __name__ == "__main__":
    main()
