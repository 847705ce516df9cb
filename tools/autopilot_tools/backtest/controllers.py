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
- ``aws_predictive`` is a *model* of AWS target tracking combined with AWS predictive scaling (an
  ECS service may have both; capacity is the larger of the two). What AWS documents: the forecast
  needs at least 24 hours of the load metric's history and uses up to 14 days; it is hourly, covers
  the next 48 hours and is refreshed every 6 hours; capacity for an hour is launched ahead by the
  scheduling buffer (default 300 s); predictive scaling never scales in. What it does not document is
  its forecasting model: this stand-in fits ecs-autopilot's own seasonal model (daily and weekly
  shape, level and trend, ``autopilot.decide.forecast``) every 6 hours and sets each hour's capacity
  to the hour's mean forecast demand at the target utilisation (ceil(mean / (capacity per task x
  target / 100))), uncalibrated, from the hour's start minus the buffer.
- ``step_pair`` is a typical hand-written pair of step-scaling alarms (documented below).
- ``Oracle`` knows demand a start-delay ahead: the cheapest capacity that never overloads. Not a
  policy anyone can run: the limit the others are measured against.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autopilot.decide.forecast import SLOT_SECONDS, SeasonalForecast, fit, slot_index
from autopilot.decide.scaling import cooldown_precheck, decide_scaling
from autopilot.decide.target_tracking import Cooldowns, Forecast, Memory, datapoints_needed, evaluate
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


class ForecastFeed:
    """The demand history a predictive rule's forecast is fitted to, as the reconciler would see it.

    ``history`` is demand before the replay (e.g. the first half when the second is replayed), one value
    a minute ending at ``start``; during the replay the minute before ``now`` is the newest visible (the
    metric is a minute late). Fits only use complete days, so one fit a day serves every refresh of that
    day (the same answer the reconciler's hourly refreshes give); ``fits`` is shared by every candidate a
    search replays on the same trace.
    """

    def __init__(self, demand: Sequence[float], start: datetime, history: Sequence[float] = (),
                 days: int = 14) -> None:
        self.start, self.days = start, days
        self.values = list(history) + list(demand)
        self.offset = len(history)
        self.origin = start - timedelta(minutes=len(history))
        self.fits: dict[int, SeasonalForecast | None] = {}
        self._slots: dict[int, float] = {}
        self._added = 0
        self._gated: dict[tuple[float, int], tuple[SeasonalForecast | None, datetime]] = {}  # latest refresh per gate

    def forecast(self, minute: int, now: datetime) -> SeasonalForecast | None:
        day = (now - datetime(1970, 1, 1, tzinfo=now.tzinfo)).days
        if day not in self.fits:
            visible = self.offset + minute  # values[:visible] were seen by now
            for i in range(self._added, visible):
                index = slot_index(self.origin + timedelta(minutes=i))
                self._slots[index] = self._slots.get(index, 0.0) + self.values[i]
            self._added = max(self._added, visible)
            self.fits[day] = fit(self._slots, now, self.days)
        found = self.fits[day]
        return None if found is None else SeasonalForecast(now, found.level, found.trend, found.daily, found.weekly,
                                                           found.error, found.days, naive_error=found.naive_error,
                                                           origin=found.origin)

    def refreshed(self, minute: int, now: datetime, max_error: float, refresh_seconds: int) -> SeasonalForecast | None:
        """The forecast a predictive rule holds at ``now`` under its gate, refreshed every ``refresh_seconds`` as
        the reconciler does (one object per refresh, not one per minute replayed)."""
        key = (max_error, refresh_seconds)
        if key in self._gated:
            held, at = self._gated[key]
            if 0 <= (now - at).total_seconds() < refresh_seconds:  # (a replay of another candidate restarts time)
                return held
        fitted = self.forecast(minute, now)
        held = None if fitted is None else fitted.gated(max_error, refresh_seconds)
        self._gated[key] = (held, now)
        return held


