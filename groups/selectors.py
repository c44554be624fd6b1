"""Reads of groups and members."""
from __future__ import annotations

from django.db.models import QuerySet

from groups.models import Group, GroupMember


def member_role(*, group_id: int, user_id: int) -> str | None:
    return GroupMember.objects.filter(group_id=group_id, user_id=user_id).values_list("role", flat=True).first()


def members_page(*, group_id: int, after_user_id: int = 0, limit: int = 100) -> list[GroupMember]:
    """Members ordered by user id, keyset-paged: pass the last user id of the previous page."""
    return list(
        GroupMember.objects.filter(group_id=group_id, user_id__gt=after_user_id)
        .select_related("user")
        .order_by("user_id")[:limit]
    )


def member_ids_batches(*, group_id: int, batch_size: int = 200, after_user_id: int = 0):
    """Yield (batch of member user ids, last id) in keyset order; memory stays flat."""
    cursor = after_user_id
    while True:
        ids = list(
            GroupMember.objects.filter(group_id=group_id, user_id__gt=cursor)
            .order_by("user_id")
            .values_list("user_id", flat=True)[:batch_size]
        )
        if not ids:
            return
        cursor = ids[-1]
        yield ids, cursor


def groups_of_user(*, user_id: int) -> QuerySet[Group]:
    return Group.objects.filter(members__user_id=user_id).order_by("-created_at")
