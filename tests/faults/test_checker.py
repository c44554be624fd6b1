"""The checker itself, on hand-made logs: each anomaly it must catch is caught, and a
clean run is clean (a checker that cannot fail would prove nothing)."""
from __future__ import annotations

import pytest

from tests.faults.checker import check

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

A, B = "1", "2"  # user ids
CONV = "100"


def _row(seq: int, mid: str, cmid: str, sender: str = A, created: float = 10.0) -> dict:
    return {"seq": seq, "id": mid, "client_msg_id": cmid, "sender_id": sender, "created": created}


def _ack(t: float, cmid: str, mid: str, seq: int, user: str = A, socket: str = "a#1") -> dict:
    return {"t": t, "kind": "ack", "user": user, "socket": socket, "conversation_id": CONV,
            "client_msg_id": cmid, "message_id": mid, "seq": seq}  # fmt: skip


def _got(t: float, kind: str, mid: str, seq: int, user: str = B, socket: str = "b#1") -> dict:
    return {"t": t, "kind": kind, "user": user, "socket": socket, "conversation_id": CONV, "message_id": mid, "seq": seq}


def _open(t: float, user: str, socket: str) -> list[dict]:
    """A socket opening and getting its first (catch-up) sync-result right away."""
    return [{"t": t, "kind": "open", "user": user, "socket": socket},
            {"t": t, "kind": "sync_result", "user": user, "socket": socket, "count": 0}]  # fmt: skip


def _clean() -> tuple[list, dict, list]:
    events = [*_open(0, A, "a#1"), *_open(0, B, "b#1"),
              _ack(10.1, "c1", "m1", 1), _got(10.2, "push", "m1", 1),
              _ack(11.1, "c2", "m2", 2), _got(11.2, "push", "m2", 2)]  # fmt: skip
    # events[4:] are the acks and pushes
    history = {CONV: [_row(1, "m1", "c1"), _row(2, "m2", "c2", created=11.0)]}
    planned = [(A, CONV, "c1"), (A, CONV, "c2")]
    return events, history, planned


def _check(events, history, planned, end=20.0):  # noqa: ANN001
    return check(events, history, {CONV: [A, B]}, planned, heal=10.0, bound=5.0, end=end)


def test_a_clean_run_is_clean():
    v = _check(*_clean())
    assert v.row() | {"recovery": None} == {
        "sent": 2, "acked": 2, "lost": 0, "dup_shown": 0, "seq_anomalies": 0, "order": 0, "never_acked": 0,
        "push_missed": 0, "pushed": 2, "synced_only": 0, "recovery": None,
    }  # fmt: skip
    assert v.recovery == pytest.approx(1.2, abs=0.01)


def test_an_acked_message_missing_from_the_history_is_lost():
    events, history, planned = _clean()
    history[CONV] = history[CONV][:1]
    v = _check(events, history, planned)
    assert v.lost == 1


def test_a_message_pushed_twice_on_one_socket_is_a_duplicate_shown():
    events, history, planned = _clean()
    events.append(_got(12.0, "push", "m2", 2))
    assert _check(events, history, planned).dup_shown == 1


def test_a_push_of_the_senders_own_acked_message_is_a_duplicate_shown():
    events, history, planned = _clean()
    events.append(_got(12.0, "push", "m1", 1, user=A, socket="a#1"))
    assert _check(events, history, planned).dup_shown == 1


def test_sync_after_push_is_not_a_duplicate_shown_but_a_second_socket_push_is_fine_too():
    events, history, planned = _clean()
    events += [_got(12.0, "sync", "m1", 1), *_open(12.0, B, "b#2"), _got(12.1, "push", "m2", 2, socket="b#2")]
    assert _check(events, history, planned).dup_shown == 0


def test_a_gap_a_repeated_seq_and_two_seqs_for_one_client_msg_id_are_seq_anomalies():
    events, history, planned = _clean()
    gap = {CONV: [_row(1, "m1", "c1"), _row(3, "m2", "c2")]}
    assert _check(events, gap, planned).seq_anomalies >= 1
    twice = {CONV: [_row(1, "m1", "c1"), _row(1, "m2", "c2")]}
    assert _check(events, twice, planned).seq_anomalies >= 1
    one_key_two_rows = {CONV: [_row(1, "m1", "c1"), _row(2, "m2", "c1")]}
    assert _check(events, one_key_two_rows, planned).seq_anomalies >= 1
    events.append(_ack(12.0, "c1", "m1", 7))  # acked again with another seq
    assert _check(events, history, planned).seq_anomalies >= 1


def test_pushes_out_of_seq_order_on_a_socket_are_an_order_violation():
    events, history, planned = _clean()
    events[5], events[7] = _got(11.3, "push", "m1", 1), _got(10.2, "push", "m2", 2)
    events.sort(key=lambda e: e["t"])
    assert _check(events, history, planned).order == 1


def test_a_send_never_acked_is_counted_and_there_is_no_recovery():
    events, history, planned = _clean()
    planned.append((A, CONV, "c3"))
    v = _check(events, history, planned)
    assert v.never_acked == 1 and v.recovery is None


def test_an_online_member_who_got_a_message_only_by_sync_is_a_push_missed():
    events, history, planned = _clean()
    events[7] = _got(11.2, "sync", "m2", 2)
    v = _check(events, history, planned)
    assert (v.push_missed, v.synced_only) == (1, 1)


def test_a_member_offline_at_commit_time_is_not_owed_a_push():
    events, history, planned = _clean()
    events[2:4] = _open(10.5, B, "b#1")  # B connected after m1 was committed (t=10.0)
    events[5] = _got(10.6, "sync", "m1", 1)
    events.sort(key=lambda e: e["t"])
    assert _check(events, history, planned).push_missed == 0


def test_a_socket_still_catching_up_at_commit_time_is_not_owed_a_push_but_is_after():
    events, history, planned = _clean()
    events[3] = {**events[3], "t": 10.05}  # B's first sync-result came after m1's commit
    events[5] = _got(10.2, "sync", "m1", 1)
    events.sort(key=lambda e: e["t"])
    v = _check(events, history, planned)
    assert v.push_missed == 0  # m1: B was still catching up; m2 (11.0) was pushed
    events = [e for e in events if not (e["kind"] == "push" and e["message_id"] == "m2")]
    assert _check(events, history, planned).push_missed == 1


def test_a_member_who_never_gets_a_message_means_no_recovery():
    events, history, planned = _clean()
    del events[7]
    v = _check(events, history, planned)
    assert v.recovery is None and v.push_missed == 1
