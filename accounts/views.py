"""REST adapters of the accounts app: parse with a serializer, call one service or
selector, shape the answer with accounts.representations."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
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
    LookupQuerySerializer,
    PrivateUserSerializer,
    ProfileUpdateSerializer,
    PublicUserSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    parse_query,
    parse_request,
)
from accounts.throttles import SettingsScopedRateThrottle
from gochat_site.api_schema import AUTHENTICATED, WITH_BODY, WITH_QUERY, error_responses

TAG_AUTH = ["auth"]
TAG_USERS = ["users"]


def _parse(serializer_class, data: Any, **kwargs: Any) -> dict:  # noqa: ANN001 - any Serializer class
    return parse_request(serializer_class, data, **kwargs)


class _Anonymous(APIView):
    """Routes whose credential is in the body. No authentication classes: a stale bearer
    header sent along (a client signing out with an expired access token) must not
    turn the request into a 401."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(_Anonymous):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        tags=TAG_USERS,
        request=RegisterSerializer,
        responses={201: PrivateUserSerializer, **error_responses(*WITH_BODY, 409, 429)},
        summary="Create an account",
    )
    def post(self, request: Request) -> Response:
        data = _parse(RegisterSerializer, request.data)
        user = services.register_user(**data)
        return Response(private_user_dict(user), status=status.HTTP_201_CREATED)


class LoginView(_Anonymous):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        tags=TAG_AUTH,
        request=LoginSerializer,
        responses={200: LoginResponseSerializer, **error_responses(*WITH_BODY, 401, 429)},
        summary="Log in: tokens and the user",
    )
    def post(self, request: Request) -> Response:
        data = _parse(LoginSerializer, request.data)
        user, tokens = services.log_in(username=data["username"], password=data["password"])
        return Response({**tokens, "user": private_user_dict(user)})


class RefreshView(_Anonymous):
    @extend_schema(
        tags=TAG_AUTH,
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **error_responses(*WITH_BODY, 401)},
        summary="Trade a refresh token for a new pair (the old refresh token is spent)",
    )
    def post(self, request: Request) -> Response:
        data = _parse(RefreshSerializer, request.data)
        return Response(services.rotate_refresh_token(refresh=data["refresh"]))


class LogoutView(_Anonymous):
    @extend_schema(
        tags=TAG_AUTH,
        request=RefreshSerializer,
        responses={204: None, **error_responses(*WITH_BODY, 401)},
        summary="Log out: blacklist the refresh token",
    )
    def post(self, request: Request) -> Response:
        data = _parse(RefreshSerializer, request.data)
        services.log_out(refresh=data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileView(APIView):
    @extend_schema(tags=TAG_USERS, responses={200: PrivateUserSerializer, **error_responses(*AUTHENTICATED)}, summary="My profile")
    def get(self, request: Request) -> Response:
        return Response(private_user_dict(request.user))

    @extend_schema(
        tags=TAG_USERS,
        request=ProfileUpdateSerializer,
        responses={200: PrivateUserSerializer, **error_responses(*AUTHENTICATED, *WITH_BODY)},
        summary="Replace my profile (every editable field)",
    )
    def put(self, request: Request) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        tags=TAG_USERS,
        request=ProfileUpdateSerializer(partial=True),
        responses={200: PrivateUserSerializer, **error_responses(*AUTHENTICATED, *WITH_BODY)},
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
        parameters=[LookupQuerySerializer],
        responses={200: PublicUserSerializer, **error_responses(*AUTHENTICATED, *WITH_QUERY, 404)},
        summary="Find a user by username (public profile)",
    )
    def get(self, request: Request) -> Response:
        query = parse_query(LookupQuerySerializer, request.query_params)
        user = selectors.user_by_username(username=query["username"])
        return Response(public_user_dict(user))
