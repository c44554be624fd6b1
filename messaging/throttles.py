"""Rate limits of the messaging REST API (answered with code 1006 by api_errors)."""
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
