"""Signals groups sends so higher apps (messaging) can follow membership changes
without groups importing them. Sent inside the service's transaction."""
from django.dispatch import Signal

# kwargs: group (Group), user_ids (list[int])
members_added = Signal()
# kwargs: group (Group), user_ids (list[int])
members_removed = Signal()
