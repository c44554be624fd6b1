"""Create the users, one-to-one conversations and the group of one fault run.

Run in a child with the cluster's environment (`python -m tests.faults.seed <json>`),
so the test process itself never needs Django's database. Prints JSON: every user's
id and access token, the pairs' conversations, the group's conversation and members.
"""
from __future__ import annotations

import json
import sys


def main(spec: dict) -> dict:
    import django

    django.setup()
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from groups.services import create_group
    from messaging.services import get_or_create_single_conversation

    run = spec["run"]
    # Unusable passwords: these users only ever authenticate by token (no slow hashing).
    def make(name: str) -> User:
        user = User(username=f"{run}-{name}", nickname=name)
        user.set_unusable_password()
        return user

    names = [f"p{i}{side}" for i in range(spec["pairs"]) for side in "ab"]
    names += [f"g{i}" for i in range(spec["group_members"])]
    names += [f"burst{i}" for i in range(spec["burst_users"])]
    users = {u.nickname: u for u in User.objects.bulk_create([make(n) for n in names])}
    pairs = []
    for i in range(spec["pairs"]):
        a, b = users[f"p{i}a"], users[f"p{i}b"]
        conversation, _ = get_or_create_single_conversation(user_id=a.id, peer_id=b.id)
        pairs.append({"conversation_id": str(conversation.id), "members": [a.nickname, b.nickname]})
    group_names = [f"g{i}" for i in range(spec["group_members"])]
    group = None
    if group_names:
        owner, *rest = (users[n] for n in group_names)
        created = create_group(owner_id=owner.id, name=f"{run}-group", member_ids=[u.id for u in rest])
        group = {"conversation_id": str(created.conversation.id), "members": group_names}
    return {
        "users": {name: {"id": str(u.id), "token": str(AccessToken.for_user(u))} for name, u in users.items()},
        "pairs": pairs,
        "group": group,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
