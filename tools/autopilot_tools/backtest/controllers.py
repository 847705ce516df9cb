"""Policies a backtest compares: the user's (through the Lambdas' own decision code) and references.

- ``PolicyController`` replays a policy's rules exactly as the functions decide them: alarm rules
  (steps, targetValue, exactCapacity) through ``decide.scaling`` (cooldown_precheck, decide_scaling)
  each minute their modelled alarm is in ALARM, as the scaler and reconciler do; targetTracking
  rules through ``decide.target_tracking.evaluate`` every minute, as the reconciler does.
- ``aws_target_tracking`` is a *model* of AWS target tracking as users observe it, built from the
  same alarm-rule code. Assumptions (AWS documents none of them; users report them:
  containers-roadmap #1208, #2299): two hidden alarms on 1-minute datapoints, "high" when the metric
  is above the target for 3 of 3 datapoints, "low" when below 90 % of the target for 15 of 15; while
  one is in ALARM, capacity becomes ceil(capacity x metric / target) each minute (proportional in both
  directions), under Application Auto Scaling cooldowns of 300 s out and 300 s in (the ECS defaults).
  AWS documents the shape (proportional and fast out; in only once the metric is well below the
  target, "typically 10 % or more": the low alarm's 90 %), not the datapoints. Where reality differs:
  a real alarm and the policy it invokes act at the earliest when the third datapoint is seen, never
  sooner (the model acts right then: at least as fast as AWS, which favours AWS), and real scale-in
  may remove fewer tasks per step
  than the model's proportional one (keeping more tasks: fewer overload minutes and more task-hours
  than modelled; the one assumption that could flatter the comparison on overload, while raising the
  task-hour budget the other policies must stay within).
- ``step_pair`` is a typical hand-written pair of step-scaling alarms (documented below).
- ``Oracle`` knows demand a start-delay ahead: the cheapest capacity that never overloads. Not a
  policy anyone can run: the limit the others are measured against.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autopilot.decide.scaling import cooldown_precheck, decide_scaling
from autopilot.decide.target_tracking import Cooldowns, Memory, datapoints_needed, evaluate
from autopilot.models.actions import SetDesiredCount
from autopilot.models.policy import Scaling, ScalingRule, Step, TargetTracking
from autopilot.models.state import ScalingState

_OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass
class AlarmModel:
    """A CloudWatch metric alarm on the modelled metric: M of N datapoints beyond the threshold.

    Periods longer than a minute average the minutes of each period (one datapoint per period).
    A minute without a datapoint (no task running) is skipped, as ``treatMissingData: missing``.
    """

    name: str
    threshold: float
    operator: str = "GreaterThanThreshold"
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    period_minutes: int = 1
    state: str = "INSUFFICIENT_DATA"
    last_value: float | None = None
    _breaches: deque[bool] = field(default_factory=deque, repr=False)
    _minutes: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ValueError(f"alarm {self.name}: comparison {self.operator!r} is not modelled "
                             f"(only {', '.join(_OPERATORS)})")
        self._breaches = deque(maxlen=self.evaluation_periods)

    @classmethod
    def from_describe_alarms(cls, raw: dict[str, Any]) -> AlarmModel:
        """From one MetricAlarm of `aws cloudwatch describe-alarms` (or DescribeAlarms)."""
        name = str(raw.get("AlarmName", "?"))
        if raw.get("Threshold") is None:
            raise ValueError(f"alarm {name}: no static Threshold (anomaly-detection alarms are not modelled)")
        period = int(raw.get("Period") or _query_period(raw) or 60)
        periods = int(raw.get("EvaluationPeriods", 1))
        return cls(name=name, threshold=float(raw["Threshold"]),
                   operator=str(raw.get("ComparisonOperator", "GreaterThanThreshold")),
                   evaluation_periods=periods, datapoints_to_alarm=int(raw.get("DatapointsToAlarm") or periods),
                   period_minutes=max(1, period // 60))

    def update(self, minute: int, value: float | None) -> str:
        if value is None:
            return self.state
        if self.period_minutes > 1:
            self._minutes.append(value)
            if (minute + 1) % self.period_minutes:
                return self.state
            value = sum(self._minutes) / len(self._minutes)
            self._minutes = []
        self.last_value = value
        self._breaches.append(_OPERATORS[self.operator](value, self.threshold))
        if sum(self._breaches) >= self.datapoints_to_alarm:
            self.state = "ALARM"
        elif len(self._breaches) >= self.evaluation_periods:
            self.state = "OK"
        return self.state


def _query_period(raw: dict[str, Any]) -> int | None:
    for query in raw.get("Metrics") or []:
        if "MetricStat" in query:
            return int(query["MetricStat"].get("Period", 60))
    return None


class PolicyController:
    """A policy's scaling rules, decided by the same functions the Lambdas run."""

    def __init__(self, name: str, scaling: Scaling, rules: Sequence[ScalingRule], alarms: dict[str, AlarmModel],
                 params: dict[str, object] | None = None) -> None:
        self.name = name
        self.scaling = scaling
        self.alarm_rules = [r for r in rules if r.alarm is not None]
        self.tracking: list[TargetTracking] = [r.targetTracking for r in rules if r.targetTracking is not None]
        missing = sorted({r.alarm for r in self.alarm_rules if r.alarm is not None and r.alarm not in alarms})
        if missing:
            raise ValueError(f"no alarm definition for {', '.join(missing)}: give `aws cloudwatch describe-alarms` "
                             "JSON with --alarms, or --alarms-from-cloudwatch")
        self.alarms = {r.alarm: alarms[r.alarm] for r in self.alarm_rules if r.alarm is not None}
        self.state = ScalingState()
        self.cooldowns = Cooldowns()
        self.memory = Memory()
        depth = max((datapoints_needed(tt) for tt in self.tracking), default=1)
        self.history: deque[float | None] = deque(maxlen=depth)
        self.params = params or {}

    def decide(self, minute: int, now: datetime, seen: float | None, desired: int, running: int) -> int:
        for alarm in self.alarms.values():
            alarm.update(minute, seen)
        for rule in self.alarm_rules:
            alarm = self.alarms[rule.alarm or ""]
            if alarm.state != "ALARM":
                continue
            if cooldown_precheck(rule=rule, scaling=self.scaling, state=self.state, datapoint=alarm.last_value,
                                 threshold=alarm.threshold, now=now, trigger="backtest") is not None:
                continue
            decision, self.state = decide_scaling(
                rule=rule, scaling=self.scaling, state=self.state, capacity=desired, datapoint=alarm.last_value,
                threshold=alarm.threshold, cluster="backtest", service=self.name, now=now, trigger="backtest")
            for action in decision.actions:
                if isinstance(action, SetDesiredCount):
                    desired = action.desired
        if self.tracking:
            self.history.appendleft(seen)
            recent = tuple(self.history)
            series = [recent] * len(self.tracking)
            cooldowns = Cooldowns.of(self.state) if self.alarm_rules else self.cooldowns
            verdict = evaluate(rules=self.tracking, series=series, scaling=self.scaling, memory=self.memory,
                               cooldowns=cooldowns, desired=desired, running=running, now=now)
            self.memory, self.cooldowns = verdict.memory, verdict.cooldowns
            if self.alarm_rules:  # alarm rules share the cooldowns (ScalingState) with targetTracking ones
                self.state = verdict.cooldowns.onto(self.state)
            desired = verdict.desired
        return desired


