"""A service's demand forecast for targetTracking's predictive lever: pure Python, no I/O.

Imported only where a policy has a ``predictive`` block (the reconciler's cold start does not pay
for it otherwise). The model is deliberately small, explainable and cheap (a fit of 14 days of
5-minute points takes a few milliseconds):

    demand(t) = level x (1 + trend x days since the fit) x weekly[weekday(t)] x daily[slot(t)]

- ``daily``: the shape of a day in 5-minute slots (mean 1): per slot, the median over the history's
  days of (slot value / that day's mean), then smoothed over 15 minutes. Medians: one odd day (an
  outage, a launch) does not bend the shape.
- ``weekly``: each weekday's mean relative to the week (mean 1), from at least 7 days of history
  (all 1 before that), shrunk toward 1 by n / (n + 0.5) for a weekday seen n times.
- ``level`` and ``trend``: with two weeks, week over week (the last 7 days' mean against the 7
  before: no weekday pattern can bend it); with less, a least-squares line through the deseasonalised
  daily means. The trend is halved and capped at 10 % a day (a forecast should not run away).
- ``error``: the quality gate's evidence: the model fitted without the last day of history, scored
  on that day the way the rule uses it (each 5-minute slot predicted from the model's shape calibrated
  on the hour before it; weighted absolute percentage error). It is used only when that error is at
  most the policy's ``maxError`` *and* below a flat forecast's (that hour's mean: no shape at all), and
  not when it is older than two refresh periods. ``skill`` = 1 - (error / flat error)^2: how far the
  rule may trust it to lower its scale-in headroom.

How it is used (decide/target_tracking.py): only the *shape* matters. The rule calibrates the
forecast on its own recent loads (the median of load / forecast over its window), so the load
metric's unit and the level's error cancel, and takes the calibrated peak of the next task start.

Stored form (``to_item`` / ``from_item``): about 2 KB of JSON, checked against ``MAX_ITEM_BYTES``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

SLOT_SECONDS = 300
SLOTS_PER_DAY = 86400 // SLOT_SECONDS
MAX_ITEM_BYTES = 16_000  # the stored forecast (DynamoDB allows 400 KB; a byte budget keeps reads at 4 RCU)
_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: weekday(t) = days since it mod 7
_MIN_SHARE = 0.01  # a slot never forecasts below 1 % of the day's mean (ratios stay finite)


@dataclass(frozen=True)
class SeasonalForecast:
    """A fitted demand forecast (see the module docstring)."""

    fitted_at: datetime  # when it was fitted (the quality gate's age)
    level: float
    trend: float  # relative change per day
    daily: tuple[float, ...]  # SLOTS_PER_DAY values, mean 1
    weekly: tuple[float, ...]  # 7 values (Monday first), mean 1
    error: float  # on the last day of history, calibrated as the rule uses it (inf: not measurable)
    days: int  # days of history fitted
    max_error: float = 0.3
    max_age: timedelta = timedelta(hours=2)
    naive_error: float = math.inf  # persistence's error on the same day: the forecast must beat it
    origin: datetime | None = None  # the day the level and trend refer to (default: fitted_at)

    def at(self, moment: datetime) -> float:
        """Expected demand at ``moment`` in the history's unit (per slot)."""
        seconds = (moment - _EPOCH).total_seconds()
        day = math.floor(seconds / 86400)
        slot = int((seconds - day * 86400) // SLOT_SECONDS)
        ahead = (moment - (self.origin or self.fitted_at)).total_seconds() / 86400
        growth = max(0.1, 1 + self.trend * ahead)
        return self.level * growth * self.weekly[day % 7] * self.daily[slot]

    def usable(self, now: datetime) -> str | None:
        """Why the forecast must not be used now (the quality gate), or None."""
        if self.error > self.max_error:
            return f"its error on the last day of history was {self.error:.0%} (> {self.max_error:.0%})"
        if self.error >= self.naive_error:
            return (f"on the last day of history it did no better than persistence ({self.error:.0%} vs "
                    f"{self.naive_error:.0%})")
        if now - self.fitted_at > self.max_age:
            return f"it is older than {self.max_age}"
        return None

    @property
    def skill(self) -> float:
        """What the forecast's shape is worth, in [0, 1]: the share of a flat forecast's squared error (the
        quality gate's yardstick, on the same last day of history) that it removes, 1 - (error / naive error)^2;
        0 when either is not measurable. A robust rule moves its scale-in percentile this share of the way to
        ``trustedScaleInPercentile`` (decide/target_tracking.py)."""
        if math.isinf(self.error) or math.isinf(self.naive_error) or self.naive_error <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - (self.error / self.naive_error) ** 2))

    def gated(self, max_error: float, refresh_seconds: int) -> SeasonalForecast:
        """The same fit under a policy's gate: error bound and age (two refresh periods)."""
        return replace(self, max_error=max_error, max_age=timedelta(seconds=2 * refresh_seconds))

    # ------------------------------------------------------------------ stored form
    def to_item(self) -> dict[str, Any]:
        """A compact JSON-able document (relative values in thousandths)."""
        item = {"v": 1, "at": self.fitted_at.isoformat(), "origin": (self.origin or self.fitted_at).isoformat(),
                "level": round(self.level, 6), "trend": round(self.trend, 6),
                "daily": [round(v * 1000) for v in self.daily], "weekly": [round(v * 1000) for v in self.weekly],
                "error": None if math.isinf(self.error) else round(self.error, 4), "days": self.days,
                "naive": None if math.isinf(self.naive_error) else round(self.naive_error, 4)}
        size = len(json.dumps(item, separators=(",", ":")))
        if size > MAX_ITEM_BYTES:  # cannot happen with 288 slots; a guard if the resolution ever changes
            raise ValueError(f"forecast item of {size} bytes exceeds its budget of {MAX_ITEM_BYTES}")
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SeasonalForecast:
        daily = tuple(max(_MIN_SHARE, v / 1000) for v in item["daily"])
        weekly = tuple(v / 1000 for v in item["weekly"])
        if len(daily) != SLOTS_PER_DAY or len(weekly) != 7:
            raise ValueError("forecast item has the wrong shape")
        error, naive = item.get("error"), item.get("naive")
        return cls(datetime.fromisoformat(item["at"]), float(item["level"]), float(item["trend"]), daily, weekly,
                   math.inf if error is None else float(error), int(item.get("days", 0)),
                   naive_error=math.inf if naive is None else float(naive),
                   origin=datetime.fromisoformat(item["origin"]) if item.get("origin") else None)


