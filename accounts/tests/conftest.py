"""Fixtures of the accounts API tests."""
from __future__ import annotations

import pytest

from accounts.tests.support import clear_throttle_history


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Login and register are throttled per client address, and every test client is
    # 127.0.0.1: without this, earlier tests would spend later tests' budget.
    clear_throttle_history()
    yield
    clear_throttle_history()
