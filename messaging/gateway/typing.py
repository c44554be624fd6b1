"""Typing indicators (issue 10): a client's `typing {conversation_id}` relayed to the
conversation's other online members as `typing {conversation_id, user_id, user_name}`.

Ephemeral, so it skips the logic consumer entirely: nothing is persisted, ordering
against messages does not matter, and a lost indicator costs nothing (the client re-sends
while the user types). The gateway itself checks membership and reads the member list
from its in-process cache (membership.py), looks the members up in presence (one round
trip for up to PRESENCE_BATCH_SIZE members) and produces ONE TYPING envelope per target
gateway straight to that gateway's downstream topic. Warm, a typing frame costs no SQL
statement and no thread hop; going through the logic would have cost a bus hop and
a member query there per event.

Throttled per (user, conversation) to one per TYPING_THROTTLE_SECONDS in each gateway
process (extra frames are dropped silently), and dropped for conversations with more
than TYPING_MAX_GROUP_SIZE members.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from channels.db import database_sync_to_async
from django.conf import settings

from gochat_site import tracing
from messaging import routing
from messaging.gateway.membership import check_member, is_known_member, known_member_list, load_member_list
from messaging.presence import get_presence
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)

# Forget throttle entries older than the window once the table grows past this.
_PRUNE_AT = 10_000


class TypingThrottle:
    """At most one typing event per (user, conversation) per TYPING_THROTTLE_SECONDS."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[tuple[int, int], float] = {}

    def allow(self, user_id: int, conversation_id: int) -> bool:
        now = self._clock()
        window = float(settings.TYPING_THROTTLE_SECONDS)
        key = (user_id, conversation_id)
        last = self._last.get(key)
        if last is not None and now - last < window:
            return False
        self._last[key] = now
        if len(self._last) > _PRUNE_AT:
            for stale in [k for k, at in self._last.items() if now - at >= window]:
                del self._last[stale]
        return True

    def reset(self) -> None:
        self._last.clear()


# One per process; only the event loop touches it.
throttle = TypingThrottle()


async def relay_typing(*, user_id: int, user_name: str, conversation_id: int) -> int:
    """Check, throttle and relay one typing event; return how many envelopes went out.

    Raises NotFound (1003) / NotAMember (1005) like a send. Cold (first typing in this
    conversation on this gateway) it reads the membership row and the member list once,
    in the database thread; warm it touches no database."""
    if not is_known_member(user_id=user_id, conversation_id=conversation_id):
        await database_sync_to_async(check_member)(user_id=user_id, conversation_id=conversation_id)
    if not throttle.allow(user_id, conversation_id):
        return 0
    known, members = known_member_list(conversation_id=conversation_id)
    if not known:
        members = await database_sync_to_async(load_member_list)(conversation_id=conversation_id)
    if members is None:
        return 0  # more than TYPING_MAX_GROUP_SIZE members: dropped
    others = [member for member in members if member != user_id]
    if not others:
        return 0
    sessions = await get_presence().alookup(others)
    by_gateway = routing.recipients_by_gateway(sessions)
    if not by_gateway:
        return 0
    trace_id = tracing.current_trace_id()
    # The typer's name rides in a ChatMessage stub: the envelope has no name field.
    typer = pb.ChatMessage(sender_id=user_id, sender_name=user_name, conversation_id=conversation_id)
    for gateway_id, recipients in by_gateway.items():
        envelope = pb.DownstreamMessage(
            trace_id=trace_id,
            kind=pb.DownstreamMessage.TYPING,
            recipient_user_ids=recipients,
            conversation_id=conversation_id,
            actor_id=user_id,
            message=typer,
        )
        routing.produce_downstream(gateway_id, envelope)
    return len(by_gateway)
