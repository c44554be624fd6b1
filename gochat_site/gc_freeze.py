"""Start-up objects out of the cyclic garbage collector's way.

A long-lived server holds hundreds of thousands of objects made at start-up (modules,
Django's app registry, URL resolvers, protobuf descriptors) that never become garbage,
and every full (generation 2) collection walks all of them: 93 ms in the middle of a
message on the embedded server under s1u (docs/benchmarks.md). gc.freeze() moves them to
a permanent generation that collections skip; what the process makes afterwards is
collected as before.
"""
from __future__ import annotations

import gc

from django.conf import settings


def freeze_startup_objects() -> None:
    """Collect once, then freeze what is left (call at the end of a role's start-up)."""
    if not settings.GC_FREEZE_AT_STARTUP:
        return
    gc.collect()
    gc.freeze()
