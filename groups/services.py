"""Writes to groups and their membership; every change goes through one function here."""
from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from gochat_site.errors import Conflict, InvalidParams, NotFound, PermissionDenied
from groups.models import Group, GroupMember
from groups.signals import members_added, members_removed

User = get_user_model()

MANAGER_ROLES = (GroupMember.Role.OWNER, GroupMember.Role.ADMIN)


def access_group_by_id(group_id: int) -> Group:
    try:
        return Group.objects.get(id=group_id)
    except (Group.DoesNotExist, ValueError, TypeError):
        raise NotFound("group not found") from None


def _role_of(group_id: int, user_id: int) -> str | None:
    return GroupMember.objects.filter(group_id=group_id, user_id=user_id).values_list("role", flat=True).first()


def check_group_manager(*, group_id: int, user_id: int) -> str:
    role = _role_of(group_id, user_id)
    if role is None:
        raise PermissionDenied("not a member of this group")
    if role not in MANAGER_ROLES:
        raise PermissionDenied("only the owner or an admin may do this")
    return role


def _existing_user_ids(user_ids: Iterable[int]) -> list[int]:
    try:
        wanted = {int(u) for u in user_ids}
    except (TypeError, ValueError):
        raise InvalidParams("user ids must be integers", {"user_ids": ["A valid id is required."]}) from None
    found = set(User.objects.filter(id__in=wanted, is_active=True).values_list("id", flat=True))
    missing = wanted - found
    if missing:
        raise NotFound("user not found", {"user_ids": [str(u) for u in sorted(missing)]})
    return sorted(found)


def _add(group: Group, user_ids: list[int], role: str = GroupMember.Role.MEMBER) -> list[int]:
    """Add the users not yet in the group; return the ids actually added."""
    # Lock first, then look: two concurrent joins of one user would otherwise both see
    # "not a member" and the second would hit the unique constraint (a 500).
    locked = Group.objects.select_for_update().get(id=group.id)
    present = set(GroupMember.objects.filter(group=group, user_id__in=user_ids).values_list("user_id", flat=True))
    new_ids = [u for u in user_ids if u not in present]
    if not new_ids:
        return []
    if locked.member_count + len(new_ids) > locked.max_members:
        raise Conflict("group is full", {"max_members": locked.max_members})
    GroupMember.objects.bulk_create([GroupMember(group=group, user_id=u, role=role) for u in new_ids])
    Group.objects.filter(id=group.id).update(member_count=F("member_count") + len(new_ids))
    group.member_count = locked.member_count + len(new_ids)
    members_added.send(sender=Group, group=group, user_ids=new_ids)
    return new_ids


@transaction.atomic
def create_group(
    *,
    owner_id: int,
    name: str,
    description: str = "",
    avatar: str = "",
    max_members: int | None = None,
    member_ids: Iterable[int] = (),
) -> Group:
    from django.conf import settings

    name = (name or "").strip()
    if not name:
        raise InvalidParams("name is required", {"name": ["This field is required."]})
    limit = max_members or min(500, settings.GROUP_DEFAULT_MAX_MEMBERS)
    if limit < 1 or limit > settings.GROUP_DEFAULT_MAX_MEMBERS:
        raise InvalidParams("max_members out of range", {"max_members": [f"1..{settings.GROUP_DEFAULT_MAX_MEMBERS}"]})
    others = [u for u in _existing_user_ids(member_ids) if u != int(owner_id)]
    if len(others) + 1 > limit:
        raise Conflict("too many members for max_members", {"max_members": limit})
    group = Group.objects.create(owner_id=owner_id, name=name, description=description, avatar=avatar, max_members=limit)
    _add(group, [int(owner_id)], role=GroupMember.Role.OWNER)
    if others:
        _add(group, others)
    group.refresh_from_db()
    return group


@transaction.atomic
def join_group(*, group_id: int, user_id: int) -> Group:
    group = access_group_by_id(group_id)
    if not _add(group, [int(user_id)]):
        raise Conflict("already a member of this group")
    group.refresh_from_db()
    return group


