"""Alarm-driven scaling with Application Auto Scaling step-scaling semantics, as pure functions.

Sources: aws-facts.md section 2 (rounding, minAdjustmentMagnitude, bound inclusivity, cooldowns).
Everything here is deterministic in its inputs; the caller passes ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from autopilot.models.actions import Decision, SetDesiredCount
from autopilot.models.policy import Scaling, ScalingRule, Step
from autopilot.models.state import ScalingState


def choose_step(steps: list[Step], breach: float) -> Step | None:
    """The step whose bounds contain ``breach`` (metric minus threshold).

    Above the threshold the lower bound is inclusive and the upper exclusive; below it, the lower is
    exclusive and the upper inclusive. Exactly on the threshold both readings are tried, above first.
    """

    def above(s: Step) -> bool:
        return (s.lowerBound is None or breach >= s.lowerBound) and (s.upperBound is None or breach < s.upperBound)

    def below(s: Step) -> bool:
        return (s.lowerBound is None or breach > s.lowerBound) and (s.upperBound is None or breach <= s.upperBound)

    if breach > 0:
        return next((s for s in steps if above(s)), None)
    if breach < 0:
        return next((s for s in steps if below(s)), None)
    return next((s for s in steps if above(s)), None) or next((s for s in steps if below(s)), None)


def percent_change(capacity: int, percent: Fraction, min_magnitude: int | None = None) -> int:
    """Change in tasks for a percent adjustment, rounded as Application Auto Scaling rounds.

    Above 1 round down (12.7 -> 12); in (0, 1] -> 1; in [-1, 0) -> -1; below -1 toward zero
    (-6.67 -> -6). ``min_magnitude`` then raises a non-zero change to at least that many tasks.
    """
    raw = Fraction(capacity) * percent / 100
    if raw > 1:
        change = math.floor(raw)
    elif raw > 0:
        change = 1
    elif raw >= -1 and raw < 0:
        change = -1
    elif raw < -1:
        change = math.ceil(raw)
    else:
        change = 0
    if min_magnitude is not None and change != 0 and abs(change) < min_magnitude:
        change = min_magnitude if change > 0 else -min_magnitude
    return change


def step_change(capacity: int, step: Step) -> int:
    if step.is_percent:
        return percent_change(capacity, step.percent, step.minAdjustmentMagnitude)
    assert isinstance(step.adjustment, int)
    return step.adjustment


def clamp(value: int, scaling: Scaling) -> int:
    return max(scaling.minTasks, min(scaling.maxTasks, value))


@dataclass(frozen=True)
class RuleOutcome:
    """What a rule asks for from a given capacity, before clamping and cooldowns."""

    target: int | None
    explanation: str


def _fmt(value: float) -> str:
    return f"{value:g}"


def rule_target(rule: ScalingRule, capacity: int, datapoint: float | None, threshold: float | None) -> RuleOutcome:
    """Apply one rule to ``capacity``. A missing datapoint counts as sitting on the threshold."""
    if rule.exactCapacity is not None:
        return RuleOutcome(rule.exactCapacity, f"exactCapacity {rule.exactCapacity}")
    metric = datapoint if datapoint is not None else threshold
    if rule.targetValue is not None:
        if metric is None:
            return RuleOutcome(None, "no datapoint and no threshold in the alarm to compare with targetValue")
        base = max(capacity, 1) if metric > 0 else capacity
        target = math.ceil(Fraction(base) * Fraction(metric) / Fraction(rule.targetValue))
        return RuleOutcome(target, f"metric {_fmt(metric)} / targetValue {_fmt(rule.targetValue)} x {base} tasks")
    assert rule.steps is not None
    if datapoint is None or threshold is None:
        breach, seen = 0.0, "no datapoint in the alarm (treated as on the threshold)"
    else:
        breach, seen = datapoint - threshold, f"metric {_fmt(datapoint)} vs threshold {_fmt(threshold)}"
    step = choose_step(rule.steps, breach)
    if step is None:
        return RuleOutcome(None, f"{seen}: no step covers {_fmt(breach)}")
    change = step_change(capacity, step)
    lo = "-inf" if step.lowerBound is None else _fmt(step.lowerBound)
    hi = "+inf" if step.upperBound is None else _fmt(step.upperBound)
    bounds = f"[{lo}, {hi})" if breach >= 0 else f"({lo}, {hi}]"  # inclusive ends as AWS documents them
    return RuleOutcome(
        capacity + change, f"{seen}: step {bounds} adjusts {step.adjustment} of {capacity} = {change:+d}"
    )


def rule_direction(rule: ScalingRule, outcome: RuleOutcome, capacity: int) -> int:
    """+1 when the rule asks for more tasks than ``capacity``, -1 for fewer, 0 for the same or nothing."""
    if outcome.target is None:
        return 0
    return (outcome.target > capacity) - (outcome.target < capacity)


def decide_scaling(
    *,
    rule: ScalingRule,
    scaling: Scaling,
    state: ScalingState,
    capacity: int,
    datapoint: float | None,
    threshold: float | None,
    cluster: str,
    service: str,
    now: datetime,
    trigger: str,
) -> tuple[Decision, ScalingState]:
    """Decide one rule for one service; return the decision and the scaling state to store.

    Cooldowns follow Application Auto Scaling: during a scale-out cooldown only the difference to
    the scale-out that started it is added; scale-in is blocked during its cooldown; a scale-out
    during a scale-in cooldown proceeds at once and ends that cooldown.
    """
    outcome = rule_target(rule, capacity, datapoint, threshold)
    direction = rule_direction(rule, outcome, capacity)
    why = f"{trigger}: {outcome.explanation}"
    if outcome.target is None:
        return Decision(outcome="skipped:no-step", reason=why), state
    in_out_cooldown = state.scale_out_until is not None and now < state.scale_out_until
    in_in_cooldown = state.scale_in_until is not None and now < state.scale_in_until

    if direction > 0:
        if in_out_cooldown and state.scale_out_base is not None:
            from_base = rule_target(rule, state.scale_out_base, datapoint, threshold)
            target = clamp(from_base.target if from_base.target is not None else capacity, scaling)
            if target <= max(capacity, state.scale_out_target or 0):
                until = state.scale_out_until.isoformat() if state.scale_out_until else "?"
                return Decision(
                    outcome="skipped:cooldown",
                    reason=f"{why}; in scale-out cooldown until {until} and the scale-out that started it "
                    f"(from {state.scale_out_base}) already covers {target} tasks",
                ), state
            new_state = state.model_copy(
                update={
                    "scale_out_target": target,
                    "last_action_at": now,
                    "last_desired": target,
                    "scale_in_until": None,
                }
            )
            return _scale(
                cluster,
                service,
                capacity,
                target,
                f"{why}; during the scale-out cooldown only the "
                f"difference to {state.scale_out_base}{from_base.target - state.scale_out_base:+d} is added"
                if from_base.target is not None
                else why,
                "scale-out",
            ), new_state
        target = clamp(outcome.target, scaling)
        if target <= capacity:
            return Decision(
                outcome="skipped:at-max",
                reason=f"{why}; already at maxTasks {scaling.maxTasks}"
                if capacity >= scaling.maxTasks
                else f"{why}; nothing to add",
            ), state
        new_state = state.model_copy(
            update={
                "scale_out_until": now + timedelta(seconds=scaling.scaleOutCooldownSeconds),
                "scale_out_base": capacity,
                "scale_out_target": target,
                "scale_in_until": None,  # a scale-out ends a scale-in cooldown
                "last_action_at": now,
                "last_desired": target,
            }
        )
        return _scale(
            cluster, service, capacity, target, why + _clamped(outcome.target, target), "scale-out"
        ), new_state

    if direction < 0:
        if in_in_cooldown:
            assert state.scale_in_until is not None
            return Decision(
                outcome="skipped:cooldown",
                reason=f"{why}; scale-in blocked by its cooldown until {state.scale_in_until.isoformat()}",
            ), state
        target = clamp(outcome.target, scaling)
        if target >= capacity:
            return Decision(
                outcome="skipped:at-min",
                reason=f"{why}; already at minTasks {scaling.minTasks}"
                if capacity <= scaling.minTasks
                else f"{why}; nothing to remove",
            ), state
        new_state = state.model_copy(
            update={
                "scale_in_until": now + timedelta(seconds=scaling.scaleInCooldownSeconds),
                "last_action_at": now,
                "last_desired": target,
            }
        )
        return _scale(cluster, service, capacity, target, why + _clamped(outcome.target, target), "scale-in"), new_state

    # The rule asks for the current capacity; it may still sit outside [min, max] (drift).
    target = clamp(capacity, scaling)
    if target != capacity:
        return decide_bounds(
            scaling=scaling, state=state, capacity=capacity, cluster=cluster, service=service, now=now, trigger=why
        )
    return Decision(outcome="skipped:no-change", reason=f"{why}; desired count stays {capacity}"), state


def _clamped(asked: int, target: int) -> str:
    return f"; clamped from {asked} to {target}" if asked != target else ""


def _scale(cluster: str, service: str, capacity: int, target: int, reason: str, outcome: str) -> Decision:
    action = SetDesiredCount(cluster=cluster, service=service, desired=target, previous=capacity, reason=reason)
    return Decision(outcome=outcome, reason=reason, actions=(action,))


def decide_bounds(
    *, scaling: Scaling, state: ScalingState, capacity: int, cluster: str, service: str, now: datetime, trigger: str
) -> tuple[Decision, ScalingState]:
    """Bring a desired count that drifted outside [minTasks, maxTasks] back inside (no cooldown applies)."""
    target = clamp(capacity, scaling)
    if target == capacity:
        return Decision(
            outcome="skipped:within-bounds",
            reason=f"{trigger}: {capacity} tasks is within [{scaling.minTasks}, {scaling.maxTasks}]",
        ), state
    side = "below minTasks" if capacity < scaling.minTasks else "above maxTasks"
    reason = f"{trigger}: desired count {capacity} drifted {side}; brought back to {target}"
    new_state = state.model_copy(update={"last_action_at": now, "last_desired": target})
    return _scale(cluster, service, capacity, target, reason, "repair-bounds"), new_state


def step_direction(rule: ScalingRule, datapoint: float | None, threshold: float | None) -> int:
    """The direction a step rule moves in, known without the current capacity (0 if unknown)."""
    if rule.steps is None:
        return 0
    breach = 0.0 if datapoint is None or threshold is None else datapoint - threshold
    step = choose_step(rule.steps, breach)
    if step is None:
        return 0
    sign = step.percent if step.is_percent else Fraction(int(step.adjustment))
    return (sign > 0) - (sign < 0)


def cooldown_precheck(
    *,
    rule: ScalingRule,
    scaling: Scaling,
    state: ScalingState,
    datapoint: float | None,
    threshold: float | None,
    now: datetime,
    trigger: str,
) -> Decision | None:
    """A skip decided from stored state alone, so a cooldown skip needs no DescribeServices call.

    Returns None when the current capacity is needed to decide. Agrees with ``decide_scaling``.
    """
    direction = step_direction(rule, datapoint, threshold)
    if direction < 0 and state.scale_in_until is not None and now < state.scale_in_until:
        return Decision(
            outcome="skipped:cooldown",
            reason=f"{trigger}: scale-in blocked by its cooldown until {state.scale_in_until.isoformat()}",
        )
    if (
        direction > 0
        and state.scale_out_until is not None
        and now < state.scale_out_until
        and state.scale_out_base is not None
        and state.scale_out_target is not None
    ):
        from_base = rule_target(rule, state.scale_out_base, datapoint, threshold)
        if from_base.target is not None and clamp(from_base.target, scaling) <= state.scale_out_target:
            return Decision(
                outcome="skipped:cooldown",
                reason=f"{trigger}: {from_base.explanation}; in scale-out cooldown until "
                f"{state.scale_out_until.isoformat()} and the scale-out that started it (from "
                f"{state.scale_out_base} to {state.scale_out_target}) already covers it",
            )
    return None
