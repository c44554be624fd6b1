"""Rate limits of the REST API (answered with code 1006 by gochat_site.api_errors).

accounts is the lowest app, so the throttle class lives here and any app may use it.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import ScopedRateThrottle


class SettingsScopedRateThrottle(ScopedRateThrottle):
    """ScopedRateThrottle that reads the rate table when the request arrives.

    DRF copies DEFAULT_THROTTLE_RATES into a class attribute at import, so a rate
    changed later (override_settings in tests, a reloaded config) would be ignored.
    """

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        if self.scope in rates:
            return rates[self.scope]
        return super().get_rate()
