"""Robust targetTracking (``sizing: robust``, the default since issue 12): table-driven cases computed by hand,
properties with hypothesis, and the policy fields' validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from autopilot.decide.target_tracking import (
    Cooldowns,
    Memory,
    datapoints_needed,
    evaluate,
    memory_from_state,
    memory_to_state,
    noise,
    percentile,
    read_robust,
    trusted_percentile,
)
from autopilot.models.policy import Scaling, ScalingRule, TargetTracking

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def tt(**fields: Any) -> TargetTracking:
    return TargetTracking.model_validate({"metric": "cpu", "targetValue": 50, **fields})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def window(*loads: float, end: float = -1) -> tuple[tuple[datetime, float], ...]:
    """Loads one minute apart, the last at minute ``end`` (datapoints are stamped a minute before they are seen)."""
    return tuple((at(end - (len(loads) - 1 - i)), v) for i, v in enumerate(loads))


# ------------------------------------------------------------------ the statistics

@pytest.mark.parametrize(("values", "expected"), [
    ([], 0.0),
    ([5, 5], 0.0),  # fewer than 3 values: no evidence of noise
    ([5, 5, 5, 5], 0.0),
    ([0, 2, 0, 2], 2 * 1.4826 / 2 ** 0.5),  # |diffs| = 2, 2, 2
    ([1, 2, 3, 4, 5, 6], 1 * 1.4826 / 2 ** 0.5),  # a steady trend: each step is 1
    ([4, 4, 40, 4, 4, 4], 0.0),  # one burst moves the median difference not at all
])
def test_noise_is_the_median_successive_difference(values, expected):
    assert noise(values) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([3], 80, 3),
    ([1, 2, 3, 4, 5], 100, 5),
    ([1, 2, 3, 4, 5], 50, 3),
    ([1, 2, 3, 4, 5], 80, 4.2),  # between the 4th and 5th, linearly
    ([5, 1, 4, 2, 3], 80, 4.2),  # order does not matter
])
def test_percentile_interpolates(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


# ------------------------------------------------------------------ one reading, by hand

# Target 50; base 4 tasks; ``newest`` is the metric; load = metric x 4 / 50 tasks.
CASES = [
    # (name, rule fields, window before, newest metric, desired, changes, verdict, recommendation)
    ("first datapoint far above: no noise seen, so not noise", {}, (), 100.0, 4, (), "out", 8),
    ("a noisy window: one datapoint above the band waits", {}, window(3, 5, 3, 5, 3, 5), 62.5, 4, (),
     "out-unconfirmed", 5),
    ("sustained: the mean of the newest 3 is beyond the band", {}, window(4.8, 4.8, 3, 5, 3, 5, 4.8, 4.9), 62.5, 4,
     (), "out", 5),
    ("far beyond the noise acts at once", {}, window(3, 5, 3, 5, 3, 5), 150.0, 4, (), "out", 12),
    ("within the band", {}, window(4, 4, 4), 52.0, 4, (), "within-tolerance", 4),
    ("the window fell: scale in to its 80th percentile", {}, window(2, 2, 2, 2, 2), 25.0, 4, (), "in", 2),
    ("one low minute is not a window", {}, window(4, 4, 4, 4, 4, end=-2), 10.0, 4, (), "steady", 4),
    ("a sustained breach is sized on the mean of its datapoints, not on the noisiest newest", {},
     window(3, 5, 3, 5, 3, 5.5, 5.2, end=-2), 87.5, 4, (), "out", 6),
    ("a sudden rise (no noise seen) is sized on the newest", {}, window(4, 4, 4, 4, 4, end=-2), 100.0, 4, (), "out", 8),
    ("12.5 % above: within the robust default band of 15 %", {}, window(4, 4, 4, end=-2), 56.25, 4, (),
     "within-tolerance", 4),
    ("the same with a 10 % band: the first datapoint beyond it, no noise seen", {"tolerance": 0.1},
     window(4, 4, 4, end=-2), 56.25, 4, (), "out", 5),
    ("hysteresis: the percentile does not clear one task fewer by a noise deviation", {},
     window(2.5, 3.5, 2.5, 3.5, 2.5, 3.5), 37.5, 4, (), "steady", 4),
    ("held after a scale-out", {}, window(2, 2, 2, 2, 2), 25.0, 4, ((at(-3), 2),), "steady", 4),
    ("the hold is over", {}, window(2, 2, 2, 2, 2), 25.0, 4, ((at(-6), 2),), "in", 2),
    ("a window still filling never scales in", {}, window(2), 25.0, 4, (), "steady", 4),
    ("missing data", {}, window(2, 2, 2), None, 4, (), "missing", 4),
    ("scaleInTolerance, when set, must also be cleared", {"scaleInTolerance": 0.6}, window(2, 2, 2, 2, 2), 25.0, 4,
     (), "steady", 4),
]


@pytest.mark.parametrize(("name", "fields", "before", "newest", "desired", "changes", "verdict", "recommendation"),
                         CASES, ids=[c[0] for c in CASES])
def test_read_robust(name, fields, before, newest, desired, changes, verdict, recommendation):
    rule = tt(**fields)
    reading = read_robust(rule, before, newest, at(-1), 4, desired, at(0), changes)
    assert (reading.verdict, reading.recommendation) == (verdict, recommendation), reading.note


def test_hysteresis_zero_scales_in_where_a_deviation_holds():
    values = window(2.4, 2.9, 2.4, 2.9, 2.4, 2.9, 2.4, end=-2)
    # newest load 2.9; p80 2.9 <= 3 (one task fewer) but not by the noise (1 x 0.52)
    held = read_robust(tt(), values, 36.25, at(-1), 4, 4, at(0), ())
    eager = read_robust(tt(scaleInHysteresis=0), values, 36.25, at(-1), 4, 4, at(0), ())
    assert held.verdict == "steady" and (eager.verdict, eager.recommendation) == ("in", 3)


def test_the_same_datapoint_twice_counts_once_and_the_window_forgets_old_loads():
    rule = tt(scaleInStabilizationSeconds=300)
    first = read_robust(rule, window(4, 4, 4, 4, 4, 4, 4, end=-2), 50.0, at(-1), 4, 4, at(0), ())
    again = read_robust(rule, first.window, 60.0, at(-1), 4, 4, at(0.5), ())  # CloudWatch had nothing newer
    assert len(first.window) == 5  # 300 s: the datapoints of the last five minutes
    assert len(again.window) == 5 and again.window[-1] == (at(-1), 60.0 * 4 / 50)


class Ramp:
    """A forecast rising 10 % a minute from T0; unusable when told so; ``skill`` as given (0: no better than flat)."""

    def __init__(self, usable: bool = True, skill: float = 0.0) -> None:
        self.ok = usable
        self.skill = skill

    def at(self, moment: datetime) -> float:
        return 100 * 1.1 ** ((moment - T0).total_seconds() / 60)

    def usable(self, now: datetime) -> str | None:
        return None if self.ok else "too old"


def test_a_usable_forecast_scales_out_ahead_and_keeps_scale_in_at_its_need():
    rule = tt(predictive={"loadMetric": "requests", "taskStartSeconds": 120})
    flat = window(4, 4, 4, 4, 4, 4, end=-2)
    # calibrated on the window (median load / forecast), the forecast's peak of the next two minutes needs ~6.8
    ahead = read_robust(rule, flat, 50.0, at(-1), 4, 4, at(0), (), forecast=Ramp())
    assert ahead.verdict == "out" and ahead.recommendation >= 5 and ahead.predicted is not None
    assert "forecast" in ahead.note
    low = window(2, 2, 2, 2, 2, end=-2)
    falling = read_robust(rule, low, 12.5 * 2, at(-1), 4, 8, at(0), (), forecast=Ramp())
    reactive = read_robust(tt(), low, 12.5 * 2, at(-1), 4, 8, at(0), ())
    assert (reactive.verdict, reactive.recommendation) == ("in", 2)
    assert falling.verdict == "in" and falling.predicted is not None
    assert falling.recommendation == -(-falling.predicted // 1) > 2  # no lower than the forecast's need
    ignored = read_robust(rule, flat, 50.0, at(-1), 4, 4, at(0), (), forecast=Ramp(usable=False))
    assert ignored.verdict == "within-tolerance" and ignored.predicted is None
    assert ignored.scale is not None  # the calibration is kept while the gate is shut


class Flat(Ramp):
    """A forecast of constant demand (so the calibrated need is the window's median load plus noise headroom)."""

    def at(self, moment: datetime) -> float:
        return 100.0


@pytest.mark.parametrize(("percentile_", "trusted", "skill", "expected"), [
    (80, 55, 0.0, 80),  # no better than a flat forecast: nothing changes
    (80, 55, 1.0, 55),  # a perfect forecast: all the way down
    (80, 55, 0.4, 70),
    (80, 55, 1.7, 55),  # skill is clipped to [0, 1]
    (80, 55, -0.5, 80),
    (95, 50, 0.5, 72.5),
    (60, 70, 1.0, 60),  # never raised
    (80, 100, 1.0, 80),  # trustedScaleInPercentile 100: the lever never lowers it (the behaviour before)
])
def test_trusted_percentile_moves_the_skill_s_share_of_the_way_down(percentile_, trusted, skill, expected):
    rule = tt(scaleInPercentile=percentile_, predictive={"loadMetric": "r", "trustedScaleInPercentile": trusted})
    assert trusted_percentile(rule, skill) == pytest.approx(expected)
    assert trusted_percentile(tt(scaleInPercentile=percentile_), skill) == percentile_  # no lever, no change


# loads 3 x7, 4 x3, 5 x2, 6 x1 (the newest 3): p80 4.6, p67.5 4; the mean of the newest three (3, 5, 3) 3.67
NOISY = window(3, 4, 3, 5, 3, 4, 3, 6, 3, 4, 3, 5, end=-2)


@pytest.mark.parametrize(("skill", "expected", "quoted"), [
    (0.0, 5, "p80 "),  # ceil(4.6), as without the lever
    (0.5, 4, "p67.5 "),  # ceil(4)
    (1.0, 4, "p55 "),  # p55 is 3.6, but never below the mean of the newest three: ceil(3.67)
])
def test_a_skilled_forecast_lowers_the_scale_in_percentile(skill, expected, quoted):
    rule = tt(predictive={"loadMetric": "requests"})
    reading = read_robust(rule, NOISY, 3 * 50 / 8, at(-1), 8, 8, at(0), (), forecast=Flat(skill=skill))
    assert (reading.verdict, reading.recommendation) == ("in", expected)
    assert quoted in reading.note
    gated = read_robust(rule, NOISY, 3 * 50 / 8, at(-1), 8, 8, at(0), (), forecast=Flat(usable=False, skill=skill))
    assert (gated.verdict, gated.recommendation) == ("in", 5)  # a gated forecast is not trusted at all


def test_a_lowered_percentile_never_sizes_below_a_step_up_the_window_straddles():
    # nine minutes at 2 tasks, then 5: p55 of the window is still the old level, the forecast (calibrated on
    # the window's median) says 2, but the newest three loads need 5
    rule = tt(predictive={"loadMetric": "requests"})
    step = window(2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, end=-2)
    trusted = read_robust(rule, step, 5 * 50 / 8, at(-1), 8, 8, at(0), (), forecast=Flat(skill=1.0))
    assert trusted.predicted == pytest.approx(2.0)
    assert (trusted.verdict, trusted.recommendation) == ("in", 5)


@settings(max_examples=200, deadline=None)
@given(before=st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=3, max_size=20),
       newest=st.floats(min_value=0, max_value=60, allow_nan=False), desired=st.integers(min_value=1, max_value=60),
       skill=st.floats(min_value=0.01, max_value=1))
