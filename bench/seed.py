"""Bench fixtures: users, one-to-one conversations and a group, written straight into
the database of the stack under test, and an access token per user.

Run as a subprocess (`python -m bench.seed '<json spec>'`) with the environment of the
mode being measured, so it uses that mode's database; prints one JSON object on stdout.
"""
from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")
    import django

    django.setup()


def seed(*, pairs: int, pool: int, group_size: int) -> dict[str, Any]:
    """`pairs` pairs of users with their single conversation, `pool` more users, and a
    group of `group_size` members (an owner who sends, plus the first pool users)."""
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from groups.services import create_group
    from messaging.models import Conversation
    from messaging.services import get_or_create_single_conversation

    run = uuid.uuid4().hex[:6]
    # One hash for every bench user: nobody logs in with a password, and hashing
    # thousands of passwords would dominate the setup time.
    password = make_password(None)

    def make_users(prefix: str, count: int) -> list[User]:
        users = [User(username=f"bench_{run}_{prefix}{i}", password=password, nickname=f"{prefix}{i}") for i in range(count)]
        User.objects.bulk_create(users, batch_size=1000)
        return users

    def person(user: User) -> dict[str, str]:
        return {"id": str(user.id), "token": str(AccessToken.for_user(user))}

    pair_users = make_users("p", pairs * 2)
    pair_rows = []
    for i in range(pairs):
        a, b = pair_users[2 * i], pair_users[2 * i + 1]
        conversation, _ = get_or_create_single_conversation(user_id=a.id, peer_id=b.id)
        pair_rows.append({"a": person(a), "b": person(b), "conversation_id": str(conversation.id)})
    pool_users = make_users("u", pool)
    owner = make_users("owner", 1)[0]
    members = pool_users[: max(0, group_size - 1)]
    group = create_group(
        owner_id=owner.id,
        name=f"bench {run}",
        member_ids=[u.id for u in members],
        max_members=max(group_size, 2),
    )
    return {
        "pairs": pair_rows,
        "pool": [person(u) for u in pool_users],
        "group": {
            "conversation_id": str(Conversation.objects.get(group=group).id),
            "owner": person(owner),
            "member_count": len(members) + 1,
        },
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    _setup_django()
    print(json.dumps(seed(pairs=spec["pairs"], pool=spec["pool"], group_size=spec["group_size"])))


if __name__ == "__main__":
    main()
