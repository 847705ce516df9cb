"""Step scaling pinned to Application Auto Scaling semantics (aws-facts.md section 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot.decide.scaling import (
    choose_step,
    cooldown_precheck,
    decide_bounds,
    decide_scaling,
    percent_change,
    rule_target,
)
from autopilot.models.actions import SetDesiredCount
from autopilot.models.policy import Scaling, ScalingRule, Step
from autopilot.models.state import ScalingState

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

# The worked example of aws-facts.md section 2: threshold 50, steps out and in.
WORKED_STEPS = [
    {"lowerBound": 0, "upperBound": 10, "adjustment": 0},
    {"lowerBound": 10, "upperBound": 20, "adjustment": "10%"},
    {"lowerBound": 20, "adjustment": "30%"},
    {"lowerBound": -10, "upperBound": 0, "adjustment": 0},
    {"lowerBound": -20, "upperBound": -10, "adjustment": "-10%"},
    {"upperBound": -20, "adjustment": "-30%"},
]


def rule(**kwargs) -> ScalingRule:
    return ScalingRule.model_validate({"alarm": "a", **kwargs})


def scaling(min_tasks: int = 1, max_tasks: int = 100, out: int = 300, into: int = 300) -> Scaling:
    return Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=out, scaleInCooldownSeconds=into)


def decide(r: ScalingRule, capacity: int, datapoint: float | None, state: ScalingState | None = None,
           sc: Scaling | None = None, now: datetime = NOW, threshold: float | None = 50.0):
    return decide_scaling(rule=r, scaling=sc or scaling(), state=state or ScalingState(), capacity=capacity,
                          datapoint=datapoint, threshold=threshold, cluster="prod", service="web", now=now,
                          trigger="alarm a -> ALARM")


def desired_of(decision) -> int | None:
    actions = [a for a in decision.actions if isinstance(a, SetDesiredCount)]
    return actions[0].desired if actions else None


# ------------------------------------------------------------------ rounding
@pytest.mark.parametrize(
    ("capacity", "percent", "min_magnitude", "expected"),
    [
        (127, 10, None, 12),  # 12.7 -> 12: above 1 round down
        (10, 10, None, 1),  # exactly 1 -> 1
        (5, 10, None, 1),  # 0.5 -> 1: between 0 and 1
        (1, 1, None, 1),  # 0.01 -> 1
        (5, -10, None, -1),  # -0.5 -> -1
        (10, -10, None, -1),  # exactly -1
        (667, -1, None, -6),  # -6.67 -> -6: below -1 toward zero
        (14, -10, None, -1),  # -1.4 -> -1
        (13, -30, None, -3),  # -3.9 -> -3
        (4, 25, 2, 2),  # 25 % of 4 with minimum 2 adds 2 (aws-facts)
        (4, -25, 2, -2),
        (100, 25, 2, 25),  # the minimum does not lower a larger change
        (0, 50, 2, 0),  # nothing of nothing: the minimum applies to non-zero changes only
    ],
)
def test_percent_rounding(capacity, percent, min_magnitude, expected):
    assert percent_change(capacity, Fraction(percent), min_magnitude) == expected


# ------------------------------------------------------------------ bounds
@pytest.mark.parametrize(
    ("breach", "expected_adjustment"),
    [
        (0, 0),  # on the threshold: [0, 10) above
        (9.99, 0),
        (10, "10%"),  # lower bound inclusive above the threshold
        (19.99, "10%"),
        (20, "30%"),  # upper bound exclusive above the threshold
        (1000, "30%"),
        (-0.01, 0),  # (-10, 0] below
        (-9.99, 0),
        (-10, "-10%"),  # (-20, -10]: upper bound inclusive below the threshold
        (-19.99, "-10%"),
        (-20, "-30%"),  # (-inf, -20]: -20 is not in (-20, -10], lower bound exclusive
        (-20.01, "-30%"),
    ],
)
def test_step_bounds_inclusive_ends(breach, expected_adjustment):
    steps = [Step.model_validate(s) for s in WORKED_STEPS]
    assert choose_step(steps, breach).adjustment == expected_adjustment


def test_scale_in_step_at_threshold_matches_upper_bound_zero():
    # A scale-in rule usually ends at 0; a datapoint exactly on the threshold must still find it.
    steps = [Step(upperBound=0, adjustment=-1)]
    assert choose_step(steps, 0).adjustment == -1


def test_no_step_covers_breach():
    steps = [Step(lowerBound=10, adjustment=1)]
    assert choose_step(steps, 5) is None
    decision, _ = decide(rule(steps=[{"lowerBound": 10, "adjustment": 1}]), 4, 55)
    assert decision.outcome == "skipped:no-step" and not decision.actions


# ------------------------------------------------------------------ the worked walk 10 -> 11 -> 14 -> 13 -> 10
def test_worked_example_walk():
    r = rule(steps=WORKED_STEPS)
    capacity, state, now = 10, ScalingState(), NOW
    walk = []
    for metric in (60, 70, 40, 30):
        decision, state = decide(r, capacity, metric, state, scaling(out=0, into=0), now)
        capacity = desired_of(decision) or capacity
        walk.append(capacity)
        now += timedelta(seconds=1)
    assert walk == [11, 14, 13, 10]


# ------------------------------------------------------------------ cooldowns
def test_scale_out_in_cooldown_adds_only_the_difference():
    # alarm +2, then +3 during the cooldown -> only +1 more (aws-facts section 2)
    first = rule(steps=[{"lowerBound": 0, "upperBound": 10, "adjustment": 2}, {"lowerBound": 10, "adjustment": 3}])
    decision, state = decide(first, 10, 55)
    assert desired_of(decision) == 12
    decision, state = decide(first, 12, 65, state, now=NOW + timedelta(seconds=30))
    assert desired_of(decision) == 13
    assert "difference" in decision.reason


def test_scale_out_in_cooldown_without_larger_step_is_skipped():
    r = rule(steps=[{"lowerBound": 0, "adjustment": 2}])
    decision, state = decide(r, 10, 55)
    assert desired_of(decision) == 12
    again, same = decide(r, 12, 55, state, now=NOW + timedelta(seconds=30))
    assert again.outcome == "skipped:cooldown" and not again.actions
    assert same == state


def test_scale_out_after_cooldown_acts_again():
    r = rule(steps=[{"lowerBound": 0, "adjustment": 2}])
    _, state = decide(r, 10, 55, sc=scaling(out=60))
    decision, _ = decide(r, 12, 55, state, sc=scaling(out=60), now=NOW + timedelta(seconds=60))
    assert desired_of(decision) == 14


def test_scale_in_blocked_during_scale_in_cooldown():
    r = rule(steps=[{"upperBound": 0, "adjustment": -1}])
    decision, state = decide(r, 10, 40)
    assert desired_of(decision) == 9
    blocked, _ = decide(r, 9, 40, state, now=NOW + timedelta(seconds=299))
    assert blocked.outcome == "skipped:cooldown"
    after, _ = decide(r, 9, 40, state, now=NOW + timedelta(seconds=300))
    assert desired_of(after) == 8


def test_scale_out_during_scale_in_cooldown_proceeds_and_ends_it():
    down = rule(steps=[{"upperBound": 0, "adjustment": -1}])
    up = rule(steps=[{"lowerBound": 0, "adjustment": 2}])
    _, state = decide(down, 10, 40)
    assert state.scale_in_until is not None
    decision, state = decide(up, 9, 60, state, now=NOW + timedelta(seconds=10))
    assert desired_of(decision) == 11
    assert state.scale_in_until is None  # the scale-in cooldown ended
    # ... so a scale-in right after the scale-out's own cooldown is not blocked by the old one
    later, _ = decide(down, 11, 40, state, now=NOW + timedelta(seconds=20))
    assert desired_of(later) == 10


def test_precheck_agrees_with_full_decision():
    r = rule(steps=[{"lowerBound": 0, "adjustment": 2}])
    _, state = decide(r, 10, 55)
    skip = cooldown_precheck(rule=r, scaling=scaling(), state=state, datapoint=55, threshold=50,
                             now=NOW + timedelta(seconds=5), trigger="t")
    full, _ = decide(r, 12, 55, state, now=NOW + timedelta(seconds=5))
    assert skip is not None and skip.outcome == full.outcome == "skipped:cooldown"
    bigger = rule(steps=[{"lowerBound": 0, "upperBound": 10, "adjustment": 2}, {"lowerBound": 10, "adjustment": 5}])
    assert cooldown_precheck(rule=bigger, scaling=scaling(), state=state, datapoint=70, threshold=50,
                             now=NOW + timedelta(seconds=5), trigger="t") is None


# ------------------------------------------------------------------ other rule kinds, clamping
@pytest.mark.parametrize(
    ("kwargs", "capacity", "datapoint", "expected"),
    [
        ({"targetValue": 100}, 4, 250, 10),  # ceil(4 x 250 / 100)
        ({"targetValue": 100}, 4, 101, 5),  # ceil(4.04)
        ({"targetValue": 100}, 0, 50, 1),  # from zero tasks, a positive metric asks for at least one
        ({"targetValue": 100}, 10, 30, 3),  # proportional scale-in
        ({"exactCapacity": 20}, 4, None, 20),
        ({"exactCapacity": 2}, 4, None, 2),
    ],
)
def test_target_value_and_exact_capacity(kwargs, capacity, datapoint, expected):
    decision, _ = decide(rule(**kwargs), capacity, datapoint, threshold=None)
    assert desired_of(decision) == expected


def test_missing_datapoint_acts_as_on_threshold():
    r = rule(steps=[{"lowerBound": 0, "upperBound": 10, "adjustment": 1}, {"lowerBound": 10, "adjustment": 5}])
    decision, _ = decide(r, 4, None)
    assert desired_of(decision) == 5
    assert "treated as on the threshold" in decision.reason


def test_clamped_to_max_and_min():
    up = rule(steps=[{"lowerBound": 0, "adjustment": 10}])
    decision, _ = decide(up, 38, 60, sc=scaling(2, 40))
    assert desired_of(decision) == 40 and "clamped from 48 to 40" in decision.reason
    at_max, _ = decide(up, 40, 60, sc=scaling(2, 40))
    assert at_max.outcome == "skipped:at-max"
    down = rule(steps=[{"upperBound": 0, "adjustment": -5}])
    decision, _ = decide(down, 4, 40, sc=scaling(2, 40))
    assert desired_of(decision) == 2
    at_min, _ = decide(down, 2, 40, sc=scaling(2, 40))
    assert at_min.outcome == "skipped:at-min"


def test_bounds_repair():
    decision, _ = decide_bounds(scaling=scaling(2, 40), state=ScalingState(), capacity=0, cluster="c", service="s",
                                now=NOW, trigger="reconcile")
    assert desired_of(decision) == 2 and decision.outcome == "repair-bounds"
    decision, _ = decide_bounds(scaling=scaling(2, 40), state=ScalingState(), capacity=12, cluster="c", service="s",
                                now=NOW, trigger="reconcile")
    assert decision.outcome == "skipped:within-bounds" and not decision.actions


# ------------------------------------------------------------------ properties
steps_strategy = st.sampled_from([
    [{"lowerBound": 0, "adjustment": 1}],
    [{"lowerBound": 0, "upperBound": 20, "adjustment": 1}, {"lowerBound": 20, "adjustment": "30%",
                                                           "minAdjustmentMagnitude": 2}],
    [{"upperBound": 0, "adjustment": -1}],
    [{"upperBound": 0, "adjustment": "-50%"}],
    WORKED_STEPS,
])


@given(
    steps=steps_strategy,
    capacity=st.integers(min_value=0, max_value=500),
    datapoint=st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
    min_tasks=st.integers(min_value=0, max_value=50),
    span=st.integers(min_value=0, max_value=200),
    seconds=st.integers(min_value=0, max_value=1000),
)
def test_result_always_within_min_max(steps, capacity, datapoint, min_tasks, span, seconds):
    sc = scaling(min_tasks, min_tasks + span)
    _, state = decide(rule(steps=steps), capacity, 60, sc=sc)
    decision, _ = decide(rule(steps=steps), capacity, datapoint, state, sc=sc, now=NOW + timedelta(seconds=seconds))
    desired = desired_of(decision)
    if desired is not None:
        assert sc.minTasks <= desired <= sc.maxTasks


@given(capacity=st.integers(min_value=1, max_value=10_000),
       percent=st.fractions(min_value=Fraction(-100), max_value=Fraction(1000)).filter(lambda p: p != 0))
def test_percent_step_never_zero_when_raw_change_is_not(capacity, percent):
    change = percent_change(capacity, percent)
    assert change != 0
    assert (change > 0) == (percent > 0)
    assert abs(change) <= max(1, abs(Fraction(capacity) * percent / 100))


@given(capacity=st.integers(min_value=0, max_value=1000), datapoint=st.floats(min_value=-1e4, max_value=1e4))
def test_rule_target_is_deterministic(capacity, datapoint):
    r = rule(steps=WORKED_STEPS)
    assert rule_target(r, capacity, datapoint, 50) == rule_target(r, capacity, datapoint, 50)
