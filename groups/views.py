"""REST adapters of the groups app: parse with a serializer, call one service or
selector, shape the answer. Rules and permission checks live in services/selectors."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gochat_site.errors import InvalidParams
from groups import selectors, services
from groups.serializers import (
    CreateGroupSerializer,
    GroupSerializer,
    MembersAddedSerializer,
    MembersPageSerializer,
    MembersRemovedSerializer,
    MemberSerializer,
    RoleChangedSerializer,
    RoleSerializer,
    UpdateGroupSerializer,
    UserIdsSerializer,
)

TAG = ["groups"]


def _parse(serializer_class, data: Any) -> dict:  # noqa: ANN001 - any Serializer class
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _path_id(value: str, name: str) -> int:
    """An id from the URL: digits only, else 1001 (an id that merely does not exist is 1003)."""
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise InvalidParams(f"invalid {name}", {name: ["A valid id is required."]})
    return int(value)


def _group_body(group, role: str | None = None) -> dict:  # noqa: ANN001 - a groups.models.Group
    return GroupSerializer(group, context={"role": role}).data


def _member_view_of(group_id: int, user_id: int) -> dict:
    group, role = selectors.access_group_as_member(group_id=group_id, user_id=user_id)
    return _group_body(group, role)


class GroupListView(APIView):
    @extend_schema(tags=TAG, responses=GroupSerializer(many=True), summary="My groups, newest first")
    def get(self, request: Request) -> Response:
        return Response(GroupSerializer(selectors.groups_of_user(user_id=request.user.id), many=True).data)


class GroupCreateView(APIView):
    @extend_schema(tags=TAG, request=CreateGroupSerializer, responses={201: GroupSerializer}, summary="Create a group (the caller owns it)")
    def post(self, request: Request) -> Response:
        data = _parse(CreateGroupSerializer, request.data)
        group = services.create_group(owner_id=request.user.id, **data)
        return Response(_member_view_of(group.id, request.user.id), status=status.HTTP_201_CREATED)


class GroupDetailView(APIView):
    @extend_schema(tags=TAG, responses=GroupSerializer, summary="One group (members only)")
    def get(self, request: Request, group_id: str) -> Response:
        return Response(_member_view_of(_path_id(group_id, "group_id"), request.user.id))

    @extend_schema(tags=TAG, request=UpdateGroupSerializer, responses=GroupSerializer, summary="Edit name, description, avatar (owner/admin)")
    def patch(self, request: Request, group_id: str) -> Response:
        gid = _path_id(group_id, "group_id")
        data = _parse(UpdateGroupSerializer, request.data)
        services.update_group(group_id=gid, actor_id=request.user.id, **data)
        return Response(_member_view_of(gid, request.user.id))


class GroupJoinView(APIView):
    @extend_schema(tags=TAG, request=None, responses=GroupSerializer, summary="Join a group by id")
    def post(self, request: Request, group_id: str) -> Response:
        group = services.join_group(group_id=_path_id(group_id, "group_id"), user_id=request.user.id)
        return Response(_member_view_of(group.id, request.user.id))


class GroupLeaveView(APIView):
    @extend_schema(tags=TAG, request=None, responses={204: None}, summary="Leave a group (an owner hands over to the next member)")
    def post(self, request: Request, group_id: str) -> Response:
        services.leave_group(group_id=_path_id(group_id, "group_id"), user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _remove(request: Request, group_id: str) -> Response:
    gid = _path_id(group_id, "group_id")
    data = _parse(UserIdsSerializer, request.data)
    removed = services.remove_members(group_id=gid, actor_id=request.user.id, user_ids=data["user_ids"])
    group, _ = selectors.access_group_as_member(group_id=gid, user_id=request.user.id)
    return Response({"removed_user_ids": [str(u) for u in removed], "member_count": group.member_count})


class GroupMembersView(APIView):
    @extend_schema(
        tags=TAG,
        parameters=[
            OpenApiParameter("after", str, description="the `next` of the previous page"),
            OpenApiParameter("limit", int, description=f"page size, 1..{selectors.MEMBERS_PAGE_MAX} (default {selectors.MEMBERS_PAGE_DEFAULT})"),
        ],
        responses=MembersPageSerializer,
        summary="Members by user id, keyset-paged (members only)",
    )
    def get(self, request: Request, group_id: str) -> Response:
        page = selectors.members_page_for(
            group_id=_path_id(group_id, "group_id"),
            user_id=request.user.id,
            after=request.query_params.get("after"),
            limit=request.query_params.get("limit"),
        )
        return Response(
            {
                "members": MemberSerializer(page.members, many=True).data,
                "next": str(page.next_after) if page.next_after is not None else None,
            }
        )

    @extend_schema(tags=TAG, request=UserIdsSerializer, responses=MembersAddedSerializer, summary="Add members (owner/admin)")
    def post(self, request: Request, group_id: str) -> Response:
        gid = _path_id(group_id, "group_id")
        data = _parse(UserIdsSerializer, request.data)
        added = services.add_members(group_id=gid, actor_id=request.user.id, user_ids=data["user_ids"])
        group, _ = selectors.access_group_as_member(group_id=gid, user_id=request.user.id)
        return Response({"added_user_ids": [str(u) for u in added], "member_count": group.member_count})

    @extend_schema(tags=TAG, request=UserIdsSerializer, responses=MembersRemovedSerializer, summary="Remove members (owner/admin)")
    def delete(self, request: Request, group_id: str) -> Response:
        return _remove(request, group_id)


class GroupMembersRemoveView(APIView):
    @extend_schema(
        tags=TAG,
        request=UserIdsSerializer,
        responses=MembersRemovedSerializer,
        summary="Remove members (owner/admin); for clients that cannot send a DELETE body",
    )
    def post(self, request: Request, group_id: str) -> Response:
        return _remove(request, group_id)


class GroupMemberRoleView(APIView):
    @extend_schema(tags=TAG, request=RoleSerializer, responses=RoleChangedSerializer, summary="Make a member admin or member (owner)")
    def post(self, request: Request, group_id: str, user_id: str) -> Response:
        gid = _path_id(group_id, "group_id")
        uid = _path_id(user_id, "user_id")
        data = _parse(RoleSerializer, request.data)
        services.set_member_role(group_id=gid, actor_id=request.user.id, user_id=uid, role=data["role"])
        return Response({"user_id": str(uid), "role": data["role"]})
