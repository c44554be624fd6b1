"""Django admin for groups. Membership edits here bypass groups.services (no member_count
upkeep, no conversation sync), so members are shown read-only and edited through the API."""
from django.contrib import admin
from django.db import models

from groups.models import Group, GroupMember


class GroupMemberInline(admin.TabularInline):
    model = GroupMember
    extra = 0
    fields = ("user", "role", "joined_at", "muted")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    # Avatars typed without a scheme are https (Django 6 behaviour, no warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "owner", "member_count", "max_members", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name",)
    raw_id_fields = ("owner",)
    readonly_fields = ("member_count", "created_at", "updated_at")
    inlines = [GroupMemberInline]


@admin.register(GroupMember)
class GroupMemberAdmin(admin.ModelAdmin):
    list_display = ("group", "user", "role", "joined_at", "muted")
    list_filter = ("role", "muted")
    search_fields = ("group__name", "user__username")
    list_select_related = ("group", "user")
    readonly_fields = ("group", "user", "joined_at")

    # Adding or deleting rows here would skip member_count and the group conversation.
    def has_add_permission(self, request) -> bool:  # noqa: ANN001 - admin signature
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False
