"""targetTracking decisions (decide/target_tracking.py), table-driven; HPA semantics pinned by hand-computed cases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from autopilot.decide.target_tracking import (
    Cooldowns,
    Memory,
    align,
    beyond_band,
    datapoints_needed,
    decide_target_tracking,
    evaluate,
    memory_seconds,
    push_peak,
    rate_limit,
    recommend,
    rescaled,
    trend,
)
from autopilot.models.actions import SetDesiredCount
from autopilot.models.policy import RatePolicy, Scaling, ScalingRule, ServicePolicy, TargetTracking
from autopilot.models.state import ScalingState, ServiceState, TargetTrackingState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def tt(**fields: Any) -> TargetTracking:
    return TargetTracking.model_validate({"metric": "cpu", "targetValue": 70, "sizing": "newest", **fields})


def scaling(min_tasks: int = 1, max_tasks: int = 100, out_cd: int = 0, in_cd: int = 0) -> Scaling:
    return Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=out_cd, scaleInCooldownSeconds=in_cd)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Replay:
    """Feeds one rule minute by minute, carrying memory and cooldowns as the reconciler does."""

    def __init__(self, rules: list[TargetTracking], scale: Scaling, desired: int) -> None:
        self.rules, self.scaling, self.desired = rules, scale, desired
        self.memory, self.cooldowns = Memory(), Cooldowns()
        self.history: list[float | None] = []
        self.minute = 0

    def peaks_max(self) -> int:
        return self.memory.peaks[self.rules[0].key][0][1]

    def step(self, value: float | None, running: int | None = None, blocked: str | None = None) -> Any:
        self.history.insert(0, value)
        verdict = evaluate(rules=self.rules, series=[self.history] * len(self.rules), scaling=self.scaling,
                           memory=self.memory, cooldowns=self.cooldowns, desired=self.desired,
                           running=self.desired if running is None else running, now=at(self.minute),
                           scale_in_blocked=blocked)
        self.memory, self.cooldowns, self.desired = verdict.memory, verdict.cooldowns, verdict.desired
        self.minute += 1
        return verdict


# ------------------------------------------------------------------ the formula and the band

@pytest.mark.parametrize(("base", "metric", "target", "expected"), [
    (4, 100, 50, 8),  # HPA: ceil(4 x 100 / 50)
    (3, 70, 70, 3),  # exactly on target: no float noise pushes it to 4
    (10, 71, 70, 11),  # ceil(10.14)
    (10, 35, 70, 5),
    (10, 0, 70, 0),  # idle: the recommendation is 0 (minTasks clamps it later)
    (0, 50, 70, 1),  # a service at zero with load counts as one task
])
def test_recommendation_is_hpas_formula(base, metric, target, expected):
    assert recommend(tt(targetValue=target), metric, base) == expected


@pytest.mark.parametrize(("metric", "tolerance", "side"), [
    (77.0, 0.1, 0),  # exactly 10 % above: within the band (HPA acts only beyond it)
    (77.1, 0.1, 1),
    (63.0, 0.1, 0),
    (62.9, 0.1, -1),
    (70.0, 0.0, 0),
    (70.1, 0.0, 1),
    (69.9, 0.0, -1),
])
def test_tolerance_band(metric, tolerance, side):
    assert beyond_band(tt(tolerance=tolerance), metric) == side


@pytest.mark.parametrize(("metric", "outcome", "desired"), [
    (76.0, "skipped:no-change", 10),  # within tolerance: no action even though ceil(10 x 76/70) = 11
    (80.0, "scale-out", 12),  # ceil(11.43)
    (64.0, "skipped:no-change", 10),
    (30.0, "scale-in", 5),  # ceil(4.29), window 0
])
def test_within_tolerance_no_action(metric, outcome, desired):
    replay = Replay([tt(scaleInStabilizationSeconds=0)], scaling(), 10)
    verdict = replay.step(metric)
    assert (verdict.outcome, verdict.desired) == (outcome, desired)


@pytest.mark.parametrize(("metric", "tolerance", "in_tolerance", "side"), [
    (63.0, 0.1, None, 0),  # 10 % below: within the symmetric band
    (62.9, 0.1, None, -1),
    (62.9, 0.1, 0.2, 0),  # a wider band below: 56 is its edge
    (55.9, 0.1, 0.2, -1),
    (77.1, 0.1, 0.2, 1),  # the band above keeps tolerance
    (69.0, 0.0, 0.1, 0),  # scale out at once above the target, scale in only 10 % below it
    (70.1, 0.0, 0.1, 1),
])
def test_asymmetric_tolerance(metric, tolerance, in_tolerance, side):
    assert beyond_band(tt(tolerance=tolerance, scaleInTolerance=in_tolerance), metric) == side


# ------------------------------------------------------------------ trend-aware scale-out

@pytest.mark.parametrize(("values", "lookahead", "expected"), [
    ([80.0, 70.0], 3, 110.0),  # the newest plus three more steps of the last one
    ([70.0, 80.0], 3, 40.0),  # falling: a forecast below the newest (never used to scale in)
    ([90.0, 80.0, 70.0], 2, 110.0),  # a straight line
    ([80.0, 80.0, 80.0], 5, 80.0),
    ([90.0, 70.0, 80.0], 0, 85.0),  # least squares: slope 5, through the mean 80 at -1
    ([80.0, None, 60.0], 1, 90.0),  # a gap is skipped: slope 10 per period over two periods
    ([80.0, None], 3, None),  # one value is no trend
    ([None, 70.0, 60.0], 3, None),  # no newest datapoint: no forecast
    ([], 3, None),
])
def test_trend_is_a_least_squares_line(values, lookahead, expected):
    assert trend(values, lookahead) == expected


@pytest.mark.parametrize(("changes", "expected"), [
    ([], [80.0, 60.0, 50.0]),
    ([(-1, -5)], [80.0, 90.0, 75.0]),  # 5 tasks stopped at the previous evaluation: older points had 15, not 10
    ([(-2, -5)], [80.0, 60.0, 75.0]),  # stopped two evaluations ago: only the oldest point predates it
    ([(-1, -5), (-2, -5)], [80.0, 90.0, 100.0]),
    ([(-1, 5)], [80.0, 60.0, 50.0]),  # scale-outs are not undone (their start time is unknown)
])
def test_datapoints_from_before_a_scale_in_are_rescaled(changes, expected):
    moved = tuple((at(m), c) for m, c in changes)
    assert rescaled([80.0, 60.0, 50.0], 10, moved, at(0), timedelta(minutes=1)) == expected


# Scale out above 70, scale in below 56: 63 alone holds.
TREND = {"scaleOutLookaheadSeconds": 180, "trendDatapoints": 2, "tolerance": 0.0, "scaleInTolerance": 0.2}


@pytest.mark.parametrize(("fields", "values", "outcome", "desired"), [
    (TREND, [63.0, 56.0], "scale-out", 12),  # forecast 63 + 3 x 7 = 84 -> ceil(10 x 84/70): before the breach
    ({"tolerance": 0.0, "scaleInTolerance": 0.2}, [63.0, 56.0], "skipped:no-change", 10),  # no lookahead: holds
    (TREND, [63.0, 70.0], "skipped:no-change", 10),  # falling: the forecast (42) never scales in
    (TREND, [84.0, None], "scale-out", 12),  # no trend without two datapoints: the newest decides alone
    (TREND, [63.0, 63.0], "skipped:no-change", 10),  # flat
    ({**TREND, "scaleOutLookaheadSeconds": 60}, [63.0, 56.0], "skipped:no-change", 10),  # forecast 70: on target
    ({**TREND, "trendDatapoints": 3}, [63.0, 56.0, 49.0], "scale-out", 12),
    ({**TREND, "datapointsToScaleOut": 2}, [63.0, 56.0], "skipped:no-change", 10),  # 56 is not above the band
    ({**TREND, "datapointsToScaleOut": 2}, [80.0, 75.0], "scale-out", 14),  # 80 + 15 = 95 -> ceil(13.6)
])
def test_trend_aware_scale_out(fields, values, outcome, desired):
    rule = tt(**fields)
    verdict = evaluate(rules=[rule], series=[values], scaling=scaling(), memory=Memory(), cooldowns=Cooldowns(),
                       desired=10, running=10, now=T0)
    assert (verdict.outcome, verdict.desired) == (outcome, desired)


def test_forecast_is_explained_and_not_remembered_by_the_window():
    rule = tt(**{**TREND, "scaleInTolerance": None}, scaleInStabilizationSeconds=300)
    replay = Replay([rule], scaling(), 10)
    assert replay.step(70.0).desired == 10
    out = replay.step(77.0)  # forecast 77 + 3 x 7 = 98 -> ceil(10 x 98/70) = 14
    assert (out.outcome, out.desired) == ("scale-out", 14)
    reason = decide_target_tracking(rules=[rule], series=[[77.0, 70.0]], scaling=scaling(), cooldowns=ScalingState(),
                                    memory=TargetTrackingState(), desired=10, running=10, now=T0, cluster="c",
                                    service="s", trigger="t")[0].reason
    assert "cpu: 77 (trend: 98 in 180s) vs target 70 x 10 tasks asks for 14" in reason
    # The window holds what was measured (ceil(10 x 77/70) = 11), not the forecast's 14: a ramp that stops
    # gives the extra tasks back.
    assert replay.peaks_max() == 11
    back = replay.step(63.0, running=10)  # below the target now: asks for 9; the window's highest is 11
    assert (back.outcome, back.desired) == ("scale-in", 11)


def test_trend_ignores_the_rise_a_scale_in_causes():
    """Fewer tasks raise the metric: that is not growing load, so it must not be extrapolated."""
    replay = Replay([tt(**{**TREND, "scaleInTolerance": None}, scaleInStabilizationSeconds=0)], scaling(), 15)
    assert replay.step(42.0).desired == 9  # ceil(15 x 42/70)
    verdict = replay.step(70.0, running=9)  # the same load on the 9 left: 42 x 15/9 = 70
    assert verdict.readings[0].base == 9 and verdict.readings[0].forecast is None
    assert (verdict.outcome, verdict.desired) == ("skipped:no-change", 9)


@pytest.mark.parametrize(("seen", "desired", "running", "base"), [
    (10, 10, 10, 10),
    (5, 10, 10, 5),  # 5 more were starting: the 5 that ran produced the datapoint
    (15, 9, 9, 9),  # a scale-in to 9 at the previous evaluation stopped 6 at once
    (15, 12, 9, 12),  # 15 ran, desired 12 (a scale-in cancelled 3 that were starting)
    (0, 4, 0, 4),  # nothing running yet: the desired count is the best guess
])
def test_base_is_the_tasks_that_produced_the_datapoint(seen, desired, running, base):
    memory = Memory(running_seen=(at(-1), seen))
    verdict = evaluate(rules=[tt()], series=[[70.0]], scaling=scaling(), memory=memory, cooldowns=Cooldowns(),
                       desired=desired, running=running, now=T0)
    assert verdict.readings[0].base == base


@pytest.mark.parametrize(("fields", "needed", "seconds"), [
    ({}, 1, 0),
    ({"datapointsToScaleOut": 3}, 3, 0),
    ({"scaleOutLookaheadSeconds": 120}, 3, 240),  # trendDatapoints defaults to 3
    ({"scaleOutLookaheadSeconds": 120, "trendDatapoints": 2, "datapointsToScaleOut": 4}, 4, 180),
    ({"trendDatapoints": 5}, 1, 0),  # without a lookahead the trend is off
    ({"scaleInPolicies": [{"type": "Tasks", "value": 1, "periodSeconds": 600}], "scaleOutLookaheadSeconds": 60},
     3, 600),
])
def test_datapoints_and_memory_a_rule_needs(fields, needed, seconds):
    rule = tt(**fields)
    assert (datapoints_needed(rule), memory_seconds(rule)) == (needed, seconds)


# ------------------------------------------------------------------ stabilization

def test_stabilization_window_picks_the_highest_recommendation():
    replay = Replay([tt(scaleInStabilizationSeconds=180)], scaling(), 10)
    # minute: metric -> recommendation; the window holds the last 180 s (strictly newer than now - 180 s)
    assert replay.step(70.0).desired == 10  # 0: rec 10 (on target)
    assert replay.step(35.0).desired == 10  # 1: rec 5, max(10, 5)
    assert replay.step(49.0).desired == 10  # 2: rec 7, max(10, 5, 7)
    verdict = replay.step(14.0)  # 3: rec 2; the 10 of minute 0 left the window: max(5, 7, 2) = 7
    assert (verdict.outcome, verdict.desired) == ("scale-in", 7)
    assert replay.step(7.0).desired == 7  # 4: rec ceil(10 x 7/70) = 1 (10 ran at minute 3); max(7, 2, 1) = 7
    assert replay.step(7.0).desired == 2  # 5: minute 2 left the window: max(2, 1, 1) = 2


def test_scale_out_is_not_stabilized():
    replay = Replay([tt(scaleInStabilizationSeconds=3600)], scaling(), 10)
    assert replay.step(20.0).desired == 3  # the window holds only this recommendation
    assert replay.step(140.0).desired == 6  # at once; ceil(3 x 140/70): the 3 tasks left produced the 140


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40),
       st.sampled_from([0, 60, 120, 300]))
def test_kept_peaks_give_the_window_maximum(values, window):
    peaks: tuple[tuple[datetime, int], ...] = ()
    for minute, value in enumerate(values):
        peaks = push_peak(peaks, at(minute), value, window)
        newest = [v for m, v in enumerate(values[:minute + 1]) if at(m) > at(minute) - timedelta(seconds=window)]
        assert peaks[0][1] == max(newest or [value])
        assert all(a[1] > b[1] for a, b in itertools.pairwise(peaks))  # strictly decreasing: small state


# ------------------------------------------------------------------ rate limits

OUT_4_OR_100 = [RatePolicy(type="Tasks", value=4, periodSeconds=60), RatePolicy(type="Percent", value=100,
                                                                                 periodSeconds=60)]


@pytest.mark.parametrize(("direction", "policies", "select", "desired", "changes", "expected"), [
    (1, OUT_4_OR_100, "Max", 10, [], 20),  # max(10 + 4, 10 x 2)
    (1, OUT_4_OR_100, "Min", 10, [], 14),
    (1, OUT_4_OR_100, "Max", 2, [], 6),  # small services: +4 beats +100 %
    (1, OUT_4_OR_100, "Disabled", 10, [], 10),
    (1, [], "Max", 10, [], None),  # no policy: no limit
    (1, [RatePolicy(type="Tasks", value=4, periodSeconds=300)], "Max", 14, [(-2, 4)], 14),  # 4 added 2 min ago
    (1, [RatePolicy(type="Tasks", value=4, periodSeconds=300)], "Max", 14, [(-6, 4)], 18),  # 6 min ago: outside
    (1, [RatePolicy(type="Percent", value=50, periodSeconds=60)], "Max", 3, [], 5),  # ceil(4.5)
    (1, [RatePolicy(type="Percent", value=10, periodSeconds=60)], "Max", 0, [], 1),  # from zero: at least one
    (-1, [RatePolicy(type="Percent", value=10, periodSeconds=60)], "Max", 15, [], 13),  # floor(13.5)
    (-1, [RatePolicy(type="Tasks", value=1, periodSeconds=300)], "Max", 9, [(-1, -1)], 9),  # removed 1 a minute ago
    (-1, [RatePolicy(type="Tasks", value=1, periodSeconds=300), RatePolicy(type="Percent", value=50,
                                                                           periodSeconds=60)], "Max", 10, [], 5),
    (-1, [RatePolicy(type="Tasks", value=1, periodSeconds=300), RatePolicy(type="Percent", value=50,
                                                                           periodSeconds=60)], "Min", 10, [], 9),
    (-1, [RatePolicy(type="Percent", value=100, periodSeconds=60)], "Max", 10, [], 0),
])
def test_rate_limit_per_period(direction, policies, select, desired, changes, expected):
    moved = [(at(m), c) for m, c in changes]
    assert rate_limit(direction, policies, select, desired, moved, at(0)) == expected


def test_rate_limited_scale_out_continues_next_period():
    rule = tt(scaleOutPolicies=[{"type": "Tasks", "value": 4, "periodSeconds": 120}])
    replay = Replay([rule], scaling(), 10)
    first = replay.step(210.0)  # asks for 30
    assert (first.outcome, first.desired) == ("scale-out", 14)
    assert "limited to 14 by scaleOutPolicies" in first.readings[0].note
    assert replay.step(210.0, running=10).desired == 14  # minute 1: the 4 of minute 0 still count
    assert replay.step(210.0, running=10).desired == 18  # minute 2: a new period


def test_scale_in_rate_limit_paces_the_descent():
    rule = tt(scaleInStabilizationSeconds=0, scaleInPolicies=[{"type": "Percent", "value": 10, "periodSeconds": 60}])
    replay = Replay([rule], scaling(), 20)
    # floor(20 x 0.9), floor(18 x 0.9), floor(16 x 0.9), ...: each period counts from its own start
    assert [replay.step(7.0).desired for _ in range(4)] == [18, 16, 14, 12]


# ------------------------------------------------------------------ missing data, datapoints, safety

def test_missing_data_never_scales_in():
    replay = Replay([tt(scaleInStabilizationSeconds=0)], scaling(), 10)
    verdict = replay.step(None)
    assert (verdict.outcome, verdict.desired) == ("skipped:missing-data", 10)
    assert replay.step(None).desired == 10


def test_a_rule_without_data_holds_scale_in_for_every_rule():
    rules = [tt(scaleInStabilizationSeconds=0), tt(metric="requests", targetValue=100, scaleInStabilizationSeconds=0)]
    verdict = evaluate(rules=rules, series=[[10.0], [None]], scaling=scaling(), memory=Memory(), cooldowns=Cooldowns(),
                       desired=10, running=10, now=T0)
    assert (verdict.outcome, verdict.desired) == ("skipped:no-change", 10)
    verdict = evaluate(rules=rules, series=[[140.0], [None]], scaling=scaling(), memory=Memory(),
                       cooldowns=Cooldowns(), desired=10, running=10, now=T0)
    assert (verdict.outcome, verdict.desired) == ("scale-out", 20)  # any rule may scale out


def test_several_rules_scale_in_only_as_far_as_the_most_cautious():
    rules = [tt(scaleInStabilizationSeconds=0), tt(metric="requests", targetValue=100, scaleInStabilizationSeconds=0)]
    verdict = evaluate(rules=rules, series=[[14.0], [50.0]], scaling=scaling(), memory=Memory(),
                       cooldowns=Cooldowns(), desired=10, running=10, now=T0)
    assert (verdict.outcome, verdict.desired) == ("scale-in", 5)  # max(ceil(2), ceil(5))


def test_datapoints_to_scale_out_needs_consecutive_breaches():
    replay = Replay([tt(datapointsToScaleOut=3)], scaling(), 10)
    assert replay.step(140.0).outcome == "skipped:no-change"
    assert replay.step(None).outcome == "skipped:missing-data"  # a gap breaks the streak
    assert replay.step(140.0).outcome == "skipped:no-change"
    assert replay.step(140.0).outcome == "skipped:no-change"
    assert replay.step(140.0).desired == 20


def test_scales_from_the_tasks_that_produced_the_datapoint():
    replay = Replay([tt(scaleInStabilizationSeconds=0)], scaling(), 10)
    replay.step(70.0, running=5)  # 5 of 10 running produce the next datapoint
    verdict = replay.step(140.0, running=10)  # the 5 new tasks are up now, but the 140 came from 5 tasks
    assert verdict.desired == 10  # ceil(5 x 140 / 70) = 10: no double counting
    assert verdict.readings[0].base == 5


@pytest.mark.parametrize(("metric", "desired", "expected", "outcome"), [
    (700.0, 10, 40, "scale-out"),  # clamped to maxTasks
    (700.0, 40, 40, "skipped:at-max"),
    (1.0, 10, 3, "scale-in"),  # clamped to minTasks
    (1.0, 3, 3, "skipped:at-min"),
])
def test_clamped_to_min_and_max(metric, desired, expected, outcome):
    verdict = evaluate(rules=[tt(scaleInStabilizationSeconds=0)], series=[[metric]], scaling=scaling(3, 40),
                       memory=Memory(), cooldowns=Cooldowns(), desired=desired, running=desired, now=T0)
    assert (verdict.outcome, verdict.desired) == (outcome, expected)


def test_no_scale_in_while_blocked():
    replay = Replay([tt(scaleInStabilizationSeconds=0)], scaling(), 10)
    verdict = replay.step(10.0, blocked="an ECS deployment is in progress")
    assert (verdict.outcome, verdict.desired) == ("skipped:scale-in-suspended", 10)
    assert replay.step(140.0, blocked="an ECS deployment is in progress").outcome == "scale-out"


# ------------------------------------------------------------------ cooldowns (same rules as alarm rules)

def test_scale_in_cooldown_blocks_and_scale_out_ends_it():
    replay = Replay([tt(scaleInStabilizationSeconds=0)], scaling(in_cd=300), 20)
    assert replay.step(35.0).desired == 10
    blocked = replay.step(17.5)  # produced by the 20 tasks of minute 0: asks for 5
    assert blocked.outcome == "skipped:cooldown" and "scale-in blocked by its cooldown" in blocked.note
    assert replay.step(140.0).outcome == "scale-out"  # proceeds at once and ends the scale-in cooldown
    assert replay.cooldowns.scale_in_until is None
    assert replay.step(7.0).outcome == "scale-in"


def test_scale_out_cooldown_only_lets_larger_scale_outs_through():
    replay = Replay([tt()], scaling(out_cd=300), 10)
    assert replay.step(105.0).desired == 15
    same = replay.step(98.0, running=10)  # ceil(10 x 98/70) = 14 from the 10 that produced it: 15 covers it
    assert (same.outcome, same.desired) == ("skipped:no-change", 15)
    bigger = replay.step(140.0, running=10)  # 20 > 15: adds the difference
    assert (bigger.outcome, bigger.desired) == ("scale-out", 20)
    assert replay.cooldowns.scale_out_until == at(5)  # the cooldown started by the first scale-out stands


def test_cooldown_skip_during_scale_out_cooldown_is_reported():
    rule = tt()
    cooldowns = Cooldowns(scale_out_until=at(4), scale_out_base=10, scale_out_target=20)
    verdict = evaluate(rules=[rule], series=[[105.0]], scaling=scaling(out_cd=300), memory=Memory(),
                       cooldowns=cooldowns, desired=12, running=10, now=T0)  # asks for 15 <= 20
    assert verdict.outcome == "skipped:cooldown" and "already set 20 tasks" in verdict.note


# ------------------------------------------------------------------ the reconciler's wrapper and stored state

def test_decision_and_state_round_trip():
    rule = tt(scaleInStabilizationSeconds=300)
    state = ServiceState()
    decision, cooldowns, memory = decide_target_tracking(
        rules=[rule], series=[[140.0]], scaling=scaling(out_cd=60), cooldowns=state.scaling,
        memory=state.target_tracking, desired=5, running=5, now=T0, cluster="prod", service="web",
        trigger="reconcile: targetTracking")
    assert decision.outcome == "scale-out"
    action = decision.actions[0]
    assert isinstance(action, SetDesiredCount) and (action.previous, action.desired) == (5, 10)
    assert "cpu: 140 vs target 70 x 5 tasks asks for 10" in decision.reason and "5 to 10 tasks" in decision.reason
    assert cooldowns.scale_out_until == T0 + timedelta(seconds=60) and cooldowns.scale_out_base == 5
    stored = ServiceState(scaling=cooldowns, target_tracking=memory)
    again = ServiceState.model_validate_json(stored.model_dump_json())  # what DynamoDB holds
    assert again.target_tracking == memory
    assert again.target_tracking.peaks == {"alarm:cpu": [(T0, 10)]}
    assert again.target_tracking.changes == [(T0, 5)]


def test_quiet_minute_keeps_cooldowns_object():
    state = ScalingState()
    decision, cooldowns, _ = decide_target_tracking(
        rules=[tt()], series=[[70.0]], scaling=scaling(), cooldowns=state, memory=TargetTrackingState(),
        desired=5, running=5, now=T0, cluster="prod", service="web", trigger="t")
    assert decision.actions == () and cooldowns is state


def test_memory_forgets_removed_rules():
    old = TargetTrackingState(peaks={"alarm:gone": [(T0, 9)]})
    _, _, memory = decide_target_tracking(
        rules=[tt()], series=[[70.0]], scaling=scaling(), cooldowns=ScalingState(), memory=old,
        desired=5, running=5, now=T0 + timedelta(minutes=1), cluster="c", service="s", trigger="t")
    assert set(memory.peaks) == {"alarm:cpu"}


@pytest.mark.parametrize(("points", "now_minute", "expected"), [
    ([(0, 1.0), (1, 2.0), (2, 3.0)], 3, [3.0, 2.0, 1.0]),  # newest complete period first
    ([(0, 1.0), (1, 2.0), (2, 3.0)], 2.5, [2.0, 1.0, None]),  # the period in progress is ignored
    ([(0, 1.0), (2, 3.0)], 3, [3.0, None, 1.0]),  # a gap is None
    ([(0, 1.0)], 3, [1.0, None, None]),  # 2 periods late: still fresh
    ([(0, 1.0)], 4, [None, None, None]),  # 3 periods late: missing data
    ([], 3, [None, None, None]),
])
def test_align_datapoints(points, now_minute, expected):
    assert align([(at(m), v) for m, v in points], at(now_minute), 60, 3) == expected


# ------------------------------------------------------------------ the policy format

def rule(doc: dict[str, Any]) -> ScalingRule:
    return ScalingRule.model_validate(doc)


def test_metric_as_alarm_name_or_spec():
    by_alarm = rule({"targetTracking": {"metric": "web-cpu-high", "targetValue": 70}}).targetTracking
    assert by_alarm is not None and by_alarm.key == "alarm:web-cpu-high"
    # Defaults (issue 12): robust sizing, a 900 s window, the mean of 3 datapoints to scale out, a 15 % band.
    assert (by_alarm.band_tolerance, by_alarm.sizing, by_alarm.window_seconds, by_alarm.out_datapoints) == (
        0.15, "robust", 900, 3)
    newest = rule({"targetTracking": {"metric": "m", "targetValue": 70, "sizing": "newest"}}).targetTracking
    assert newest is not None and (newest.band_tolerance, newest.window_seconds, newest.out_datapoints) == (
        0.1, 300, 1)  # HPA, as before
    spec = rule({"targetTracking": {"metric": {"namespace": "AWS/ECS", "name": "CPUUtilization",
                                               "dimensions": {"ServiceName": "web", "ClusterName": "prod"}},
                                    "targetValue": 70}}).targetTracking
    assert spec is not None and spec.key == "AWS/ECS/CPUUtilization[ClusterName=prod,ServiceName=web]/Average/60"


@pytest.mark.parametrize(("doc", "message"), [
    ({"alarm": "a", "targetTracking": {"metric": "m", "targetValue": 70}}, "has no alarm"),
    ({"targetTracking": {"metric": "m", "targetValue": 70}, "targetValue": 3}, "exactly one of"),
    ({"steps": [{"lowerBound": 0, "adjustment": 1}]}, "alarm\n.*required field is missing"),
    ({"targetTracking": {"metric": "m", "targetValue": 0}}, "greater than 0"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "tolerance": 1}}, "less than 1"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleOutSelectPolicy": "Fastest"}}, "'Max', 'Min'"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleInPolicies": [{"type": "Pods", "value": 1}]}},
     "'Tasks' or 'Percent'"),
    ({"targetTracking": {"metric": {"namespace": "n", "name": "x", "period": 90}, "targetValue": 1}}, "multiple of 60"),
    ({"targetTracking": {"metric": {"namespace": "n", "name": "x", "stat": "Mean"}, "targetValue": 1}}, "pattern"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "datapointsToScaleOut": 0}}, "greater than or equal to 1"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleInTolerance": 1}}, "less than 1"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleInTolerance": -0.1}}, "greater than or equal to 0"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleOutLookaheadSeconds": 901}}, "less than or equal"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "scaleOutLookaheadSeconds": -60}}, "greater than or equal"),
    ({"targetTracking": {"metric": "m", "targetValue": 70, "trendDatapoints": 1}}, "greater than or equal to 2"),
])
def test_invalid_rules(doc, message):
    with pytest.raises(ValidationError, match=message):
        rule(doc)


def test_tracked_metrics_are_not_alarm_triggers_and_are_unique():
    doc = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
           "spec": {"scaling": {"minTasks": 1, "maxTasks": 9, "rules": [
               {"targetTracking": {"metric": "web-cpu", "targetValue": 70}},
               {"alarm": "web-cpu", "steps": [{"lowerBound": 0, "adjustment": 1}]}]}}}
    assert ServicePolicy.model_validate(doc).alarm_names() == ["web-cpu"]  # only the step rule's alarm triggers
    doc["spec"]["scaling"]["rules"][1] = {"targetTracking": {"metric": "web-cpu", "targetValue": 50}}
    with pytest.raises(ValidationError, match="one targetTracking rule per policy"):
        ServicePolicy.model_validate(doc)
