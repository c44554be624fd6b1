"""Reads of groups and members."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import F, QuerySet

from gochat_site.errors import InvalidParams, NotFound, PermissionDenied
from groups.models import Group, GroupMember

MEMBERS_PAGE_DEFAULT = 50
MEMBERS_PAGE_MAX = 200


def member_role(*, group_id: int, user_id: int) -> str | None:
    return GroupMember.objects.filter(group_id=group_id, user_id=user_id).values_list("role", flat=True).first()


def _with_conversation(queryset: QuerySet[Group]) -> QuerySet[Group]:
    # The group's conversation (a messaging row) is read through its reverse one-to-one
    # relation, so the group representation carries conversation_id without groups
    # importing messaging.
    return queryset.select_related("conversation")


def access_group_as_member(*, group_id: int, user_id: int) -> tuple[Group, str]:
    """The group and the caller's role in it; group details are for members only."""
    group = _with_conversation(Group.objects.filter(id=group_id)).first()
    if group is None:
        raise NotFound("group not found")
    role = member_role(group_id=group.id, user_id=user_id)
    if role is None:
        raise PermissionDenied("not a member of this group")
    return group, role


def members_page(*, group_id: int, after_user_id: int = 0, limit: int = 100) -> list[GroupMember]:
    """Members ordered by user id, keyset-paged: pass the last user id of the previous page."""
    return list(
        GroupMember.objects.filter(group_id=group_id, user_id__gt=after_user_id)
        .select_related("user")
        .order_by("user_id")[:limit]
    )


@dataclass(frozen=True)
class MembersPage:
    members: list[GroupMember]
    # The user id to pass as `after` for the next page; None on the last page.
    next_after: int | None


def _clean_int(value: object, name: str, default: int, minimum: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidParams(f"{name} must be an integer", {name: ["A valid integer is required."]}) from None
    if not minimum <= number <= maximum:
        raise InvalidParams(f"{name} out of range", {name: [f"Must be between {minimum} and {maximum}."]})
    return number


def members_page_for(*, group_id: int, user_id: int, after: object = None, limit: object = None) -> MembersPage:
    """One page of a group's members for a member of it (keyset on user id)."""
    after_user_id = _clean_int(after, "after", 0, 0, 2**63 - 1)
    size = _clean_int(limit, "limit", MEMBERS_PAGE_DEFAULT, 1, MEMBERS_PAGE_MAX)
    group, _ = access_group_as_member(group_id=group_id, user_id=user_id)
    # One extra row tells whether another page exists without a COUNT.
    rows = members_page(group_id=group.id, after_user_id=after_user_id, limit=size + 1)
    if len(rows) > size:
        return MembersPage(rows[:size], rows[size - 1].user_id)
    return MembersPage(rows, None)


def member_ids_batches(*, group_id: int, batch_size: int = 200, after_user_id: int = 0) -> Iterator[tuple[list[int], int]]:
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
    """The user's groups, newest first, each annotated with `my_role`."""
    return _with_conversation(
        Group.objects.filter(members__user_id=user_id).annotate(my_role=F("members__role")).order_by("-created_at", "-id")
    )
