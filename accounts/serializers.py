"""Request parsing and response shapes of the accounts REST API, plus the id and
string fields every app's serializers share (accounts is the lowest app).

Serializers only translate: uniqueness, password rules and token checks live in
accounts.services. Ids are strings in every response.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.validators import RegexValidator
from rest_framework import serializers

from gochat_site.request_limits import WHITESPACE
from gochat_site.errors import InvalidParams
from gochat_site.id_params import MAX_ID, parse_id


class IdField(serializers.Field):
    """A 64-bit id: a string of digits in JSON (gochat_site.id_params); a JSON integer
    in range is accepted on input. Documented by gochat_site.api_schema."""

    default_error_messages = {"invalid": "A valid id is required."}

    def to_internal_value(self, data: Any) -> int:
        try:
            return parse_id(data, self.field_name or "id")
        except InvalidParams:
            self.fail("invalid")

    def to_representation(self, value: Any) -> str:
        return str(value)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, lists and objects instead of stringifying them,
    and measures max_length on the text as sent, before trimming, so the limit the
    schema states is the one applied."""

    default_error_messages = {"not_a_string": "A string is required."}

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if data is not serializers.empty and data is not None:
            if not isinstance(data, str):
                self.fail("not_a_string")
            if self.max_length is not None and len(data) > self.max_length:
                self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer as JSON writes it: no strings, no booleans, no fractions (an integral
    float such as 2.0 is an integer in JSON Schema too). In a query string, ASCII digits
    with an optional minus sign. The range defaults to what a BIGINT column holds."""

    default_error_messages = {"invalid": "A valid integer is required."}
    _QUERY_INTEGER = re.compile(r"-?[0-9]{1,19}")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -MAX_ID - 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str) and self._reads_query_string() and self._QUERY_INTEGER.fullmatch(data):
            return int(data)
        self.fail("invalid")

    def _reads_query_string(self) -> bool:
        return bool(self.root.context.get("query"))


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF's BooleanField would also take "yes", 1 or "on"."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class RequestSerializer(serializers.Serializer):
    """A request body (or query string, with context={"query": True}) that names only
    known fields: an unknown one is refused with 1001, as the schema (additionalProperties
    false, gochat_site.api_schema) says, rather than silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and not self.context.get("query"):
            extra = sorted(set(data) - set(self.fields))
            if extra:
                raise serializers.ValidationError({name: ["Unknown field."] for name in extra})
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    """An email address as sent (no trimming) of at most 254 characters, the column's
    size; a number or list is refused rather than stringified."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 254)
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# What an avatar link may be (the schema states the same): http(s), an ASCII host name or
# IPv4 address with an optional port, then any path/query without whitespace or NUL.
HTTP_URL_REGEX = rf"https?://[A-Za-z0-9.-]+(?::[0-9]{{1,5}})?(?:[/?#][^{WHITESPACE}\x00]*)?"


class HttpUrlField(StrictCharField):
    """An http(s) URL as sent (no trimming), or "" where blank is allowed."""

    default_error_messages = {"invalid_url": "An http(s) URL is required."}
    _URL = re.compile(HTTP_URL_REGEX)

    def __init__(self, **kwargs: Any) -> None:
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not self._URL.fullmatch(value):
            self.fail("invalid_url")
        return value


def parse_request(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate a request body with `serializer_class`; 400/1001 naming the bad fields."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def parse_query(serializer_class: type[serializers.Serializer], params: Any) -> dict[str, Any]:
    """Validate query parameters with `serializer_class` (unknown parameters are ignored,
    as HTTP caches and proxies add their own). Read as a plain dict of the last value per
    name: DRF would take `?name=` on a QueryDict for an absent optional field, where the
    schema calls "" a value that must match the field's rule."""
    data = params.dict() if hasattr(params, "dict") else params
    return parse_request(serializer_class, data, context={"query": True})


# --- requests --------------------------------------------------------------------------

# Not all digits (Django's NumericPasswordValidator), no NUL; stated here so the schema
# shows it. Common or username-like passwords are refused by accounts.services only.
_PASSWORD_REGEX = r"^[^\x00]*[^0-9\x00][^\x00]*\Z"


def _password_min_length() -> int:
    """The min_length of Django's MinimumLengthValidator in AUTH_PASSWORD_VALIDATORS."""
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return int(validator.get("OPTIONS", {}).get("min_length", 8))
    return 1


class RegisterSerializer(RequestSerializer):
    # Not trimmed: the validator's pattern is the whole rule, as the schema states it.
    username = StrictCharField(max_length=150, trim_whitespace=False, validators=[UnicodeUsernameValidator()])
    # Passwords are taken as typed: no trimming; Django's validators judge them too.
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    email = StrictEmailField(required=False, allow_blank=True, default="")
    nickname = StrictCharField(max_length=64, required=False, allow_blank=True, default="")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # Read per request, so the schema states the deployment's PASSWORD_MIN_LENGTH.
        fields["password"] = StrictCharField(
            min_length=_password_min_length(),
            max_length=128,
            trim_whitespace=False,
            write_only=True,
            validators=[RegexValidator(_PASSWORD_REGEX, "This password is entirely numeric.")],
        )
        return fields


class LoginSerializer(RequestSerializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class RefreshSerializer(RequestSerializer):
    refresh = StrictCharField()


class ProfileUpdateSerializer(RequestSerializer):
    """PUT sends every field (partial=False), PATCH any of them; username is not here,
    and a request that names it is refused (RequestSerializer) rather than ignored."""

    nickname = StrictCharField(max_length=64, allow_blank=True)
    email = StrictEmailField(allow_blank=True)
    avatar = HttpUrlField(max_length=500, allow_blank=True)
    status = StrictCharField(max_length=140, allow_blank=True)
    # Optional even for PUT: clients written before it existed keep working.
    send_read_receipts = StrictBooleanField(required=False, help_text="Tell other members when I read (receipts).")


class LookupQuerySerializer(RequestSerializer):
    username = StrictCharField(max_length=150)


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
    send_read_receipts = serializers.BooleanField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LoginResponseSerializer(TokenPairSerializer):
    user = PrivateUserSerializer()
