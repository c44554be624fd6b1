"""The push provider interface: one notification to one device token, one outcome."""
from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    # Same id for every notification of one conversation: the device shows the latest only.
    collapse_id: str
    # Custom keys for the app (all strings: FCM data values must be strings).
    data: dict[str, str] = field(default_factory=dict)


class Status(enum.Enum):
    SENT = "sent"
    INVALID_TOKEN = "invalid_token"  # the device is gone: delete its row
    RETRY = "retry"  # throttled or provider trouble: try again later
    FAILED = "failed"  # rejected for good (bad payload, bad topic, ...)


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str = ""
    http_status: int = 0
    # Seconds the provider asked us to wait (Retry-After), when it said so.
    retry_after: float | None = None


class PushProvider(Protocol):
    platform: str  # a messaging.models.Device.Platform value

    def send(self, token: str, notification: Notification) -> Outcome: ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
