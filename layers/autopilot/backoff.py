"""Jittered exponential back-off for the retries botocore does not make for us.

botocore retries a throttled or failed call; it does not retry a lost conditional write (our own
ConcurrentUpdate: another invocation wrote first) nor BatchGetItem's ``UnprocessedKeys`` (an answer,
not an error). Retrying those at once lets the invocations that collided collide again, and hammers a
throttled partition. "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): a delay
drawn uniformly from 0 to ``min(cap, base x 2^attempt)``.

The sleeper is injected (``ports.Dependencies.sleep``, ``StateTable(sleep=...)``): tests never sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

Sleep = Callable[[float], None]

BASE_SECONDS = 0.025
CAP_SECONDS = 1.0

_random = random.Random()  # noqa: S311  # nosec B311: jitter, not cryptography


def delay(attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS,
          rng: Callable[[], float] = _random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry): full jitter."""
    return rng() * min(cap, base * (2 ** max(0, attempt)))


def pause(sleep: Sleep, attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Sleep the jittered delay of retry ``attempt`` with ``sleep``; returns the delay."""
    seconds = delay(attempt, base, cap)
    if seconds > 0:
        sleep(seconds)
    return seconds


def real_sleep(seconds: float) -> None:
    time.sleep(seconds)
