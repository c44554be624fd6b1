"""Request parsing and response shapes of the groups REST API.

Serializers only translate: membership rules, roles and limits live in groups.services
and groups.selectors. Ids are strings in every response.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.representations import public_user_dict
from accounts.serializers import (
    HttpUrlField,
    IdField,
    PublicUserSerializer,
    RequestSerializer,
    StrictCharField,
    StrictIntegerField,
)
from gochat_site.id_params import MAX_ID
from groups.models import Group, GroupMember
from groups.selectors import MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX

# Bounds one request's work; larger imports go through several calls.
MAX_IDS_PER_REQUEST = 1000


def _id_list(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=IdField(), max_length=MAX_IDS_PER_REQUEST, **kwargs)


# --- requests --------------------------------------------------------------------------

class CreateGroupSerializer(RequestSerializer):
    name = StrictCharField(max_length=100)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
    avatar = HttpUrlField(max_length=500, required=False, allow_blank=True, default="")
    max_members = StrictIntegerField(min_value=1, required=False, allow_null=True, default=None)
    member_ids = _id_list(required=False, default=list)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # The bound is a setting, read per request (the service checks it too), so the
        # schema states the deployment's own limit.
        fields["max_members"] = StrictIntegerField(
            min_value=1, max_value=settings.GROUP_DEFAULT_MAX_MEMBERS, required=False, allow_null=True, default=None
        )
        return fields


class UpdateGroupSerializer(RequestSerializer):
    name = StrictCharField(max_length=100, required=False)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    avatar = HttpUrlField(max_length=500, required=False, allow_blank=True)


class UserIdsSerializer(RequestSerializer):
    user_ids = _id_list(min_length=1)


class RoleSerializer(RequestSerializer):
    role = serializers.ChoiceField(choices=[GroupMember.Role.ADMIN, GroupMember.Role.MEMBER])


class MembersQuerySerializer(RequestSerializer):
    after = StrictIntegerField(
        min_value=0, max_value=MAX_ID, required=False, help_text="the `next` of the previous page"
    )
    limit = StrictIntegerField(
        min_value=1,
        max_value=MEMBERS_PAGE_MAX,
        required=False,
        help_text=f"page size, 1..{MEMBERS_PAGE_MAX} (default {MEMBERS_PAGE_DEFAULT})",
    )


# --- responses -------------------------------------------------------------------------

class GroupSerializer(serializers.Serializer):
    """A group as its members see it. `my_role` is the caller's role: taken from the
    `role` in the serializer context, else from a `my_role` annotation on the group."""

    id = IdField()
    name = serializers.CharField()
    description = serializers.CharField()
    avatar = serializers.CharField()
    owner_id = IdField()
    max_members = serializers.IntegerField()
    member_count = serializers.IntegerField()
    conversation_id = serializers.SerializerMethodField()
    my_role = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_conversation_id(self, group: Group) -> str | None:
        try:
            return str(group.conversation.id)
        except ObjectDoesNotExist:
            return None

    @extend_schema_field(serializers.ChoiceField(choices=GroupMember.Role.values, allow_null=True))
    def get_my_role(self, group: Group) -> str | None:
        return self.context.get("role") or getattr(group, "my_role", None)


class MemberSerializer(serializers.Serializer):
    user = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=GroupMember.Role.values)
    joined_at = serializers.DateTimeField()
    muted = serializers.BooleanField()

    @extend_schema_field(PublicUserSerializer)
    def get_user(self, member: GroupMember) -> dict[str, Any]:
        return public_user_dict(member.user)


class MembersPageSerializer(serializers.Serializer):
    members = MemberSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="pass as `after` for the next page; null on the last page")


class MembersAddedSerializer(serializers.Serializer):
    added_user_ids = serializers.ListField(child=serializers.CharField())
    member_count = serializers.IntegerField()


class MembersRemovedSerializer(serializers.Serializer):
    removed_user_ids = serializers.ListField(child=serializers.CharField())
    member_count = serializers.IntegerField()


class RoleChangedSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    role = serializers.CharField()
