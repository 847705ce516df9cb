"""Synthetic minute-level demand traces with known properties, to check defaults beyond the real traces.

Every trace is seeded (the same name and seed give the same values on any machine) and built from a
mean curve plus count noise:

- ``daily-low`` / ``daily-high``: a weekday/weekend daily curve (peak mid-afternoon, night trough at
  about a fifth of the peak) at p50 ~35/min (a small web server) and ~3,000/min (a busy stream), Poisson.
- ``bursty-low``: the low curve with over-dispersed counts (gamma-Poisson, variance ~3x the mean, as
  real request logs show: requests arrive in page-sized bursts).
- ``bursty-high``: the busy curve with bot-like bursts (about one an hour, +10 % to +150 %, 1 to ~40
  minutes) and over-dispersed counts: a busy public event stream.
- ``flash-crowd``: a mid-volume daily curve plus sudden crowds (3-6x within two minutes, decaying over
  20-60 minutes) about every other day at random times: nothing to forecast, everything to react to.
- ``trend``: the daily curve growing 2.5x over the trace, with a sudden +40 % level shift two thirds in.
- ``steady-low``: no seasonality at all, Poisson around 20/min: a predictive lever must stay out of the way.

Noise: Poisson for means below 50 (Knuth's product method), the normal approximation N(mean, mean),
rounded and floored at 0, above it (the difference is far below anything a scaling rule can see).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime

from autopilot_tools.backtest.trace import Trace

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
_DAY = 1440


def daily_curve(minute: int) -> float:
    """Mean demand shape in [~0.2, 1]: night trough, morning ramp, mid-afternoon peak; weekends at 60 %."""
    day, of_day = divmod(minute, _DAY)
    hour = of_day / 60
    shape = 0.2 + 0.8 * math.exp(-((hour - 14.5) / 4.5) ** 2)  # peak at 14:30, ~4.5 h wide
    shape += 0.12 * math.exp(-((hour - 10) / 1.2) ** 2)  # a morning bump
    weekend = (day % 7) >= 5
    return shape * (0.6 if weekend else 1.0)


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean >= 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def overdispersed(rng: random.Random, mean: float, dispersion: float = 3.0) -> int:
    """Gamma-Poisson counts with variance ~ ``dispersion`` x mean."""
    if mean <= 0:
        return 0
    shape = mean / (dispersion - 1)  # variance = mean + mean^2 / shape = dispersion x mean
    return poisson(rng, rng.gammavariate(shape, mean / shape))


def _series(days: int, mean: Callable[[int], float], noise: Callable[[random.Random, float], int],
            rng: random.Random) -> tuple[float, ...]:
    return tuple(float(noise(rng, mean(t))) for t in range(days * _DAY))


def _flash_crowds(rng: random.Random, days: int) -> list[tuple[int, float, float]]:
    crowds: list[tuple[int, float, float]] = []
    t = rng.randrange(6 * 60, 36 * 60)
    while t < days * _DAY:
        crowds.append((t, rng.uniform(2.0, 5.0), rng.uniform(20, 60)))  # (start, extra x base, decay minutes)
        t += rng.randrange(24 * 60, 72 * 60)
    return crowds


def _bursts(rng: random.Random, days: int) -> list[tuple[int, float, int]]:
    """Bot-like bursts: about one an hour, +10 % to +150 % (log-uniform), lasting 1 to ~40 minutes."""
    bursts: list[tuple[int, float, int]] = []
    t = 0
    while t < days * _DAY:
        t += int(rng.expovariate(1 / 60)) + 1
        bursts.append((t, math.exp(rng.uniform(math.log(0.1), math.log(1.5))), 1 + int(rng.expovariate(1 / 8))))
    return bursts


def generate(name: str, seed: int = 1) -> Trace:
    """One of ``NAMES``, seeded."""
    rng = random.Random(f"{name}:{seed}")  # noqa: S311  # seeded demand, not for security  # nosec B311
    if name == "daily-low":
        values = _series(28, lambda t: 105 * daily_curve(t), poisson, rng)
    elif name == "daily-high":
        values = _series(22, lambda t: 9500 * daily_curve(t), poisson, rng)
    elif name == "bursty-low":
        values = _series(28, lambda t: 105 * daily_curve(t), overdispersed, rng)
    elif name == "flash-crowd":
        crowds = _flash_crowds(rng, 21)

        def crowd_mean(t: int) -> float:
            base = 400 * daily_curve(t)
            extra = 0.0
            for start, height, decay in crowds:
                if start <= t < start + 6 * decay:
                    rise = min(1.0, (t - start + 1) / 2)  # full height within two minutes
                    extra += 400 * height * rise * math.exp(-(t - start) / decay)
            return base + extra
        values = _series(21, crowd_mean, poisson, rng)
    elif name == "trend":
        days = 21

        def trend_mean(t: int) -> float:
            growth = 1 + 1.5 * t / (days * _DAY)
            shift = 1.4 if t >= days * _DAY * 2 // 3 else 1.0
            return 300 * daily_curve(t) * growth * shift
        values = _series(days, trend_mean, poisson, rng)
    elif name == "bursty-high":
        bursts = _bursts(rng, 22)

        def burst_mean(t: int) -> float:
            extra = sum(height for start, height, length in bursts if start <= t < start + length)
            return 9500 * daily_curve(t) * (1 + extra)
        values = _series(22, burst_mean, lambda r, m: overdispersed(r, m, 3.0), rng)
    elif name == "steady-low":
        values = _series(14, lambda t: 20.0, poisson, rng)
    else:
        raise ValueError(f"unknown synthetic trace {name!r} (one of {', '.join(NAMES)})")
    return Trace(name=f"synthetic:{name}", start=START, values=values, source_period=60)


NAMES = ("daily-low", "daily-high", "bursty-low", "bursty-high", "flash-crowd", "trend", "steady-low")
