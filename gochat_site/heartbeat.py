"""Liveness check of a heartbeat file: `python -m gochat_site.heartbeat FILE MAX_AGE`
exits 0 when FILE was modified less than MAX_AGE seconds ago, else 1. Standalone (no
Django start-up), so an exec probe every few seconds costs a bare interpreter."""
from __future__ import annotations

import os
import sys
import time


def check(path: str, max_age: float, now: float | None = None) -> tuple[bool, str]:
    try:
        age = (time.time() if now is None else now) - os.stat(path).st_mtime
    except OSError as exc:
        return False, f"no heartbeat file {path}: {exc.strerror}"
    if age >= max_age:
        return False, f"heartbeat {path} is {age:.0f}s old (max {max_age:.0f}s)"
    return True, f"heartbeat {path} is {age:.0f}s old"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gochat_site.heartbeat FILE MAX_AGE_SECONDS", file=sys.stderr)
        return 2
    ok, why = check(argv[0], float(argv[1]))
    print(why, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
