"""The demand forecast of targetTracking's predictive lever (decide/forecast.py): fit, quality gate, stored form."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.forecast import (
    MAX_ITEM_BYTES,
    SLOTS_PER_DAY,
    SeasonalForecast,
    fit,
    slot_index,
    to_slots,
)

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


def wave(moment: datetime, weekend: float = 1.0, growth: float = 0.0, start: datetime = MONDAY) -> float:
    hour = moment.hour + moment.minute / 60
    value = 100 + 80 * math.exp(-((hour - 14) / 3) ** 2)
    if moment.weekday() >= 5:
        value *= weekend
    return value * (1 + growth * (moment - start).total_seconds() / 86400)


def history(days: float, now: datetime, noise: float = 0.0, **shape: float) -> dict[int, float]:
    rng = random.Random(7)
    points = []
    for i in range(int(days * SLOTS_PER_DAY)):
        moment = now - timedelta(minutes=5 * (i + 1))
        points.append((moment, wave(moment, **shape) * (1 + rng.gauss(0, noise))))
    return to_slots(points)


def test_fit_needs_a_day_to_fit_and_a_day_to_score():
    now = MONDAY + timedelta(days=10, hours=9)
    assert fit(history(0.4, now), now) is None  # not even half a day
    one = fit(history(1.2, now), now)
    assert one is not None and math.isinf(one.error) and one.usable(now) is not None  # nothing to score it on
    two = fit(history(2.2, now), now)
    assert two is not None and two.error < 0.05 and two.usable(now) is None


def test_a_daily_wave_is_learnt_and_beats_a_flat_forecast():
    now = MONDAY + timedelta(days=5, hours=9)
    model = fit(history(5, now, noise=0.05), now)
    assert model is not None
    peak = max(range(SLOTS_PER_DAY), key=lambda s: model.daily[s])
    assert abs(peak * 5 / 60 - 14) < 0.5  # the peak is at 14:00
    assert model.error < model.naive_error and model.usable(now) is None
    assert model.weekly == (1.0,) * 7  # fewer than 7 days: no weekly shape yet
    ratio = model.at(now.replace(hour=14)) / model.at(now.replace(hour=3))
    assert ratio == pytest.approx(180 / 100, rel=0.1)


def test_weekends_and_a_trend_with_two_weeks():
    now = MONDAY + timedelta(days=14, hours=9)
    model = fit(history(14, now, weekend=0.5, growth=0.02), now)
    assert model is not None
    assert model.weekly[5] < 0.8 and model.weekly[6] < 0.8 and min(model.weekly[:5]) > 0.9
    assert 0 < model.trend <= 0.1  # halved and capped


def test_a_shapeless_history_is_gated_off():
    now = MONDAY + timedelta(days=5, hours=9)
    rng = random.Random(3)
    flat = {i: 100 * (1 + rng.gauss(0, 0.3)) for i in range(slot_index(now) - 5 * SLOTS_PER_DAY, slot_index(now))}
    model = fit(flat, now)
    assert model is not None and model.usable(now) is not None  # pure noise: no better than a flat forecast


@pytest.mark.parametrize(("error", "naive", "age_hours", "max_error", "usable"), [
    (0.1, 0.2, 0, 0.3, True),
    (0.35, 0.5, 0, 0.3, False),  # too poor
    (0.1, 0.1, 0, 0.3, False),  # no better than a flat forecast
    (0.1, 0.2, 2.5, 0.3, False),  # older than two refresh periods (hourly)
    (0.1, 0.2, 1.5, 0.3, True),
])
def test_quality_gate(error, naive, age_hours, max_error, usable):
    now = MONDAY + timedelta(days=3)
    model = SeasonalForecast(now - timedelta(hours=age_hours), 1.0, 0.0, (1.0,) * SLOTS_PER_DAY, (1.0,) * 7, error, 3,
                             naive_error=naive).gated(max_error, 3600)
    assert (model.usable(now) is None) is usable


@pytest.mark.parametrize(("error", "naive", "skill"), [
    (0.1, 0.2, 0.75),  # half a flat forecast's error: three quarters of its squared error removed
    (0.02, 0.08, 1 - 1 / 16),
    (0.18, 0.18, 0.0),  # no better than flat
    (0.3, 0.2, 0.0),  # worse: never negative
    (0.0, 0.1, 1.0),
    (math.inf, 0.2, 0.0),  # not measurable: no trust
    (0.1, math.inf, 0.0),
    (0.0, 0.0, 0.0),
])
def test_skill_is_the_share_of_a_flat_forecasts_squared_error_removed(error, naive, skill):
    model = SeasonalForecast(MONDAY, 1.0, 0.0, (1.0,) * SLOTS_PER_DAY, (1.0,) * 7, error, 3, naive_error=naive)
    assert model.skill == pytest.approx(skill)
    assert SeasonalForecast.from_item(model.to_item()).skill == pytest.approx(skill, abs=1e-3)  # stored, it is the same


def test_stored_form_round_trips_within_its_byte_budget():
    now = MONDAY + timedelta(days=14, hours=9)
    model = fit(history(14, now, weekend=0.5), now)
    assert model is not None
    item = model.to_item()
    size = len(json.dumps(item, separators=(",", ":")))
    assert size < 3000 < MAX_ITEM_BYTES
    back = SeasonalForecast.from_item(json.loads(json.dumps(item)))
    for hours in (0, 5, 14, 30, 60):
        moment = now + timedelta(hours=hours)
        assert back.at(moment) == pytest.approx(model.at(moment), rel=0.002)
    assert back.error == pytest.approx(model.error, abs=1e-4) and back.fitted_at == model.fitted_at
    with pytest.raises(ValueError, match="wrong shape"):
        SeasonalForecast.from_item({**item, "daily": item["daily"][:10]})


@settings(max_examples=40, deadline=None)
@given(days=st.floats(min_value=2.1, max_value=14), scale=st.floats(min_value=0.01, max_value=1e6),
       hour=st.integers(min_value=0, max_value=23))
def test_forecasts_are_finite_positive_and_scale_with_the_history(days, scale, hour):
    now = MONDAY + timedelta(days=15, hours=hour)
    base = history(days, now)
    model = fit(base, now)
    scaled = fit({k: v * scale for k, v in base.items()}, now)
    assert model is not None and scaled is not None
    for minutes in (0, 37, 600):
        moment = now + timedelta(minutes=minutes)
        value = model.at(moment)
        assert math.isfinite(value) and value > 0
        assert scaled.at(moment) == pytest.approx(value * scale, rel=1e-6)  # the unit does not matter
    assert scaled.error == pytest.approx(model.error, rel=1e-6)