def test_a_trusted_scale_in_keeps_the_newest_loads_and_the_forecast_s_need(before, newest, desired, skill):
    rule = tt(predictive={"loadMetric": "requests"})
    reading = read_robust(rule, window(*before, end=-2), newest * 50 / desired, at(-1), desired, desired, at(0), (),
                          forecast=Flat(skill=skill))
    if reading.verdict == "in":
        recent = [v for _, v in reading.window][-3:]
        assert reading.recommendation >= sum(recent) / len(recent) - 1e-6
        assert reading.predicted is not None and reading.recommendation >= reading.predicted - 1e-6


def test_forecast_calibration_is_a_running_mean_robust_to_one_burst():
    rule = tt(predictive={"loadMetric": "requests"})
    flat = window(4, 4, 4, 4, 4, 4, end=-2)
    start = read_robust(rule, flat, 50.0, at(-1), 4, 4, at(0), (), forecast=Ramp())
    burst = read_robust(rule, start.window, 500.0, at(0), 4, 4, at(1), (), forecast=Ramp(), scale=start.scale)
    assert start.scale is not None and burst.scale is not None
    assert burst.scale <= start.scale * (1 + 2 / 60) + 1e-9  # capped at 3x the running mean's weight


# ------------------------------------------------------------------ properties

