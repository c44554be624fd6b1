"""Request parsing and response shapes of the accounts REST API, plus the id and
string fields every app's serializers share (accounts is the lowest app).

Serializers only translate: uniqueness, password rules and token checks live in
accounts.services. Ids are strings in every response.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class IdField(serializers.Field):
    """A 64-bit id: a string of digits in JSON; an integer is accepted on input."""

    default_error_messages = {"invalid": "A valid id is required."}

    def to_internal_value(self, data: Any) -> int:
        # bool is an int subclass: `true` must not become id 1.
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and data.strip().isdigit():
            value = int(data.strip())
        else:
            self.fail("invalid")
        if not 0 < value < 2**63:
            self.fail("invalid")
        return value

    def to_representation(self, value: Any) -> str:
        return str(value)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, lists and objects instead of stringifying them."""

    default_error_messages = {"not_a_string": "A string is required."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


# --- requests --------------------------------------------------------------------------

class RegisterSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    # Passwords are taken as typed: no trimming, Django's validators judge them.
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    nickname = StrictCharField(max_length=64, required=False, allow_blank=True, default="")


class LoginSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class RefreshSerializer(serializers.Serializer):
    refresh = StrictCharField()


class ProfileUpdateSerializer(serializers.Serializer):
    """PUT sends every field (partial=False), PATCH any of them; username is not here,
    and a request that names it is refused rather than silently ignored."""

    nickname = StrictCharField(max_length=64, allow_blank=True)
    email = serializers.EmailField(allow_blank=True)
    avatar = serializers.URLField(max_length=500, allow_blank=True)
    status = StrictCharField(max_length=140, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        extra = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if extra:
            raise serializers.ValidationError({name: ["This field cannot be changed."] for name in extra})
        return attrs


# --- responses (schema of accounts.representations) ---------------------------------------

class PublicUserSerializer(serializers.Serializer):
    """accounts.representations.public_user_dict."""

    id = IdField()
    username = serializers.CharField()
    nickname = serializers.CharField()
    avatar = serializers.CharField()
    status = serializers.CharField()


class PrivateUserSerializer(PublicUserSerializer):
    """accounts.representations.private_user_dict."""

    email = serializers.CharField()
    date_joined = serializers.DateTimeField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LoginResponseSerializer(TokenPairSerializer):
    user = PrivateUserSerializer()