def slot_index(moment: datetime) -> int:
    """The absolute 5-minute slot number of ``moment``."""
    return math.floor((moment - _EPOCH).total_seconds() / SLOT_SECONDS)


def to_slots(points: Sequence[tuple[datetime, float]]) -> dict[int, float]:
    """Sum datapoints into 5-minute slots (points of any period up to 5 minutes; a 5-minute Sum maps 1:1)."""
    slots: dict[int, float] = {}
    for moment, value in points:
        if math.isfinite(value):
            index = slot_index(moment)
            slots[index] = slots.get(index, 0.0) + value
    return slots


def fit(slots: dict[int, float], now: datetime, days: int = 14) -> SeasonalForecast | None:
    """Fit the model to the complete days of ``slots`` before ``now`` (at most ``days``), with its error
    measured on the last of them. None with fewer than 2 days (a day to fit, a day to score)."""
    model = _fit(slots, now, days)
    if model is None:
        return None
    scored = _fit(slots, now - timedelta(days=1), days - 1)
    error, naive = (math.inf, math.inf) if scored is None else _error(scored, slots, now)
    return replace(model, fitted_at=now, error=error, naive_error=naive)


def _fit(slots: dict[int, float], now: datetime, days: int) -> SeasonalForecast | None:
    end_day = math.floor((now - _EPOCH).total_seconds() / 86400)  # today (incomplete) is not fitted
    first_day = end_day - days
    by_day: dict[int, list[float | None]] = {}
    for day in range(first_day, end_day):
        row = [slots.get(day * SLOTS_PER_DAY + s) for s in range(SLOTS_PER_DAY)]
        present = [v for v in row if v is not None]
        if len(present) >= SLOTS_PER_DAY // 2 and sum(present) > 0:  # half a day of data at least
            by_day[day] = row
    if len(by_day) < 1:
        return None
    means = {day: sum(v for v in row if v is not None) / sum(1 for v in row if v is not None)
             for day, row in by_day.items()}
    shares: list[float] = []
    for s in range(SLOTS_PER_DAY):
        ratios = sorted(row[s] / means[day] for day, row in by_day.items() if row[s] is not None)  # type: ignore[operator]
        shares.append(_median(ratios) if ratios else 1.0)
    daily = _normalised(_smoothed(shares))
    weekly = _weekly(means)
    recent = [means[d] for d in range(end_day - 7, end_day) if d in means]
    earlier = [means[d] for d in range(end_day - 14, end_day - 7) if d in means]
    if len(recent) >= 6 and len(earlier) >= 6:  # two weeks: week over week, which no weekday pattern can bend
        slope = (sum(recent) / len(recent) - sum(earlier) / len(earlier)) / 7
        flat = [means[d] / weekly[d % 7] for d in range(end_day - 7, end_day) if d in means]
        level = sum(flat) / len(flat) + slope * 3.5  # the week's centre is 3.5 days before its end
    else:
        points = sorted((day, mean / weekly[day % 7]) for day, mean in means.items())[-7:]
        level, slope = _line(points, end_day)
    trend = 0.0 if level <= 0 else max(-0.1, min(0.1, 0.5 * slope / level))
    origin = _EPOCH + timedelta(days=end_day)
    return SeasonalForecast(fitted_at=origin, level=max(level, 0.0), trend=trend,
                            daily=tuple(max(_MIN_SHARE, v) for v in daily), weekly=weekly, error=math.inf,
                            days=len(by_day), origin=origin)


