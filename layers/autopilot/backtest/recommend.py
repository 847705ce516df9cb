"""Search a targetTracking rule's settings on a trace; keep the Pareto-best (overload vs task-hours).

The target value is the user's choice (how hot they want tasks to run), so it is fixed unless
asked for; the search varies what decides *how* the rule follows it: tolerance, the scale-in
stabilization window, how fast scale-in may go (rate limit or cooldown) and the datapoints needed to
scale out. Every candidate is replayed through the real decision code (``PolicyController``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from autopilot.backtest.controllers import PolicyController
from autopilot.backtest.model import Result, ServiceModel, simulate
from autopilot.models.policy import RatePolicy, Scaling, ScalingRule, TargetTracking


@dataclass(frozen=True)
class Candidate:
    """One point of the search: a rule and the cooldowns of the scaling block it sits in."""

    rule: TargetTracking
    scale_out_cooldown: int = 60
    scale_in_cooldown: int = 0

    def params(self) -> dict[str, object]:
        limits = ",".join(f"{p.value}{'%' if p.type == 'Percent' else ' tasks'}/{p.periodSeconds}s"
                          for p in self.rule.scaleInPolicies) or "none"
        return {"targetValue": self.rule.targetValue, "tolerance": self.rule.tolerance,
                "scaleInStabilizationSeconds": self.rule.scaleInStabilizationSeconds, "scaleInPolicies": limits,
                "datapointsToScaleOut": self.rule.datapointsToScaleOut,
                "scaleInCooldownSeconds": self.scale_in_cooldown}

    def label(self) -> str:
        p = self.params()
        return (f"tt t={p['targetValue']:g} tol={p['tolerance']:g} win={p['scaleInStabilizationSeconds']}s "
                f"in={p['scaleInPolicies']} cd={self.scale_in_cooldown}s dp={p['datapointsToScaleOut']}")

    def scaling(self, min_tasks: int, max_tasks: int) -> Scaling:
        return Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=self.scale_out_cooldown,
                       scaleInCooldownSeconds=self.scale_in_cooldown, rules=[ScalingRule(targetTracking=self.rule)])


# Scale-in pacing: (scaleInPolicies, scaleInCooldownSeconds): all at once, one step per cooldown, 10 % a minute.
_PACES: list[tuple[list[RatePolicy], int]] = [
    ([], 0),
    ([], 300),
    ([RatePolicy(type="Percent", value=10, periodSeconds=60)], 0),
]
_WINDOWS = (300, 900, 600, 1800, 1200, 450, 750)  # coarse to fine: a budget cut leaves the range covered


def candidates(target: float, metric: str | dict[str, Any], targets: Sequence[float] | None = None) -> list[Candidate]:
    """The search grid in stages, most informative first, so a time budget cuts the tail, not a corner.

    The stabilization window sets where a setting sits between cheap and safe, so each stage spans
    the windows first; tolerance 0 comes first because on every trace tried it dominated wider bands.
    """
    stages: list[tuple[Sequence[float], Sequence[int], Sequence[tuple[list[RatePolicy], int]], int]] = [
        ((0.0,), _WINDOWS, _PACES, 1),
        ((0.05,), _WINDOWS, _PACES, 1),
        ((0.1,), (300, 900, 1800), _PACES[:1], 1),
        ((0.0,), (60, 120, 2400, 3600), _PACES, 1),
        ((0.0,), (300, 900), _PACES[:1], 2),
    ]
    out: list[Candidate] = []
    for tolerances, windows, paces, datapoints in stages:
        for value in targets or [target]:
            for tolerance in tolerances:
                for window in windows:
                    for limits, cooldown in paces:
                        rule = TargetTracking(metric=metric, targetValue=value, tolerance=tolerance,
                                              scaleInStabilizationSeconds=window, scaleInPolicies=limits,
                                              datapointsToScaleOut=datapoints)
                        out.append(Candidate(rule=rule, scale_in_cooldown=cooldown))
    return out


@dataclass
class Job:
    demand: Sequence[float]
    start: datetime
    model: ServiceModel
    min_tasks: int
    max_tasks: int
    initial: int


_JOB: Job | None = None


def _init(job: Job) -> None:
    global _JOB
    _JOB = job


def run_candidate(candidate: Candidate, job: Job | None = None) -> Result:
    job = job or _JOB
    assert job is not None
    scaling = candidate.scaling(job.min_tasks, job.max_tasks)
    controller = PolicyController(candidate.label(), scaling, scaling.rules, {}, candidate.params())
    return simulate(job.demand, job.start, job.model, controller, job.initial)


@dataclass
class Search:
    evaluated: list[tuple[Candidate, Result]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0


def search(job: Job, grid: Sequence[Candidate], budget_seconds: float, workers: int | None = None,
           on_result: Callable[[Candidate, Result], None] | None = None) -> Search:
    """Replay candidates until the grid or the time budget is exhausted (candidates started finish)."""
    started = time.monotonic()
    outcome = Search()
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))

    def done(candidate: Candidate, result: Result) -> None:
        outcome.evaluated.append((candidate, result))
        if on_result:
            on_result(candidate, result)

    queue: Iterator[Candidate] = iter(grid)
    if workers == 1:
        for candidate in queue:
            if time.monotonic() - started > budget_seconds and outcome.evaluated:
                outcome.skipped += 1
                continue
            done(candidate, run_candidate(candidate, job))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(job,)) as pool:
            running: dict[Future[Result], Candidate] = {}
            for candidate in queue:
                if time.monotonic() - started > budget_seconds and outcome.evaluated:
                    outcome.skipped += 1
                    continue
                running[pool.submit(run_candidate, candidate)] = candidate
                while len(running) >= workers:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done(running.pop(future), future.result())
            for future in list(running):
                done(running.pop(future), future.result())
    outcome.seconds = time.monotonic() - started
    return outcome


def _family(candidate: Candidate) -> tuple[object, ...]:
    """Everything but the stabilization window: task-hours grow with the window within a family."""
    rule = candidate.rule
    return (rule.targetValue, rule.tolerance, tuple(rule.scaleInPolicies), rule.datapointsToScaleOut,
            candidate.scale_in_cooldown, candidate.scale_out_cooldown)


def brackets(evaluated: Sequence[tuple[Candidate, Result]], budget_task_hours: float,
             resolution: int = 60) -> list[Candidate]:
    """For each family, the window halfway between its largest affordable window and its smallest
    unaffordable one (at most ``budget_task_hours``): where the best affordable setting hides."""
    families: dict[tuple[object, ...], list[tuple[Candidate, Result]]] = {}
    for candidate, result in evaluated:
        families.setdefault(_family(candidate), []).append((candidate, result))
    tried = {(_family(c), c.rule.scaleInStabilizationSeconds) for c, _ in evaluated}
    ranked: list[tuple[int, Candidate]] = []
    for family, members in families.items():
        cheap = [cr for cr in members if cr[1].task_hours <= budget_task_hours]
        dear = [cr for cr in members if cr[1].task_hours > budget_task_hours]
        if not cheap or not dear:
            continue
        low = max(cheap, key=lambda cr: cr[0].rule.scaleInStabilizationSeconds)
        high = min(dear, key=lambda cr: cr[0].rule.scaleInStabilizationSeconds)
        w_low, w_high = low[0].rule.scaleInStabilizationSeconds, high[0].rule.scaleInStabilizationSeconds
        middle = (w_low + w_high) // 2 // 30 * 30
        if w_high - w_low <= resolution or (family, middle) in tried or not w_low < middle < w_high:
            continue
        rule = low[0].rule.model_copy(update={"scaleInStabilizationSeconds": middle})
        ranked.append((low[1].overload_minutes, Candidate(rule, low[0].scale_out_cooldown, low[0].scale_in_cooldown)))
    return [c for _, c in sorted(ranked, key=lambda oc: oc[0])]


def refine(job: Job, found: Search, budget_task_hours: float, seconds: float, workers: int | None = None,
           on_result: Callable[[Candidate, Result], None] | None = None) -> Search:
    """Bisect the stabilization window of the most promising families until ``seconds`` run out."""
    deadline = time.monotonic() + seconds
    width = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
    while time.monotonic() < deadline:
        round_ = brackets(found.evaluated, budget_task_hours)[:width]
        if not round_:
            break
        more = search(job, round_, max(0.0, deadline - time.monotonic()), workers, on_result)
        found.evaluated += more.evaluated
        found.seconds += more.seconds
    return found


def pareto(evaluated: Sequence[tuple[Candidate, Result]]) -> list[tuple[Candidate, Result]]:
    """Candidates no other beats on both overload minutes and task-hours, cheapest first."""
    ordered = sorted(evaluated, key=lambda cr: (cr[1].task_hours, cr[1].overload_minutes))
    front: list[tuple[Candidate, Result]] = []
    best = None
    for candidate, result in ordered:
        if best is None or result.overload_minutes < best:
            front.append((candidate, result))
            best = result.overload_minutes
    return front


def pick(front: Sequence[tuple[Candidate, Result]], budget_task_hours: float) -> tuple[Candidate, Result] | None:
    """The fewest overload minutes at no more task-hours than ``budget_task_hours``."""
    affordable = [cr for cr in front if cr[1].task_hours <= budget_task_hours]
    return min(affordable, key=lambda cr: (cr[1].overload_minutes, cr[1].task_hours)) if affordable else None


def snippet(candidate: Candidate, min_tasks: int, max_tasks: int) -> str:
    """The scaling block to paste into a ServicePolicy's spec (only non-default rule fields)."""
    rule = candidate.rule.model_dump(mode="json", exclude_defaults=True)
    rule = {"metric": rule.pop("metric", candidate.rule.metric), "targetValue": rule.pop("targetValue"), **rule}
    block = {"scaling": {"minTasks": min_tasks, "maxTasks": max_tasks,
                         "scaleOutCooldownSeconds": candidate.scale_out_cooldown,
                         "scaleInCooldownSeconds": candidate.scale_in_cooldown,
                         "rules": [{"targetTracking": rule}]}}
    return yaml.safe_dump(block, sort_keys=False, default_flow_style=None, width=100)