def aws_target_tracking(target: float, min_tasks: int, max_tasks: int, out_datapoints: int = 3,
                        in_datapoints: int = 15, cooldown_out: int = 300, cooldown_in: int = 300) -> PolicyController:
    """The model of AWS target tracking described in this module's docstring."""
    scaling = Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=cooldown_out,
                      scaleInCooldownSeconds=cooldown_in)
    rules = [ScalingRule(alarm="TargetTracking-AlarmHigh", targetValue=target),
             ScalingRule(alarm="TargetTracking-AlarmLow", targetValue=target)]
    alarms = {
        "TargetTracking-AlarmHigh": AlarmModel("TargetTracking-AlarmHigh", target, "GreaterThanThreshold",
                                               out_datapoints, out_datapoints),
        "TargetTracking-AlarmLow": AlarmModel("TargetTracking-AlarmLow", 0.9 * target, "LessThanThreshold",
                                              in_datapoints, in_datapoints),
    }
    return PolicyController("aws-target-tracking (model)", scaling, rules, alarms,
                            {"targetValue": target, "datapoints": f"{out_datapoints} out / {in_datapoints} in",
                             "cooldowns": f"{cooldown_out}s / {cooldown_in}s"})


def step_pair(target: float, min_tasks: int, max_tasks: int) -> PolicyController:
    """A typical hand-written pair, relative to the target T (T = 70: high > 70, low < 42).

    High alarm: metric > T for 3 of 3 minutes; steps +1 task up to 0.2 T above, +20 % (at least 2)
    up to 0.4 T above, +50 % (at least 3) beyond. Low alarm: metric < 0.6 T for 10 of 10 minutes;
    -10 % (at least 1). Cooldowns 300 s / 300 s.
    """
    scaling = Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=300, scaleInCooldownSeconds=300)
    rules = [
        ScalingRule(alarm="step-high", steps=[
            Step(lowerBound=0, upperBound=0.2 * target, adjustment=1),
            Step(lowerBound=0.2 * target, upperBound=0.4 * target, adjustment="20%", minAdjustmentMagnitude=2),
            Step(lowerBound=0.4 * target, adjustment="50%", minAdjustmentMagnitude=3)]),
        ScalingRule(alarm="step-low", steps=[Step(upperBound=0, adjustment="-10%", minAdjustmentMagnitude=1)]),
    ]
    alarms = {"step-high": AlarmModel("step-high", target, "GreaterThanThreshold", 3, 3),
              "step-low": AlarmModel("step-low", 0.6 * target, "LessThanThreshold", 10, 10)}
    return PolicyController("step pair (typical)", scaling, rules, alarms,
                            {"high": f"> {target:g} 3/3: +1, +20% (min 2), +50% (min 3)",
                             "low": f"< {0.6 * target:g} 10/10: -10% (min 1)"})


class Oracle:
    """Knows demand ``start_delay`` minutes ahead: capacity for the peak of [now, now + delay] at ``utilization``."""

    def __init__(self, demand: Sequence[float], capacity_per_task: float, start_delay: int, min_tasks: int,
                 max_tasks: int, utilization: float = 1.0) -> None:
        self.name = "oracle (knows demand ahead)"
        self.demand, self.delay = demand, start_delay
        self.per_task = capacity_per_task * utilization
        self.min_tasks, self.max_tasks = min_tasks, max_tasks
        self.params: dict[str, object] = {"utilization": utilization}

    def decide(self, minute: int, now: datetime, seen: float | None, desired: int, running: int) -> int:
        peak = max(self.demand[minute:minute + self.delay + 1])
        return max(self.min_tasks, min(self.max_tasks, math.ceil(peak / self.per_task - 1e-9)))
