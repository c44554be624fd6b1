"""Chat groups and their members (DESIGN §2)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from gochat_site.ids import new_id


class Group(models.Model):
    id = models.BigIntegerField(primary_key=True, default=new_id, editable=False)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    avatar = models.URLField(max_length=500, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_groups")
    max_members = models.PositiveIntegerField(default=500)
    # Kept by groups.services on every join/leave so pages and routing never COUNT(*).
    member_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name


class GroupMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="group_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    muted = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="uniq_group_member")]
        indexes = [models.Index(fields=["user", "group"])]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.group_id} ({self.role})"
