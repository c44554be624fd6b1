"""What the OpenAPI schema (drf-spectacular, /api/schema/) says beyond what it infers:
the shared error response, and the exact input rules of the strict fields of
accounts.serializers, so that every request the schema allows is one the API accepts
and every request it forbids is refused (tests/test_openapi_contract.py checks this).

Imported by gochat_site.urls and by the views, which registers the extensions below.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from gochat_site.id_params import ID_SCHEMA, MAX_ID
from gochat_site.request_limits import WHITESPACE

# Non-empty text without NUL (PostgreSQL text cannot hold it; DRF refuses it), and the
# same with at least one character that is not whitespace (a required field is trimmed,
# then must not be blank).
NON_EMPTY_PATTERN = r"^[^\x00]+$"
NOT_BLANK_PATTERN = rf"^[^\x00]*[^{WHITESPACE}\x00][^\x00]*$"


class ErrorSerializer(serializers.Serializer):
    """The body of every error (gochat_site.api_errors): codes are DESIGN §4's."""

    code = serializers.IntegerField(help_text="1001 invalid params .. 1007 conflict (docs/api.md)")
    message = serializers.CharField()
    details = serializers.DictField(help_text="per code: the offending fields, retry_after, max_bytes, max_depth …")


_WHY = {
    400: "invalid parameters or body (1001): details names the fields, or the limit hit (max_depth, max_fields)",
    401: "no, expired or invalid credentials (1002)",
    403: "not allowed: not a member, not owner/admin (1005)",
    404: "unknown id, user or URL (1003); a malformed id in the path is an unknown URL",
    409: "conflict with the current state (1007)",
    413: "request body larger than API_MAX_BODY_BYTES (1001, details.max_bytes)",
    429: "rate limited (1006, details.retry_after and the Retry-After header)",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The `responses` entries of these error statuses, all with the shared error body."""
    return {status: OpenApiResponse(ErrorSerializer, description=_WHY[status]) for status in statuses}


# Statuses every route of a kind can answer, so each view lists only its own extras.
AUTHENTICATED = (401,)
WITH_BODY = (400, 413)
WITH_QUERY = (400,)


class IdFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "accounts.serializers.IdField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "response":
            return {"type": "string"}
        return {"oneOf": [dict(ID_SCHEMA), {"type": "integer", "minimum": 1, "maximum": MAX_ID}]}


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """Adds the NUL and blank rules; an http(s) URL field gets its own pattern."""

    target_class = "accounts.serializers.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        from accounts.serializers import HTTP_URL_REGEX, HttpUrlField

        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if direction == "response":
            return schema
        # A blank-allowed field is documented by drf-spectacular as oneOf [pattern, ""], so
        # its pattern must not match "" too (else "" would match both, violating oneOf).
        if isinstance(field, HttpUrlField):
            schema["pattern"] = f"^{HTTP_URL_REGEX}$"
        elif any(hasattr(v, "regex") for v in field.validators):
            pass  # the field's own RegexValidator becomes the pattern, and is the whole rule
        elif field.allow_blank or not field.trim_whitespace:
            schema["pattern"] = NON_EMPTY_PATTERN
        else:
            schema["pattern"] = NOT_BLANK_PATTERN
        return schema


class StrictEmailFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "accounts.serializers.StrictEmailField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["maxLength"] = self.target.max_length
            if self.target.allow_blank:
                # "" clears the address; anything else must be an address.
                return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
        return schema


class RequestSerializerExtension(OpenApiSerializerExtension):
    """Request bodies name only their fields (accounts.serializers.RequestSerializer)."""

    target_class = "accounts.serializers.RequestSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        if "__doc__" not in vars(type(self.target)) or not type(self.target).__doc__:
            # Not RequestSerializer's own docstring, inherited by every body.
            schema.pop("description", None)
        # Rules between fields the field schemas cannot state ("content unless attachment_id").
        any_of = getattr(self.target, "schema_any_of", None)
        if any_of:
            schema["anyOf"] = any_of
        min_properties = getattr(self.target, "min_properties", 0)
        if min_properties:
            schema["minProperties"] = min_properties
            schema["maxProperties"] = getattr(self.target, "max_properties", None) or len(schema["properties"])
        return schema


def require_bodies_with_min_properties(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: a body whose schema needs at least one property (a
    choice between fields, none required on its own) cannot be absent either;
    drf-spectacular only marks a body required when some field is."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                component = components.get(ref.rsplit("/", 1)[-1], {})
                if component.get("minProperties"):
                    body["required"] = True
    return result
