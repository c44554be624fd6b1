"""The JSON shapes of a user: the public face any signed-in user may see, and the
private one its owner sees. Ids are strings (JavaScript cannot hold 64-bit integers)."""
from __future__ import annotations

from typing import Any

from accounts.models import User


def public_user_dict(user: User) -> dict[str, Any]:
    """What other users may know about a user: nothing private (no email, no flags)."""
    return {
        "id": str(user.id),
        "username": user.username,
        "nickname": user.nickname,
        "avatar": user.avatar,
        "status": user.status,
    }


def private_user_dict(user: User) -> dict[str, Any]:
    """The caller's own account: the public fields plus email and sign-up time."""
    return {
        **public_user_dict(user),
        "email": user.email,
        "date_joined": user.date_joined.isoformat(),
        "send_read_receipts": user.send_read_receipts,
    }
