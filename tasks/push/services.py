"""Offline push: tell a user's devices about a message they did not get on a socket.

Rules, in order, for each user of a push task:
- not the sender, not muted in the conversation (unless the message @mentions them), and still without a live socket
  (presence is checked again here: the user may have come back since the task was sent);
- each Device of a configured platform gets one notification;
- collapse: one notification per device and conversation per PUSH_COLLAPSE_WINDOW_SECONDS
  (a cache key taken with add()); the provider-side collapse id (conversation) makes the
  device show only the latest one of a conversation anyway;
- a dead token (APNs 410 / 400 BadDeviceToken, FCM 404 UNREGISTERED) deletes the Device;
- throttling and provider errors are retried by the task; devices already served are
  remembered so a retry never notifies them twice.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from gochat_site import metrics
from messaging.cache import muted_user_ids
from messaging.models import Device, Message
from messaging.presence import get_presence
from messaging.services import delete_device_by_token
from tasks.push import stats
from tasks.push.base import Notification, PushProvider, Status

logger = logging.getLogger(__name__)

PREVIEW_LENGTH = 120
# How long a served (message, device) pair is remembered against retries.
DONE_TTL_SECONDS = 86400

_providers_lock = threading.Lock()
_providers: dict[tuple, dict[str, PushProvider]] = {}


class PushRetryLater(Exception):
    """Some devices could not be served now; the task retries them."""

    def __init__(self, pending: int, retry_after: float | None) -> None:
        super().__init__(f"{pending} device(s) to retry")
        self.pending = pending
        self.retry_after = retry_after


@dataclass
class PushReport:
    sent: int = 0
    failed: int = 0
    removed: int = 0
    collapsed: int = 0
    pending: int = 0
    retry_after: float | None = None
    skipped_users: set[int] = field(default_factory=set)


def _config_key() -> tuple:
    return (
        os.getpid(),
        settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_TOPIC, settings.APNS_PRIVATE_KEY_PATH, settings.APNS_URL,
        settings.FCM_SERVICE_ACCOUNT_FILE, settings.FCM_URL,
    )


def get_providers() -> dict[str, PushProvider]:
    """The configured providers by platform; empty when push is not configured. Built once
    per process and configuration, so HTTP connections and auth tokens are reused."""
    key = _config_key()
    with _providers_lock:
        providers = _providers.get(key)
        if providers is None:
            providers = _build_providers()
            _providers[key] = providers
        return providers


def _build_providers() -> dict[str, PushProvider]:
    providers: dict[str, PushProvider] = {}
    apns = (settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_TOPIC, settings.APNS_PRIVATE_KEY_PATH)
    if all(apns):
        from tasks.push.apns import ApnsProvider

        providers["apns"] = ApnsProvider(
            key_id=settings.APNS_KEY_ID,
            team_id=settings.APNS_TEAM_ID,
            topic=settings.APNS_TOPIC,
            private_key=Path(settings.APNS_PRIVATE_KEY_PATH).read_text(),
            url=settings.APNS_URL,
        )
    elif any(apns):
        logger.warning("push_apns_misconfigured", extra={"missing": [n for n, v in zip(
            ("APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC", "APNS_PRIVATE_KEY_PATH"), apns) if not v]})
    if settings.FCM_SERVICE_ACCOUNT_FILE:
        from tasks.push.fcm import FcmProvider

        account = json.loads(Path(settings.FCM_SERVICE_ACCOUNT_FILE).read_text())
        providers["fcm"] = FcmProvider(service_account=account, url=settings.FCM_URL)
    return providers


def reset_providers() -> None:
    """Tests: drop the cached providers (and their connections and tokens)."""
    with _providers_lock:
        built = [p for group in _providers.values() for p in group.values()]
        _providers.clear()
    for provider in built:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def build_notification(message: Message) -> Notification:
    sender = message.sender.display_name
    if message.message_type == Message.Type.TEXT:
        preview = message.content if len(message.content) <= PREVIEW_LENGTH else message.content[:PREVIEW_LENGTH - 1] + "…"
    else:
        preview = f"[{message.message_type}]"
    group = message.conversation.group
    if group is not None:
        title, body = group.name, f"{sender}: {preview}"
    else:
        title, body = sender, preview
    return Notification(
        title=title,
        body=body,
        collapse_id=f"conv-{message.conversation_id}",
        data={"conversation_id": str(message.conversation_id), "message_id": str(message.id), "seq": str(message.seq)},
    )


def _offline(user_ids: list[int]) -> list[int]:
    presence = get_presence()
    batch = max(1, settings.PRESENCE_BATCH_SIZE)
    offline: list[int] = []
    for start in range(0, len(user_ids), batch):
        chunk = user_ids[start : start + batch]
        live = presence.lookup(chunk)
        offline.extend(u for u in chunk if not live.get(u))
    return offline


def push_message(*, message_id: int, user_ids: list[int]) -> PushReport:
    """Notify the devices of `user_ids` about one message. Raises PushRetryLater when
    some devices should be tried again; the counters are recorded either way."""
    report = PushReport()
    providers = get_providers()
    if not providers:
        logger.info("push_disabled", extra={"message_id": message_id, "users": len(user_ids)})
        return report
    message = (
        Message.objects.select_related("sender", "conversation__group").filter(id=message_id).first()
    )
    if message is None or message.status != Message.Status.NORMAL:
        logger.info("push_message_gone", extra={"message_id": message_id})
        return report
    # Mute silences a conversation, not a mention of oneself (as Slack and Zulip do).
    muted = muted_user_ids(message.conversation_id) - set(message.mentions or ())
    candidates = sorted({int(u) for u in user_ids} - muted - {message.sender_id})
    targets = _offline(candidates)
    report.skipped_users = {int(u) for u in user_ids} - set(targets)
    devices = list(Device.objects.filter(user_id__in=targets, platform__in=list(providers)).order_by("id"))
    notification = build_notification(message) if devices else None
    window = settings.PUSH_COLLAPSE_WINDOW_SECONDS
    for device in devices:
        done_key = f"push:done:{message.id}:{device.id}"
        if cache.get(done_key):
            continue
        window_key = f"push:window:{device.id}:{message.conversation_id}"
        if window > 0 and not cache.add(window_key, message.id, timeout=window):
            if cache.get(window_key) != message.id:
                report.collapsed += 1
                metrics.PUSH_OUTCOMES.labels(platform=device.platform, outcome="collapsed").inc()
                continue
        outcome = providers[device.platform].send(device.token, notification)
        metrics.PUSH_OUTCOMES.labels(platform=device.platform, outcome=outcome.status.value).inc()
        fields = {"message_id": message.id, "device_id": device.id, "platform": device.platform,
                  "reason": outcome.reason, "http_status": outcome.http_status}
        if outcome.status is Status.SENT:
            cache.set(done_key, 1, timeout=DONE_TTL_SECONDS)
            report.sent += 1
        elif outcome.status is Status.INVALID_TOKEN:
            delete_device_by_token(token=device.token)
            report.failed += 1
            report.removed += 1
            logger.info("push_device_removed", extra=fields)
        elif outcome.status is Status.RETRY:
            # Free the window so the retry of this very message is not collapsed away.
            if window > 0 and cache.get(window_key) == message.id:
                cache.delete(window_key)
            report.pending += 1
            if outcome.retry_after is not None:
                report.retry_after = max(report.retry_after or 0.0, outcome.retry_after)
            logger.warning("push_retry", extra={**fields, "retry_after": outcome.retry_after})
        else:
            report.failed += 1
            logger.warning("push_failed", extra=fields)
    stats.record(sent=report.sent, failed=report.failed)
    logger.info(
        "push_done",
        extra={"message_id": message.id, "devices": len(devices), "sent": report.sent, "failed": report.failed,
               "removed": report.removed, "collapsed": report.collapsed, "pending": report.pending},
    )
    if report.pending:
        raise PushRetryLater(report.pending, report.retry_after)
    return report


def give_up(*, message_id: int, pending: int) -> None:
    """The task ran out of retries: count the devices never served as failed."""
    stats.record(failed=pending)
    logger.error("push_gave_up", extra={"message_id": message_id, "devices": pending})
