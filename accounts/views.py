"""REST adapters of the accounts app: parse with a serializer, call one service or
selector, shape the answer with accounts.representations."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.representations import private_user_dict, public_user_dict
from accounts.serializers import (
    LoginResponseSerializer,
    LoginSerializer,
    PrivateUserSerializer,
    ProfileUpdateSerializer,
    PublicUserSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from accounts.throttles import SettingsScopedRateThrottle

TAG_AUTH = ["auth"]
TAG_USERS = ["users"]


def _parse(serializer_class, data: Any, **kwargs: Any) -> dict:  # noqa: ANN001 - any Serializer class
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _Anonymous(APIView):
    """Routes whose credential is in the body. No authentication classes: a stale bearer
    header sent along (a client signing out with an expired access token) must not
    turn the request into a 401."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(_Anonymous):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(tags=TAG_USERS, request=RegisterSerializer, responses={201: PrivateUserSerializer}, summary="Create an account")
    def post(self, request: Request) -> Response:
        data = _parse(RegisterSerializer, request.data)
        user = services.register_user(**data)
        return Response(private_user_dict(user), status=status.HTTP_201_CREATED)


class LoginView(_Anonymous):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(tags=TAG_AUTH, request=LoginSerializer, responses=LoginResponseSerializer, summary="Log in: tokens and the user")
    def post(self, request: Request) -> Response:
        data = _parse(LoginSerializer, request.data)
        user, tokens = services.log_in(username=data["username"], password=data["password"])
        return Response({**tokens, "user": private_user_dict(user)})


class RefreshView(_Anonymous):
    @extend_schema(
        tags=TAG_AUTH,
        request=RefreshSerializer,
        responses=TokenPairSerializer,
        summary="Trade a refresh token for a new pair (the old refresh token is spent)",
    )
    def post(self, request: Request) -> Response:
        data = _parse(RefreshSerializer, request.data)
        return Response(services.rotate_refresh_token(refresh=data["refresh"]))


class LogoutView(_Anonymous):
    @extend_schema(tags=TAG_AUTH, request=RefreshSerializer, responses={204: None}, summary="Log out: blacklist the refresh token")
    def post(self, request: Request) -> Response:
        data = _parse(RefreshSerializer, request.data)
        services.log_out(refresh=data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileView(APIView):
    @extend_schema(tags=TAG_USERS, responses=PrivateUserSerializer, summary="My profile")
    def get(self, request: Request) -> Response:
        return Response(private_user_dict(request.user))

    @extend_schema(
        tags=TAG_USERS,
        request=ProfileUpdateSerializer,
        responses=PrivateUserSerializer,
        summary="Replace my profile (every editable field)",
    )
    def put(self, request: Request) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        tags=TAG_USERS,
        request=ProfileUpdateSerializer(partial=True),
        responses=PrivateUserSerializer,
        summary="Change some of my profile fields",
    )
    def patch(self, request: Request) -> Response:
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        data = _parse(ProfileUpdateSerializer, request.data, partial=partial)
        user = services.update_profile(user_id=request.user.id, **data)
        return Response(private_user_dict(user))


class LookupView(APIView):
    @extend_schema(
        tags=TAG_USERS,
        parameters=[OpenApiParameter("username", str, required=True)],
        responses=PublicUserSerializer,
        summary="Find a user by username (public profile)",
    )
    def get(self, request: Request) -> Response:
        user = selectors.user_by_username(username=request.query_params.get("username", ""))
        return Response(public_user_dict(user))
