"""Keeps each group's conversation and its members in step with group membership.

groups sends members_added / members_removed inside its transaction; the receivers
here run in that same transaction, so the two never disagree.
"""
from __future__ import annotations

from django.dispatch import receiver

from groups.signals import members_added, members_removed
from messaging import cache, presence_push
from messaging.models import Conversation, ConversationMember


@receiver(members_added, dispatch_uid="messaging.group_members_added")
def _on_members_added(sender, group, user_ids, **kwargs) -> None:  # noqa: ANN001 - signal signature
    conversation, _ = Conversation.objects.get_or_create(group=group, defaults={"type": Conversation.Type.GROUP})
    # A new member starts "read up to now": old history is readable, not unread.
    ConversationMember.objects.bulk_create(
        [
            ConversationMember(
                conversation=conversation,
                user_id=u,
                last_read_seq=conversation.last_seq,
                last_delivered_seq=conversation.last_seq,
            )
            for u in user_ids
        ],
        ignore_conflicts=True,
    )
    # Gateways' cached member lists (typing recipients) must include the newcomers.
    cache.forget_member_list(conversation_id=conversation.id)
    # The new members' "who can see me" changed (presence push); others' within the TTL.
    presence_push.forget_watchers_on_commit(list(user_ids))


@receiver(members_removed, dispatch_uid="messaging.group_members_removed")
def _on_members_removed(sender, group, user_ids, **kwargs) -> None:  # noqa: ANN001 - signal signature
    conversation_id = Conversation.objects.filter(group=group).values_list("id", flat=True).first()
    if conversation_id is None:
        return
    ConversationMember.objects.filter(conversation_id=conversation_id, user_id__in=user_ids).delete()
    cache.forget_members(conversation_id=conversation_id, user_ids=list(user_ids))
