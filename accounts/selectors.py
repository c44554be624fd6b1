"""Reads of user accounts."""
from __future__ import annotations

from accounts.models import User
from gochat_site.errors import InvalidParams, NotFound


def user_by_username(*, username: str) -> User:
    """The active user with this username; an exact match wins over a case-insensitive one."""
    username = (username or "").strip()
    if not username:
        raise InvalidParams("username is required", {"username": ["This field is required."]})
    active = User.objects.filter(is_active=True)
    user = active.filter(username=username).first() or active.filter(username__iexact=username).first()
    if user is None:
        raise NotFound("user not found")
    return user


def users_by_ids(*, user_ids: list[int]) -> dict[int, User]:
    """Active users by id (missing or inactive ids are absent)."""
    return {u.id: u for u in User.objects.filter(id__in=user_ids, is_active=True)}
