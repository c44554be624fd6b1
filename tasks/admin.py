"""Admin of the task platform: failed tasks (with "retry selected") and daily statistics."""
from __future__ import annotations

from django.contrib import admin, messages

from tasks import services
from tasks.models import DailyStats, FailedTask


@admin.register(FailedTask)
class FailedTaskAdmin(admin.ModelAdmin):
    list_display = ("name", "task_id", "attempts", "failed_at", "retried_at", "short_error")
    list_filter = ("name", "retried_at")
    search_fields = ("name", "task_id", "error")
    readonly_fields = ("task_id", "name", "args", "kwargs", "error", "traceback", "attempts", "failed_at", "retried_at")
    actions = ["retry_selected"]

    @admin.display(description="error")
    def short_error(self, obj: FailedTask) -> str:
        return obj.error[:120]

    @admin.action(description="Retry selected tasks")
    def retry_selected(self, request, queryset) -> None:  # noqa: ANN001 - admin action signature
        sent = services.retry_failed_tasks(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{sent} task(s) sent again.", messages.SUCCESS)

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


@admin.register(DailyStats)
class DailyStatsAdmin(admin.ModelAdmin):
    list_display = ("day", "messages", "active_users", "groups", "push_sent", "push_failed", "computed_at")
    date_hierarchy = "day"
    readonly_fields = ("day", "messages", "active_users", "groups", "push_sent", "push_failed", "computed_at")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False
