"""Records of the task platform: dead letters of failed tasks and the daily statistics."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class FailedTask(models.Model):
    """A task that ended in failure: its retries ran out, or its error was permanent."""

    task_id = models.CharField(max_length=64, blank=True, db_index=True)
    name = models.CharField(max_length=200, db_index=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    error = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set when an operator sent the task again (admin action "retry selected").
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.task_id or 'no id'})"


class DailyStats(models.Model):
    """One row per UTC day, written by the daily_stats job (re-running it overwrites)."""

    day = models.DateField(unique=True)
    messages = models.PositiveBigIntegerField(default=0)
    # Distinct users who sent at least one message that day.
    active_users = models.PositiveIntegerField(default=0)
    # Groups in existence at the end of the day.
    groups = models.PositiveIntegerField(default=0)
    push_sent = models.PositiveBigIntegerField(default=0)
    push_failed = models.PositiveBigIntegerField(default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "daily stats"

    def __str__(self) -> str:
        return str(self.day)
