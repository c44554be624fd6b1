"""Writes to user accounts and their JWT sessions: register, log in, rotate, log out,
edit the profile. Every path that changes an account or a token goes through here."""
from __future__ import annotations

import logging

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from gochat_site.errors import Conflict, InvalidParams, NotFound, Unauthorized

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("nickname", "email", "avatar", "status", "send_read_receipts")


def register_user(*, username: str, password: str, email: str = "", nickname: str = "") -> User:
    """Create an account; the password must pass Django's AUTH_PASSWORD_VALIDATORS."""
    username = User.normalize_username(username.strip())
    # Usernames are how people find each other (users/lookup): "Alice" and "alice"
    # would be two accounts nobody can tell apart, so uniqueness ignores case.
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("username already taken", {"username": ["A user with that username already exists."]})
    user = User(username=username, email=User.objects.normalize_email(email), nickname=nickname)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidParams("password rejected", {"password": list(exc.messages)}) from None
    # The password hash (PBKDF2, deliberately slow) runs before the transaction: on
    # SQLite a write transaction holds the one database-wide write lock, and hashing
    # inside it made concurrent registrations queue behind each other's hashes until
    # they failed with "database is locked".
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name.
        raise Conflict("username already taken", {"username": ["A user with that username already exists."]}) from None
    logger.info("user_registered", extra={"user_id": user.id})
    return user


def issue_tokens(*, user: User) -> dict[str, str]:
    """A new refresh token (recorded as outstanding, so it can be blacklisted) and its access token."""
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def log_in(*, username: str, password: str) -> tuple[User, dict[str, str]]:
    """Check the credentials and open a session; one message for every failure, so the
    answer does not reveal which usernames exist."""
    user = authenticate(username=username, password=password)
    if user is None:
        raise Unauthorized("invalid username or password")
    update_last_login(None, user)
    logger.info("user_logged_in", extra={"user_id": user.id})
    return user, issue_tokens(user=user)


def _parse_refresh(refresh: str) -> RefreshToken:
    """Signature, expiry, type and blacklist checked; any failure is a 1002."""
    try:
        return RefreshToken(refresh)
    except TokenError as exc:
        raise Unauthorized(str(exc), {"token": ["refresh"]}) from None


def _blacklist_once(token: RefreshToken) -> None:
    """Blacklist the token; if another request blacklisted it first (a replay racing the
    legitimate rotation), refuse: each refresh token is good for exactly one use."""
    outstanding, _ = token.outstand()
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise Unauthorized("Token is blacklisted", {"token": ["refresh"]}) from None


@transaction.atomic
def rotate_refresh_token(*, refresh: str) -> dict[str, str]:
    """Trade a refresh token for a new access and refresh pair; the old one is spent."""
    token = _parse_refresh(refresh)
    user_id = token.payload.get(jwt_settings.USER_ID_CLAIM)
    user = User.objects.filter(id=user_id, is_active=True).first()
    if user is None:
        raise Unauthorized("no active account for this token")
    _blacklist_once(token)
    return issue_tokens(user=user)


@transaction.atomic
def log_out(*, refresh: str) -> None:
    """End the session of this refresh token: it can no longer be rotated. Access tokens
    already issued stay valid until they expire (ACCESS_TOKEN_LIFETIME), as JWTs do."""
    token = _parse_refresh(refresh)
    _blacklist_once(token)
    logger.info("user_logged_out", extra={"user_id": token.payload.get(jwt_settings.USER_ID_CLAIM)})


@transaction.atomic
def update_profile(*, user_id: int, **fields: str | bool) -> User:
    """Change the editable profile fields given; the username never changes."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidParams("these fields cannot be changed", {name: ["This field is read-only."] for name in sorted(unknown)})
    user = User.objects.select_for_update().filter(id=user_id, is_active=True).first()
    if user is None:
        raise NotFound("user not found")
    for name, value in fields.items():
        setattr(user, name, value)
    if fields:
        user.save(update_fields=list(fields))
    return user


def ensure_demo_admin(*, password: str) -> tuple[User, bool]:
    """The demo superuser of seed_demo (accounts.checks.DEMO_ADMIN_USERNAME), created with
    `password` if missing; returns it and whether it was created. An existing one keeps
    its password. Only where settings.ALLOW_DEMO_ADMIN: elsewhere an account with a
    published password is refused (system check accounts.E001)."""
    from django.conf import settings

    from accounts.checks import DEMO_ADMIN_USERNAME

    if not settings.ALLOW_DEMO_ADMIN:
        raise PermissionError("the demo superuser is not allowed here (settings.ALLOW_DEMO_ADMIN is off)")
    existing = User.objects.filter(username=DEMO_ADMIN_USERNAME).first()
    if existing is not None:
        return existing, False
    user = User.objects.create_superuser(username=DEMO_ADMIN_USERNAME, password=password, nickname="Demo admin")
    logger.info("demo_admin_created", extra={"user_id": user.id})
    return user, True
