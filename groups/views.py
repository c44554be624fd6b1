"""REST adapters of the groups app: parse with a serializer, call one service or
selector, shape the answer. Rules and permission checks live in services/selectors."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import parse_query, parse_request
from gochat_site.api_schema import AUTHENTICATED, WITH_BODY, WITH_QUERY, error_responses
from groups import selectors, services
from groups.serializers import (
    CreateGroupSerializer,
    GroupSerializer,
    MembersAddedSerializer,
    MembersPageSerializer,
    MembersQuerySerializer,
    MembersRemovedSerializer,
    MemberSerializer,
    RoleChangedSerializer,
    RoleSerializer,
    UpdateGroupSerializer,
    UserIdsSerializer,
)

TAG = ["groups"]
# Ids in the path are matched by gochat_site.id_params.IdConverter: a malformed one is an
# unknown URL (404), so every route with a group id answers 404 as well as its own codes.
_ON_GROUP = (*AUTHENTICATED, 403, 404)


def _parse(serializer_class, data: Any) -> dict:  # noqa: ANN001 - any Serializer class
    return parse_request(serializer_class, data)


def _group_body(group, role: str | None = None) -> dict:  # noqa: ANN001 - a groups.models.Group
    return GroupSerializer(group, context={"role": role}).data


def _member_view_of(group_id: int, user_id: int) -> dict:
    group, role = selectors.access_group_as_member(group_id=group_id, user_id=user_id)
    return _group_body(group, role)


class GroupListView(APIView):
    @extend_schema(
        tags=TAG,
        responses={200: GroupSerializer(many=True), **error_responses(*AUTHENTICATED)},
        summary="My groups, newest first",
    )
    def get(self, request: Request) -> Response:
        return Response(GroupSerializer(selectors.groups_of_user(user_id=request.user.id), many=True).data)


class GroupCreateView(APIView):
    @extend_schema(
        tags=TAG,
        request=CreateGroupSerializer,
        responses={201: GroupSerializer, **error_responses(*AUTHENTICATED, *WITH_BODY, 404, 409)},
        summary="Create a group (the caller owns it)",
    )
    def post(self, request: Request) -> Response:
        data = _parse(CreateGroupSerializer, request.data)
        group = services.create_group(owner_id=request.user.id, **data)
        return Response(_member_view_of(group.id, request.user.id), status=status.HTTP_201_CREATED)


class GroupDetailView(APIView):
    @extend_schema(tags=TAG, responses={200: GroupSerializer, **error_responses(*_ON_GROUP)}, summary="One group (members only)")
    def get(self, request: Request, group_id: int) -> Response:
        return Response(_member_view_of(group_id, request.user.id))

    @extend_schema(
        tags=TAG,
        request=UpdateGroupSerializer,
        responses={200: GroupSerializer, **error_responses(*_ON_GROUP, *WITH_BODY)},
        summary="Edit name, description, avatar (owner/admin)",
    )
    def patch(self, request: Request, group_id: int) -> Response:
        data = _parse(UpdateGroupSerializer, request.data)
        services.update_group(group_id=group_id, actor_id=request.user.id, **data)
        return Response(_member_view_of(group_id, request.user.id))


class GroupJoinView(APIView):
    @extend_schema(
        tags=TAG,
        request=None,
        responses={200: GroupSerializer, **error_responses(*_ON_GROUP, 409)},
        summary="Join a group by id",
    )
    def post(self, request: Request, group_id: int) -> Response:
        group = services.join_group(group_id=group_id, user_id=request.user.id)
        return Response(_member_view_of(group.id, request.user.id))


class GroupLeaveView(APIView):
    @extend_schema(
        tags=TAG,
        request=None,
        responses={204: None, **error_responses(*_ON_GROUP)},
        summary="Leave a group (an owner hands over to the next member)",
    )
    def post(self, request: Request, group_id: int) -> Response:
        services.leave_group(group_id=group_id, user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _remove(request: Request, group_id: int, user_ids: list[int]) -> Response:
    removed = services.remove_members(group_id=group_id, actor_id=request.user.id, user_ids=user_ids)
    group, _ = selectors.access_group_as_member(group_id=group_id, user_id=request.user.id)
    return Response({"removed_user_ids": [str(u) for u in removed], "member_count": group.member_count})


class GroupMembersView(APIView):
    @extend_schema(
        tags=TAG,
        parameters=[MembersQuerySerializer],
        responses={200: MembersPageSerializer, **error_responses(*_ON_GROUP, *WITH_QUERY)},
        summary="Members by user id, keyset-paged (members only)",
    )
    def get(self, request: Request, group_id: int) -> Response:
        query = parse_query(MembersQuerySerializer, request.query_params)
        page = selectors.members_page_for(
            group_id=group_id, user_id=request.user.id, after=query.get("after"), limit=query.get("limit")
        )
        return Response(
            {
                "members": MemberSerializer(page.members, many=True).data,
                "next": str(page.next_after) if page.next_after is not None else None,
            }
        )

    @extend_schema(
        tags=TAG,
        request=UserIdsSerializer,
        responses={200: MembersAddedSerializer, **error_responses(*_ON_GROUP, *WITH_BODY, 409)},
        summary="Add members (owner/admin)",
    )
    def post(self, request: Request, group_id: int) -> Response:
        data = _parse(UserIdsSerializer, request.data)
        added = services.add_members(group_id=group_id, actor_id=request.user.id, user_ids=data["user_ids"])
        group, _ = selectors.access_group_as_member(group_id=group_id, user_id=request.user.id)
        return Response({"added_user_ids": [str(u) for u in added], "member_count": group.member_count})


class GroupMemberView(APIView):
    @extend_schema(
        tags=TAG,
        request=None,
        responses={200: MembersRemovedSerializer, **error_responses(*_ON_GROUP)},
        summary="Remove one member (owner/admin); POST members/remove removes several",
    )
    def delete(self, request: Request, group_id: int, user_id: int) -> Response:
        # One member per URL: a DELETE names the resource it removes (RFC 9110), and
        # the members list itself stays. Not a member: nothing removed, still 200.
        return _remove(request, group_id, [user_id])


class GroupMembersRemoveView(APIView):
    @extend_schema(
        tags=TAG,
        request=UserIdsSerializer,
        responses={200: MembersRemovedSerializer, **error_responses(*_ON_GROUP, *WITH_BODY)},
        summary="Remove members (owner/admin)",
    )
    def post(self, request: Request, group_id: int) -> Response:
        data = _parse(UserIdsSerializer, request.data)
        return _remove(request, group_id, data["user_ids"])


class GroupMemberRoleView(APIView):
    @extend_schema(
        tags=TAG,
        request=RoleSerializer,
        responses={200: RoleChangedSerializer, **error_responses(*_ON_GROUP, *WITH_BODY)},
        summary="Make a member admin or member (owner)",
    )
    def post(self, request: Request, group_id: int, user_id: int) -> Response:
        data = _parse(RoleSerializer, request.data)
        services.set_member_role(group_id=group_id, actor_id=request.user.id, user_id=user_id, role=data["role"])
        return Response({"user_id": str(user_id), "role": data["role"]})
