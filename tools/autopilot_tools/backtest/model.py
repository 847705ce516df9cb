"""The service model a backtest replays demand against, and what it measures.

A deliberately simple model, the same for every policy compared:

- Each running task serves ``capacity_per_task`` demand units per minute (the trace's unit).
- A desired-count increase starts tasks that serve after ``start_delay_minutes`` (image pull,
  start, health checks); they are billed from the moment they are asked for.
- A decrease cancels tasks still starting first (newest first), then stops running ones at once.
- The policy sees the metric one period late: at minute t it decides on minute t-1's metric.
- The metric is either ``utilization`` (100 x demand / running capacity, like ECS CPUUtilization;
  uncapped unless ``metric_cap`` is set, e.g. 100 for a CPU that saturates) or ``per-task``
  (demand / running tasks, like ALBRequestCountPerTarget).

Measured per minute: utilisation = demand / running capacity. Overload = utilisation > 100 %
(demand above capacity is dropped), "hot" = utilisation > 85 %, task-hours = tasks billed.
Scaling actions are a result with a cost, not a footnote: each action's task starts (a task pulls its
image and warms up, billed before it serves: the start delay is in the task-hours) and task stops
(connections drained, caches lost) are counted; a policy that chases noise pays in both.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

MetricKind = Literal["utilization", "per-task"]
_EPS = 1e-9


@dataclass(frozen=True)
class ServiceModel:
    capacity_per_task: float
    start_delay_minutes: int = 2
    metric: MetricKind = "utilization"
    metric_cap: float | None = None

    def __post_init__(self) -> None:
        if not self.capacity_per_task > 0:
            raise ValueError("capacity per task must be positive")
        if self.start_delay_minutes < 0:
            raise ValueError("start delay must not be negative")

    def observe(self, demand: float, running: int) -> float | None:
        """The metric the service publishes for one minute (None: no task runs, so no datapoint)."""
        if running <= 0:
            return None
        if self.metric == "per-task":
            return demand / running
        value = 100.0 * demand / (running * self.capacity_per_task)
        return min(value, self.metric_cap) if self.metric_cap is not None else value

    def tasks_for(self, metric_target: float, demand: float) -> int:
        """Tasks that put ``demand`` exactly at ``metric_target`` (to size the first minute)."""
        per_task = metric_target if self.metric == "per-task" else self.capacity_per_task * metric_target / 100
        return max(1, math.ceil(demand / per_task - _EPS)) if per_task > 0 else 1


class Controller(Protocol):
    """A scaling policy under test: once a minute, the desired count it sets."""

    name: str

    def decide(self, minute: int, now: datetime, seen: float | None, desired: int, running: int) -> int: ...


@dataclass
class Result:
    """What one policy did on one trace."""

    name: str
    minutes: int
    overload_minutes: int
    hot_minutes: int
    dropped_pct: float
    task_hours: float
    actions: int
    task_starts: int = 0  # tasks asked to start (each bills its start delay before serving)
    task_stops: int = 0  # tasks stopped or cancelled while starting
    desired: list[int] = field(default_factory=list, repr=False)
    running: list[int] = field(default_factory=list, repr=False)
    predicted: list[float | None] = field(default_factory=list, repr=False)  # a forecast's need, when one was used
    params: dict[str, object] = field(default_factory=dict)
    parts: list[tuple[int, float]] = field(default_factory=list, repr=False)  # (overload minutes, task-hours) per part

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "policy": self.name, "overload_minutes": self.overload_minutes, "minutes_over_85pct": self.hot_minutes,
            "dropped_demand_pct": round(self.dropped_pct, 3), "task_hours": round(self.task_hours, 1),
            "scaling_actions": self.actions, "task_starts": self.task_starts, "task_stops": self.task_stops,
            "minutes": self.minutes}
        if self.params:
            out["params"] = self.params
        return out


def simulate(demand: Sequence[float], start: datetime, model: ServiceModel, controller: Controller,
             initial: int, keep_series: bool = False, parts: int = 1) -> Result:
    """Replay ``demand`` (one value per minute) through ``controller`` against ``model``; ``parts`` > 1 also
    counts overload minutes and task-hours for that many consecutive equal parts (``Result.parts``)."""
    capacity = model.capacity_per_task
    delay = model.start_delay_minutes
    desired = running = initial
    pending: deque[list[int]] = deque()  # [ready minute, tasks], oldest first
    seen: float | None = None
    overload = hot = actions = starts = stops = 0
    dropped = billed = 0.0
    desired_series: list[int] = []
    running_series: list[int] = []
    minute_delta = timedelta(minutes=1)
    now = start
    bounds = [len(demand) * (k + 1) // parts for k in range(parts)] if parts > 1 else []
    cuts: list[tuple[int, float]] = []  # (overload, billed) at each part's end
    split: list[tuple[int, float]] = []
    for t, load in enumerate(demand):
        if len(cuts) < len(bounds) - 1 and t == bounds[len(cuts)]:
            cuts.append((overload, billed))
        while pending and pending[0][0] <= t:
            running += pending.popleft()[1]
        wanted = controller.decide(t, now, seen, desired, running)
        if wanted != desired:
            actions += 1
            if wanted > desired:
                starts += wanted - desired
                pending.append([t + delay, wanted - desired])
                while pending and pending[0][0] <= t:  # a zero start delay serves at once
                    running += pending.popleft()[1]
            else:
                remove = desired - wanted
                stops += remove
                while remove and pending:
                    cancelled = min(remove, pending[-1][1])
                    pending[-1][1] -= cancelled
                    remove -= cancelled
                    if pending[-1][1] == 0:
                        pending.pop()
                running -= remove
            desired = wanted
        served = running * capacity
        if load > served * (1 + _EPS):
            overload += 1
            dropped += load - served
        if load > 0.85 * served * (1 + _EPS):
            hot += 1
        billed += desired
        seen = model.observe(load, running)
        if keep_series:
            desired_series.append(desired)
            running_series.append(running)
        now += minute_delta
    total = sum(demand)
    if bounds:
        cuts.append((overload, billed))
        previous = (0, 0.0)
        for end in cuts:
            split.append((end[0] - previous[0], (end[1] - previous[1]) / 60))
            previous = end
    return Result(name=controller.name, minutes=len(demand), overload_minutes=overload, hot_minutes=hot,
                  dropped_pct=100.0 * dropped / total if total > 0 else 0.0, task_hours=billed / 60,
                  actions=actions, task_starts=starts, task_stops=stops, desired=desired_series,
                  running=running_series, parts=split)