@transaction.atomic
def add_members(*, group_id: int, actor_id: int, user_ids: Iterable[int]) -> list[int]:
    group = access_group_by_id(group_id)
    check_group_manager(group_id=group.id, user_id=actor_id)
    ids = _existing_user_ids(user_ids)
    if not ids:
        raise InvalidParams("user_ids must not be empty", {"user_ids": ["This list may not be empty."]})
    return _add(group, ids)


def _remove(group: Group, user_ids: list[int]) -> list[int]:
    # Under the group lock, as in _add: two concurrent removals of one member must not
    # both decrement member_count.
    Group.objects.select_for_update().get(id=group.id)
    removed = list(GroupMember.objects.filter(group=group, user_id__in=user_ids).values_list("user_id", flat=True))
    if removed:
        GroupMember.objects.filter(group=group, user_id__in=removed).delete()
        Group.objects.filter(id=group.id).update(member_count=F("member_count") - len(removed))
        members_removed.send(sender=Group, group=group, user_ids=removed)
    return removed


@transaction.atomic
def leave_group(*, group_id: int, user_id: int) -> None:
    group = access_group_by_id(group_id)
    role = _role_of(group.id, user_id)
    if role is None:
        raise PermissionDenied("not a member of this group")
    if role == GroupMember.Role.OWNER:
        successor = (
            GroupMember.objects.filter(group=group)
            .exclude(user_id=user_id)
            .order_by("role", "joined_at", "id")  # "admin" sorts before "member"
            .first()
        )
        if successor is None:
            _remove(group, [int(user_id)])
            group.delete()
            return
        GroupMember.objects.filter(id=successor.id).update(role=GroupMember.Role.OWNER)
        Group.objects.filter(id=group.id).update(owner_id=successor.user_id)
    _remove(group, [int(user_id)])


@transaction.atomic
def remove_members(*, group_id: int, actor_id: int, user_ids: Iterable[int]) -> list[int]:
    group = access_group_by_id(group_id)
    actor_role = check_group_manager(group_id=group.id, user_id=actor_id)
    try:
        ids = [int(u) for u in user_ids]
    except (TypeError, ValueError):
        raise InvalidParams("user ids must be integers", {"user_ids": ["A valid id is required."]}) from None
    if not ids:
        raise InvalidParams("user_ids must not be empty", {"user_ids": ["This list may not be empty."]})
    targets = dict(GroupMember.objects.filter(group=group, user_id__in=ids).values_list("user_id", "role"))
    for uid, role in targets.items():
        if role == GroupMember.Role.OWNER:
            raise PermissionDenied("the owner cannot be removed")
        if role == GroupMember.Role.ADMIN and actor_role != GroupMember.Role.OWNER:
            raise PermissionDenied("only the owner may remove an admin")
    if int(actor_id) in targets:
        raise PermissionDenied("use leave to remove yourself")
    return _remove(group, list(targets))


@transaction.atomic
def set_member_role(*, group_id: int, actor_id: int, user_id: int, role: str) -> None:
    group = access_group_by_id(group_id)
    if _role_of(group.id, actor_id) != GroupMember.Role.OWNER:
        raise PermissionDenied("only the owner may change roles")
    if role not in (GroupMember.Role.ADMIN, GroupMember.Role.MEMBER):
        raise InvalidParams("role must be admin or member", {"role": ["Must be admin or member."]})
    target_role = _role_of(group.id, user_id)
    if target_role is None:
        raise NotFound("member not found")
    if target_role == GroupMember.Role.OWNER:
        raise PermissionDenied("the owner's role cannot be changed")
    GroupMember.objects.filter(group=group, user_id=user_id).update(role=role)


@transaction.atomic
def update_group(*, group_id: int, actor_id: int, **fields: str) -> Group:
    group = access_group_by_id(group_id)
    check_group_manager(group_id=group.id, user_id=actor_id)
    allowed = {k: v for k, v in fields.items() if k in {"name", "description", "avatar"} and v is not None}
    if "name" in allowed:
        allowed["name"] = allowed["name"].strip()
        if not allowed["name"]:
            raise InvalidParams("name is required", {"name": ["This field may not be blank."]})
    for key, value in allowed.items():
        setattr(group, key, value)
    group.save(update_fields=[*allowed, "updated_at"])
    return group