def _error(model: SeasonalForecast, slots: dict[int, float], now: datetime) -> tuple[float, float]:
    """How ``model`` predicts the last complete day before ``now`` the way the rule uses it: each slot
    from the model's shape calibrated on the hour before it (weighted absolute percentage error), and
    the same for persistence (that hour's mean: a flat forecast)."""
    day = math.floor((now - _EPOCH).total_seconds() / 86400) - 1
    actual = shaped = persisted = 0.0
    first = day * SLOTS_PER_DAY
    hour = 3600 // SLOT_SECONDS
    expected = {i: model.at(_EPOCH + timedelta(seconds=i * SLOT_SECONDS))
                for i in range(first - hour, first + SLOTS_PER_DAY)}
    for i in range(first, first + SLOTS_PER_DAY):
        value = slots.get(i)
        before = [slots.get(j) for j in range(i - hour, i)]
        if value is None or any(b is None for b in before):
            continue
        seen = sum(b for b in before if b is not None)
        base = sum(expected[j] for j in range(i - hour, i))
        shaped += abs(value - (seen / base * expected[i] if base > 0 else seen / hour))
        persisted += abs(value - seen / hour)
        actual += value
    if actual <= 0:
        return math.inf, math.inf
    return shaped / actual, persisted / actual


def _median(ordered: Sequence[float]) -> float:
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _smoothed(values: Sequence[float]) -> list[float]:
    """A circular moving average over 3 slots (15 minutes)."""
    n = len(values)
    return [(values[i - 1] + values[i] + values[(i + 1) % n]) / 3 for i in range(n)]


def _normalised(values: Sequence[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v / mean for v in values] if mean > 0 else [1.0] * len(values)


def _weekly(means: dict[int, float]) -> tuple[float, ...]:
    if len(means) < 7:
        return (1.0,) * 7
    overall = sum(means.values()) / len(means)
    factors = []
    for weekday in range(7):
        seen = [m / overall for day, m in means.items() if day % 7 == weekday]
        if not seen:
            factors.append(1.0)
            continue
        raw = sum(seen) / len(seen)
        weight = len(seen) / (len(seen) + 0.5)  # seen once: a third of the way back to 1; twice: a fifth
        factors.append(1 + (raw - 1) * weight)
    return tuple(_normalised(factors))


def _line(points: Sequence[tuple[int, float]], at_day: int) -> tuple[float, float]:
    """(value at ``at_day``, slope per day) of the least-squares line through (day, value) points."""
    n = len(points)
    if n == 1:
        return points[0][1], 0.0
    mean_x = sum(d for d, _ in points) / n
    mean_y = sum(v for _, v in points) / n
    sxx = sum((d - mean_x) ** 2 for d, _ in points)
    slope = sum((d - mean_x) * (v - mean_y) for d, v in points) / sxx if sxx else 0.0
    return mean_y + slope * (at_day - mean_x), slope
