"""Origin check of the WebSocket route: Channels' AllowedHostsOriginValidator, except that
a handshake without an Origin header passes.

Browsers always send Origin, so a page from a foreign site is still refused. Native and
server clients (mobile apps, CLI, load tests) send none; they are not exposed to
cross-site WebSocket hijacking because the gateway authenticates by token, never cookie.
"""
from __future__ import annotations

from typing import Any

from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator


class _OriginValidatorAllowingNative(OriginValidator):
    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


def allowed_hosts_origin_validator(application: Any) -> OriginValidator:
    allowed = AllowedHostsOriginValidator(application).allowed_origins
    return _OriginValidatorAllowingNative(application, allowed)