loads = st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=0, max_size=20)


@settings(max_examples=300, deadline=None)
@given(before=loads, newest=st.one_of(st.none(), st.floats(min_value=0, max_value=500, allow_nan=False)),
       desired=st.integers(min_value=1, max_value=40), base=st.integers(min_value=1, max_value=40),
       percentile_=st.floats(min_value=50, max_value=100), hysteresis=st.floats(min_value=0, max_value=5))
def test_robust_reading_properties(before, newest, desired, base, percentile_, hysteresis):
    rule = tt(scaleInPercentile=percentile_, scaleInHysteresis=hysteresis)
    reading = read_robust(rule, window(*before), newest, at(-1), base, desired, at(0), ())
    values = [v for _, v in reading.window]
    if newest is None:
        assert reading.verdict == "missing" and reading.recommendation == desired  # missing data never acts
        return
    load = newest * base / 50
    if reading.verdict == "out":  # sized on the newest load, or on the mean of a sustained breach (the smaller)
        mean = sum(values[-3:]) / 3
        assert load > desired * 1.15 and reading.recommendation >= max(desired + 1, int(min(load, mean) - 1e-9))
        assert reading.recommendation <= max(desired + 1, -int(-load // 1) + 1)  # never beyond what the newest needs
    if reading.verdict == "in":
        assert reading.recommendation < desired
        assert reading.recommendation >= percentile(values, percentile_) - 1e-9  # never below what the window needs
    if load <= desired * 1.15:
        assert reading.verdict != "out"  # no forecast: nothing within the band scales out


@settings(max_examples=100, deadline=None)
@given(series=st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=40))
def test_memory_round_trips_through_the_stored_state_and_stays_small(series):
    rules = [tt(predictive={"loadMetric": "requests"})]
    scaling = Scaling(minTasks=1, maxTasks=100, rules=[ScalingRule(targetTracking=rules[0])])
    memory, cooldowns, desired = Memory(), Cooldowns(), 4
    for minute, value in enumerate(series):
        verdict = evaluate(rules=rules, series=[[value]], scaling=scaling, memory=memory, cooldowns=cooldowns,
                           desired=desired, running=desired, now=at(minute), forecasts=[Ramp()])
        stored = memory_to_state(verdict.memory, rules)
        memory, cooldowns, desired = memory_from_state(stored), verdict.cooldowns, verdict.desired
    assert len(stored.model_dump_json()) < 2500  # 15 minutes of loads, a calibration, the changes' horizon
    assert all(len(v) <= 16 for v in stored.loads.values())


def test_robust_rules_read_only_the_newest_datapoint():
    assert datapoints_needed(tt()) == 1
    assert datapoints_needed(tt(scaleOutLookaheadSeconds=120, trendDatapoints=3)) == 3
    assert datapoints_needed(tt(sizing="newest", datapointsToScaleOut=3)) == 3


# ------------------------------------------------------------------ the policy fields

@pytest.mark.parametrize(("fields", "message"), [
    ({"sizing": "newest", "scaleInPercentile": 90}, "only apply to sizing: robust"),
    ({"sizing": "newest", "predictive": {"loadMetric": "r"}}, "only apply to sizing: robust"),
    ({"scaleInPercentile": 40}, "greater than or equal to 50"),
    ({"tolerance": -0.1}, "greater than or equal to 0"),
    ({"tolerance": 1}, "less than 1"),
    ({"scaleInPercentile": 101}, "less than or equal to 100"),
    ({"scaleInHysteresis": -1}, "greater than or equal to 0"),
    ({"scaleOutNoiseDeviations": 21}, "less than or equal to 20"),
    ({"holdAfterScaleOutSeconds": 3601}, "less than or equal to 3600"),
    ({"sizing": "latest"}, "'robust' or 'newest'"),
    ({"predictive": {}}, "loadMetric"),
    ({"predictive": {"loadMetric": "r", "historyDays": 1}}, "greater than or equal to 2"),
    ({"predictive": {"loadMetric": "r", "historyDays": 15}}, "less than or equal to 14"),
    ({"predictive": {"loadMetric": "r", "maxError": 0}}, "greater than 0"),
    ({"predictive": {"loadMetric": "r", "refreshSeconds": 60}}, "greater than or equal to 300"),
    ({"predictive": {"loadMetric": "r", "horizon": 3}}, "Extra inputs are not permitted"),
    ({"predictive": {"loadMetric": "r", "trustedScaleInPercentile": 49}}, "greater than or equal to 50"),
    ({"predictive": {"loadMetric": "r", "trustedScaleInPercentile": 101}}, "less than or equal to 100"),
])
def test_invalid_robust_fields(fields, message):
    with pytest.raises(ValidationError, match=message):
        tt(**fields)


@pytest.mark.parametrize(("fields", "band", "window_seconds", "out_datapoints", "percentile_", "hysteresis", "hold"), [
    ({}, 0.15, 900, 3, 80, 1.0, 300),
    ({"sizing": "newest"}, 0.1, 300, 1, 80, 1.0, 300),  # HPA's band for HPA's rule
    ({"tolerance": 0.1, "scaleInHysteresis": 0.5}, 0.1, 900, 3, 80, 0.5, 300),  # the robust defaults before
    ({"sizing": "newest", "tolerance": 0.2}, 0.2, 300, 1, 80, 1.0, 300),
    ({"tolerance": 0, "scaleInStabilizationSeconds": 600, "datapointsToScaleOut": 2, "scaleInPercentile": 95,
      "scaleInHysteresis": 2, "holdAfterScaleOutSeconds": 0}, 0, 600, 2, 95, 2, 0),
])
def test_defaults_and_overrides(fields, band, window_seconds, out_datapoints, percentile_, hysteresis, hold):
    rule = tt(**fields)
    assert (rule.band_tolerance, rule.window_seconds, rule.out_datapoints, rule.in_percentile, rule.in_hysteresis,
            rule.hold_after_out) == (band, window_seconds, out_datapoints, percentile_, hysteresis, hold)
    again = TargetTracking.model_validate(rule.model_dump(exclude_none=True))  # a stored policy reads back the same
    assert again == rule and again.band_tolerance == band
