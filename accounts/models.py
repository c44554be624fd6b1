"""The custom user of GoChat (DESIGN §2)."""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from gochat_site.ids import new_id


class User(AbstractUser):
    id = models.BigIntegerField(primary_key=True, default=new_id, editable=False)
    email = models.EmailField(blank=True, db_index=True)
    nickname = models.CharField(max_length=64, blank=True)
    avatar = models.URLField(max_length=500, blank=True)
    # A short status text shown to contacts ("in a meeting"); account activity is is_active.
    status = models.CharField(max_length=140, blank=True)
    # Read receipts (issue 10): off, this user's reads tell nobody else (no receipt frames,
    # not counted in read_count, peer_last_read_seq null for them).
    send_read_receipts = models.BooleanField(default=True)

    @property
    def display_name(self) -> str:
        return self.nickname or self.username
