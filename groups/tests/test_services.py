"""groups.services rules that the REST tests do not reach, and their behaviour under
concurrency on PostgreSQL (row locks on the group keep member_count exact)."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from gochat_site.errors import Conflict, InvalidParams, NotFound
from groups.models import Group, GroupMember
from groups.services import add_members, create_group, join_group, leave_group, remove_members, update_group


@pytest.mark.django_db
class TestRules:
    def test_member_count_follows_joins_and_leaves(self, alice, bob, carol):
        group = create_group(owner_id=alice.id, name="g")
        join_group(group_id=group.id, user_id=bob.id)
        join_group(group_id=group.id, user_id=carol.id)
        leave_group(group_id=group.id, user_id=bob.id)
        group.refresh_from_db()
        assert group.member_count == 2 == GroupMember.objects.filter(group=group).count()

    def test_owner_hands_over_to_an_admin_before_older_members(self, alice, bob, carol):
        group = create_group(owner_id=alice.id, name="g", member_ids=[bob.id, carol.id])
        GroupMember.objects.filter(group=group, user=carol).update(role="admin")
        leave_group(group_id=group.id, user_id=alice.id)
        group.refresh_from_db()
        assert group.owner_id == carol.id
        assert GroupMember.objects.get(group=group, user=carol).role == "owner"

    def test_update_refuses_a_blank_name(self, alice):
        group = create_group(owner_id=alice.id, name="g")
        with pytest.raises(InvalidParams):
            update_group(group_id=group.id, actor_id=alice.id, name="   ")

    def test_non_numeric_ids_are_invalid_params(self, alice):
        group = create_group(owner_id=alice.id, name="g")
        with pytest.raises(InvalidParams):
            add_members(group_id=group.id, actor_id=alice.id, user_ids=["x"])
        with pytest.raises(InvalidParams):
            remove_members(group_id=group.id, actor_id=alice.id, user_ids=["x"])

    def test_inactive_users_cannot_be_added(self, alice, make_user):
        gone = make_user("gone", is_active=False)
        with pytest.raises(NotFound):
            create_group(owner_id=alice.id, name="g", member_ids=[gone.id])


def _run_together(n: int, work) -> list:  # noqa: ANN001 - callable(i) -> result
    """Run work(i) in n threads released at once; collect results or exceptions."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    def test_same_user_joining_twice_at_once_joins_once(self, alice, bob):
        group = create_group(owner_id=alice.id, name="g")
        results = _run_together(4, lambda i: join_group(group_id=group.id, user_id=bob.id))
        assert sum(isinstance(r, Group) for r in results) == 1
        assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Group))
        group.refresh_from_db()
        assert group.member_count == 2 == GroupMember.objects.filter(group=group).count()

    def test_a_full_group_is_never_overfilled(self, alice, make_user):
        group = create_group(owner_id=alice.id, name="g", max_members=3)
        joiners = [make_user().id for _ in range(6)]
        results = _run_together(6, lambda i: join_group(group_id=group.id, user_id=joiners[i]))
        assert sum(isinstance(r, Group) for r in results) == 2
        group.refresh_from_db()
        assert group.member_count == 3 == GroupMember.objects.filter(group=group).count()

    def test_concurrent_removals_of_one_member_count_once(self, alice, bob, carol):
        group = create_group(owner_id=alice.id, name="g", member_ids=[bob.id, carol.id])
        results = _run_together(3, lambda i: remove_members(group_id=group.id, actor_id=alice.id, user_ids=[bob.id]))
        assert sorted(len(r) for r in results) == [0, 0, 1]
        group.refresh_from_db()
        assert group.member_count == 2 == GroupMember.objects.filter(group=group).count()
