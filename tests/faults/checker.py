"""Jepsen-style checker: the clients' log of one run against the final PostgreSQL history.

What it counts (each with up to a few examples, so a failure can be read):

- lost: a send-ack whose (message_id, seq) is not in the conversation's stored history;
- dup_shown: a new-message on a socket that already showed that message there (as a
  push or as the send-ack of its own send) — the server promises to drop those;
- seq_anomalies: a stored history whose seqs are not exactly 1..n (a gap or one seq
  twice), one (sender, client_msg_id) stored or acknowledged with two different seqs /
  message ids, and an ack or delivery whose seq disagrees with the stored row;
- order: a push on a socket of a message its user had not seen yet, with a lower seq
  than one already pushed on that socket in that conversation;
- never_acked: a planned send with no send-ack at the end of the run;
- push_missed: (message, member) pairs where the member, not the sender, was online
  from the message's commit to `bound` seconds after it, and no push of it reached any
  of the member's sockets within those `bound` seconds (it came by sync or never).
  Online: a socket open and past its catch-up, i.e. it had its first sync-result (a
  message committed while a socket is still connecting is the reconnect sync's job);
- recovery: seconds from the heal to the moment every send was acked and every member
  had every stored message (by push or by sync); None if that never happened.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 5


@dataclass
class Verdict:
    sent: int = 0
    acked: int = 0
    lost: int = 0
    dup_shown: int = 0
    seq_anomalies: int = 0
    order: int = 0
    never_acked: int = 0
    push_missed: int = 0
    pushed: int = 0
    synced_only: int = 0
    recovery: float | None = None
    examples: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def note(self, what: str, example: Any) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples[what]) < EXAMPLES:
            self.examples[what].append(example)

    def row(self) -> dict[str, Any]:
        return {
            "sent": self.sent, "acked": self.acked, "lost": self.lost, "dup_shown": self.dup_shown,
            "seq_anomalies": self.seq_anomalies, "order": self.order, "never_acked": self.never_acked,
            "push_missed": self.push_missed, "pushed": self.pushed, "synced_only": self.synced_only,
            "recovery": None if self.recovery is None else round(self.recovery, 1),
        }  # fmt: skip


def check(
    events: list[dict[str, Any]],
    history: dict[str, list[dict[str, Any]]],
    members: dict[str, list[str]],
    planned: list[tuple[str, str, str]],
    *,
    heal: float,
    bound: float,
    end: float,
) -> Verdict:
    """`members`: conversation id -> member user ids; `planned`: (user id, conversation id, client_msg_id)."""
    verdict = Verdict(sent=len(planned))
    stored = {(cid, row["id"]): row for cid, rows in history.items() for row in rows}
    by_seq = {(cid, row["seq"]): row for cid, rows in history.items() for row in rows}

    # Stored history: seqs exactly 1..n, one row per (sender, client_msg_id).
    for cid, rows in history.items():
        seqs = [row["seq"] for row in rows]
        if seqs != list(range(1, len(seqs) + 1)):
            verdict.note("seq_anomalies", {"conversation": cid, "seqs": seqs[:50]})
        keys = defaultdict(list)
        for row in rows:
            keys[(row["sender_id"], row["client_msg_id"])].append(row["seq"])
        for key, key_seqs in keys.items():
            if len(key_seqs) > 1:
                verdict.note("seq_anomalies", {"conversation": cid, "client_msg_id": key[1], "stored_seqs": key_seqs})

    # Acks: each one stored with the same id and seq; one client_msg_id, one message.
    acks = [e for e in events if e["kind"] == "ack"]
    first_ack: dict[str, float] = {}
    ack_targets = defaultdict(set)
    for ack in acks:
        cid, mid, seq = ack["conversation_id"], ack["message_id"], ack["seq"]
        first_ack.setdefault(ack["client_msg_id"], ack["t"])
        ack_targets[(ack["user"], cid, ack["client_msg_id"])].add((mid, seq))
        row = stored.get((cid, mid))
        if row is None:
            verdict.note("lost", {"ack": ack})
        elif row["seq"] != seq:
            verdict.note("seq_anomalies", {"ack": ack, "stored_seq": row["seq"]})
    for key, targets in ack_targets.items():
        if len(targets) > 1:
            verdict.note("seq_anomalies", {"client_msg_id": key[2], "acked_as": sorted(targets)})
    acked_keys = {(user, cid, cmid) for (user, cid, cmid) in ack_targets}
    for user, cid, cmid in planned:
        if (user, cid, cmid) in acked_keys:
            verdict.acked += 1
        else:
            verdict.note("never_acked", {"user": user, "conversation": cid, "client_msg_id": cmid})

    # Deliveries: per socket, no message shown twice, pushes in seq order.
    shown_on_socket: dict[str, set[str]] = defaultdict(set)
    seen_by_user: dict[str, set[str]] = defaultdict(set)
    max_pushed: dict[tuple[str, str], int] = defaultdict(int)
    first_seen: dict[tuple[str, str], float] = {}  # (user, message id) -> first time, any route
    first_push: dict[tuple[str, str], float] = {}
    for event in events:
        kind = event["kind"]
        if kind not in ("ack", "push", "sync"):
            continue
        user, socket, cid, mid, seq = event["user"], event["socket"], event["conversation_id"], event["message_id"], event["seq"]
        row = by_seq.get((cid, seq))
        if kind != "ack" and (row is None or row["id"] != mid):
            verdict.note("seq_anomalies", {"delivered": event, "stored": row})
        if kind == "push":
            if mid in shown_on_socket[socket]:
                verdict.note("dup_shown", {"socket": socket, "message_id": mid, "seq": seq, "conversation": cid})
            elif mid not in seen_by_user[user] and seq < max_pushed[(socket, cid)]:
                verdict.note("order", {"socket": socket, "seq": seq, "after": max_pushed[(socket, cid)]})
            max_pushed[(socket, cid)] = max(max_pushed[(socket, cid)], seq)
            first_push.setdefault((user, mid), event["t"])
        if kind in ("push", "ack"):
            shown_on_socket[socket].add(mid)
        seen_by_user[user].add(mid)
        first_seen.setdefault((user, mid), event["t"])

    # Who was online: per user, each socket from its first sync-result to its close.
    intervals: dict[str, list[list[float]]] = defaultdict(list)
    open_at: dict[str, list[float]] = {}
    for event in events:
        if event["kind"] == "sync_result" and event["socket"] not in open_at:
            interval = [event["t"], end]
            open_at[event["socket"]] = interval
            intervals[event["user"]].append(interval)
        elif event["kind"] == "close":
            if event["socket"] in open_at:
                open_at[event["socket"]][1] = event["t"]
            else:
                open_at[event["socket"]] = [event["t"], event["t"]]  # closed before it caught up

    caught_up = max(first_ack.values(), default=heal)
    complete = verdict.never_acked == 0
    for cid, rows in history.items():
        for row in rows:
            for user in members.get(cid, []):
                if user == row["sender_id"]:
                    continue
                seen = first_seen.get((user, row["id"]))
                if seen is None:
                    complete = False
                else:
                    caught_up = max(caught_up, seen)
                pushed = first_push.get((user, row["id"]))
                if pushed is not None:
                    verdict.pushed += 1
                elif seen is not None:
                    verdict.synced_only += 1
                committed = row["created"]
                online = any(start <= committed and stop >= min(committed + bound, end) for start, stop in intervals[user])
                if online and (pushed is None or pushed > committed + bound):
                    verdict.note(
                        "push_missed",
                        {"conversation": cid, "seq": row["seq"], "user": user, "pushed_after": None if pushed is None else round(pushed - committed, 1)},
                    )
    verdict.recovery = max(0.0, caught_up - heal) if complete else None
    return verdict