class PolicyController:
    """A policy's scaling rules, decided by the same functions the Lambdas run."""

    def __init__(self, name: str, scaling: Scaling, rules: Sequence[ScalingRule], alarms: dict[str, AlarmModel],
                 params: dict[str, object] | None = None, feed: ForecastFeed | None = None) -> None:
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
        self.feed = feed
        self.predicted: list[float | None] = []  # the predictive rules' forecast need per minute (for charts)

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
            forecasts: list[Forecast | None] | None = None
            if self.feed is not None and any(tt.predictive is not None for tt in self.tracking):
                feed = self.feed
                forecasts = [feed.refreshed(minute, now, tt.predictive.maxError, tt.predictive.refreshSeconds)
                             if tt.predictive is not None else None for tt in self.tracking]
            verdict = evaluate(rules=self.tracking, series=series, scaling=self.scaling, memory=self.memory,
                               cooldowns=cooldowns, desired=desired, running=running, now=now, forecasts=forecasts)
            if forecasts is not None:
                self.predicted.append(max((r.predicted for r in verdict.readings if r.predicted is not None),
                                          default=None))
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


class AwsPredictive:
    """The AWS target tracking model combined with the AWS predictive scaling model (module docstring)."""

    REFRESH = timedelta(hours=6)

    def __init__(self, target: float, min_tasks: int, max_tasks: int, demand: Sequence[float], start: datetime,
                 capacity_per_task: float, history: Sequence[float] = (), buffer_seconds: int = 300) -> None:
        self.name = "aws-tt + predictive (model)"
        self.tracking = aws_target_tracking(target, min_tasks, max_tasks)
        self.scaling = self.tracking.scaling
        self.per_task = capacity_per_task * target / 100
        self.feed = ForecastFeed(demand, start, history)
        self.buffer = timedelta(seconds=buffer_seconds)
        self.min_tasks, self.max_tasks = min_tasks, max_tasks
        self.schedule: dict[datetime, int] = {}  # hour start -> capacity
        self.refreshed: datetime | None = None
        self.predicted: list[float | None] = []
        self.params: dict[str, object] = {"targetValue": target, "forecast": "hourly, refreshed every 6 h, "
                                          "from >= 24 h and <= 14 days", "schedulingBuffer": f"{buffer_seconds}s"}

    def _refresh(self, minute: int, now: datetime) -> None:
        fitted = self.feed.forecast(minute, now)
        self.refreshed = now
        if fitted is None:
            return
        hour = now.replace(minute=0, second=0, microsecond=0)
        slots_per_hour = 3600 // SLOT_SECONDS
        for h in range(49):
            begin = hour + timedelta(hours=h)
            mean_per_slot = sum(fitted.at(begin + timedelta(seconds=k * SLOT_SECONDS))
                                for k in range(slots_per_hour)) / slots_per_hour
            per_minute = mean_per_slot * 60 / SLOT_SECONDS
            tasks = math.ceil(per_minute / self.per_task - 1e-9)
            self.schedule[begin] = max(self.min_tasks, min(self.max_tasks, tasks))

    def decide(self, minute: int, now: datetime, seen: float | None, desired: int, running: int) -> int:
        if self.refreshed is None or now - self.refreshed >= self.REFRESH:
            self._refresh(minute, now)
        tracked = self.tracking.decide(minute, now, seen, desired, running)
        hour = (now + self.buffer).replace(minute=0, second=0, microsecond=0)
        floor = self.schedule.get(hour)
        self.predicted.append(None if floor is None else float(floor))
        return tracked if floor is None else max(tracked, floor)


def aws_predictive(target: float, min_tasks: int, max_tasks: int, demand: Sequence[float], start: datetime,
                   capacity_per_task: float, history: Sequence[float] = ()) -> AwsPredictive:
    """The model of AWS target tracking + predictive scaling described in this module's docstring."""
    return AwsPredictive(target, min_tasks, max_tasks, demand, start, capacity_per_task, history)


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
