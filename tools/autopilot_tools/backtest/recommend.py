"""Search a targetTracking rule's settings on a trace; keep the Pareto-best (overload vs task-hours).

It optimises what a service owner pays for: overload minutes, at no more task-hours than the AWS
target-tracking model (less a 1 % margin, over the whole tuning data and over each of its two halves, so the
pick stays within them on data it was not tuned on), under a churn limit (at most ``max_actions_ratio`` x
the AWS model's scaling actions, 2 by default: a rule that buys its overload minutes with constant task
starts and stops is not a better rule). It is deterministic: the same trace, service model and arguments replay the same
settings and give the same answer on any machine (no wall clock decides what is tried; workers only
change how fast). Two stages, over robust rules (``sizing: robust``):

1. Every *family* at two scale-in percentiles (80 and 95). A family fixes everything but the
   percentile: the target value (the given one and, unless fixed, 5 and 10 points above it: with a
   percentile keeping noise headroom, a higher target can be the cheaper way to the same overload),
   the window (900 s, 1800 s or 3600 s: a longer memory of the service's own peaks is the cheaper headroom
   where they recur within the hour), the band and hysteresis (the defaults, or the narrower 0.1 / 0.5) and,
   when the trace is long enough to fit a forecast (3 days), the predictive lever off, on, or on without
   lowering the scale-in percentile for a skilled forecast (``trustedScaleInPercentile: 100``: the search
   can then still buy the headroom of a high percentile with the lever on).
2. The percentile trades task-hours for overload within a family, so for the ``top`` families whose
   best affordable setting is best, it is bisected toward the task-hour budget for ``rounds`` rounds.

Every candidate is replayed through the real decision code (``PolicyController``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from autopilot.models.policy import MetricSpec, Scaling, ScalingRule, TargetTracking
from autopilot_tools.backtest.controllers import ForecastFeed, PolicyController
from autopilot_tools.backtest.model import Result, ServiceModel, simulate

PERCENTILES = (80.0, 95.0)  # stage 1
# The fourth pass of issue 12 widened the grid from (900, 1800) x (+0, +5): on the benchmark's held-out halves the
# tuned goal went from 4 to 7 of 12 traces (NASA picks +10, elb and steady-low 3600 s), for about twice the replays.
WINDOWS = (900, 1800, 3600)
# The band and the hysteresis, as (tolerance, scaleInHysteresis): the rule's defaults (None: 0.15 and 1, fewer
# actions) and the narrower pair they replaced (more actions, sometimes fewer overload minutes for the same cost).
BANDS: tuple[tuple[float | None, float | None], ...] = ((None, None), (0.1, 0.5))
TARGET_STEPS = (0.0, 5.0, 10.0)  # added to the given target unless it is fixed
# Stage 2: with 54 families (fourth pass of issue 12), bisecting only the best 3 for 3 rounds left settings a
# family further down would have reached untried; 5 for 4 rounds costs ~10 % more replays and, on synthetic seeds
# no choice was made on, found better held-out picks for bursty-low (0.37x -> 0.32x) and steady-low (0.61x -> 0.49x).
ROUNDS, TOP = 4, 5
MIN_PERCENTILE, MAX_PERCENTILE = 50.0, 99.0
PREDICTIVE_DAYS = 3  # a trace shorter than this has no forecast to fit (2 days to fit and score, 1 to use)
MAX_ACTIONS_RATIO = 2.0
UNTRUSTED = 100.0  # a predictive family's trustedScaleInPercentile that keeps the searched percentile as it is
# Pick within 99 % of the AWS model's task-hours over the tuning data AND over each of its two halves: a setting's
# cost moves by a few % from one part of a trace to the next, and a setting whose cost fits only on average is the
# one that exceeds the budget on data it was not tuned on. (The first pass used a flat 3 % margin instead: on the
# benchmark's held-out halves it left 2-7 % of the budget unused, and overload with it.)
MARGIN = 0.01
PARTS = 2
LOAD_METRIC = "my-service-requests"  # the printed predictive block's loadMetric: edit it


@dataclass(frozen=True)
class Candidate:
    """One point of the search: a targetTracking rule (the scaling block keeps its default cooldowns)."""

    rule: TargetTracking
    family: int = 0  # index of the family in ``families`` (everything but the percentile)

    def params(self) -> dict[str, object]:
        r = self.rule
        return {"targetValue": r.targetValue, "scaleInPercentile": r.in_percentile,
                "scaleInStabilizationSeconds": r.window_seconds, "tolerance": r.band_tolerance,
                "scaleInHysteresis": r.in_hysteresis, "predictive": r.predictive is not None,
                "trustedScaleInPercentile": None if r.predictive is None else r.predictive.trustedScaleInPercentile}

    def label(self) -> str:
        p = self.params()
        return (f"robust t={p['targetValue']:g} p{p['scaleInPercentile']:g} win={p['scaleInStabilizationSeconds']}s "
                f"tol={p['tolerance']:g} hyst={p['scaleInHysteresis']:g}"
                + (f" +predictive (trusted p{p['trustedScaleInPercentile']:g})" if p["predictive"] else ""))

    def scaling(self, min_tasks: int, max_tasks: int) -> Scaling:
        return Scaling(minTasks=min_tasks, maxTasks=max_tasks, rules=[ScalingRule(targetTracking=self.rule)])

    def with_percentile(self, value: float) -> Candidate:
        return Candidate(self.rule.model_copy(update={"scaleInPercentile": round(value, 1)}), self.family)

    @property
    def percentile(self) -> float:
        return self.rule.in_percentile


def families(target: float, metric: str | dict[str, Any], targets: Sequence[float] | None = None,
             predictive: bool = False, start_delay_minutes: int = 2) -> list[Candidate]:
    """The families searched (at the first percentile), in a fixed order."""
    values = list(targets) if targets else [min(99.0, target + step) for step in TARGET_STEPS]
    values = list(dict.fromkeys(values))
    levers: list[dict[str, Any] | None] = [None]
    if predictive:
        on: dict[str, Any] = {"loadMetric": LOAD_METRIC, "taskStartSeconds": start_delay_minutes * 60}
        levers += [on, {**on, "trustedScaleInPercentile": UNTRUSTED}]
    out: list[Candidate] = []
    for value in values:
        for window in WINDOWS:
            for tolerance, hysteresis in BANDS:
                for lever in levers:
                    fields: dict[str, Any] = {"metric": metric, "targetValue": value,
                                              "scaleInPercentile": PERCENTILES[0],
                                              "scaleInStabilizationSeconds": window}
                    if tolerance is not None:
                        fields["tolerance"] = tolerance
                    if hysteresis is not None:
                        fields["scaleInHysteresis"] = hysteresis
                    if lever is not None:
                        fields["predictive"] = lever
                    out.append(Candidate(TargetTracking.model_validate(fields), family=len(out)))
    return out


def candidates(target: float, metric: str | dict[str, Any], targets: Sequence[float] | None = None,
               predictive: bool = False, start_delay_minutes: int = 2) -> list[Candidate]:
    """Stage 1: every family at every percentile of ``PERCENTILES`` (percentiles outer: a cut keeps every family)."""
    base = families(target, metric, targets, predictive, start_delay_minutes)
    return [f.with_percentile(p) for p in PERCENTILES for f in base]


@dataclass
class Job:
    demand: Sequence[float]
    start: datetime
    model: ServiceModel
    min_tasks: int
    max_tasks: int
    initial: int
    history: Sequence[float] = ()  # demand before ``start`` (a predictive rule's forecast is fitted to it)
    feed: ForecastFeed | None = None

    def forecasts(self) -> ForecastFeed:
        """One feed per job: its fits (one per day) serve every candidate replayed on this job."""
        if self.feed is None:
            self.feed = ForecastFeed(self.demand, self.start, self.history)
        return self.feed


def predictive_possible(job: Job) -> bool:
    return (len(job.history) + len(job.demand)) >= PREDICTIVE_DAYS * 1440


_JOB: Job | None = None


def _init(job: Job) -> None:
    global _JOB
    _JOB = job


def controller(candidate: Candidate, job: Job) -> PolicyController:
    scaling = candidate.scaling(job.min_tasks, job.max_tasks)
    feed = job.forecasts() if candidate.rule.predictive is not None else None
    return PolicyController(candidate.label(), scaling, scaling.rules, {}, candidate.params(), feed=feed)


def run_candidate(candidate: Candidate, job: Job | None = None) -> Result:
    job = job or _JOB
    assert job is not None
    result = simulate(job.demand, job.start, job.model, controller(candidate, job), job.initial, parts=PARTS)
    result.params = candidate.params()
    return result


@dataclass
class Search:
    evaluated: list[tuple[Candidate, Result]] = field(default_factory=list)
    skipped: int = 0  # candidates left out by a wall-clock --budget (then the answer depends on the machine)
    seconds: float = 0.0
    rounds: int = 0


def search(job: Job, grid: Sequence[Candidate], workers: int | None = None,
           on_result: Callable[[Candidate, Result], None] | None = None, deadline: float | None = None) -> Search:
    """Replay ``grid``; results in grid order whatever the workers. ``deadline`` (time.monotonic())
    is an optional cut: candidates not started by then are skipped (at least one always runs)."""
    started = time.monotonic()
    outcome = Search()
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
    results: list[Result | None] = [None] * len(grid)
    if workers == 1 or len(grid) == 1:
        for i, candidate in enumerate(grid):
            if deadline is not None and time.monotonic() > deadline and i:
                outcome.skipped += len(grid) - i
                break
            results[i] = run_candidate(candidate, job)
            if on_result:
                on_result(candidate, results[i])  # type: ignore[arg-type]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(job,)) as executor:
            pending = []
            for i, candidate in enumerate(grid):
                if deadline is not None and time.monotonic() > deadline and i:
                    outcome.skipped += len(grid) - i
                    break
                pending.append((i, executor.submit(run_candidate, candidate)))
                # Keep at most ``workers`` queued so a deadline can still stop the rest.
                while len([f for _, f in pending if not f.done()]) >= workers:
                    next(f for _, f in pending if not f.done()).result()
            for i, future in pending:
                results[i] = future.result()
                if on_result:
                    on_result(grid[i], results[i])  # type: ignore[arg-type]
    outcome.evaluated = [(c, r) for c, r in zip(grid, results, strict=True) if r is not None]
    outcome.seconds = time.monotonic() - started
    return outcome


@dataclass(frozen=True)
class Limits:
    """What a setting must stay within to be picked: the task-hour budget, over the whole replay and over
    each of its ``PARTS`` (``parts``: one budget per part; a setting whose cost fits only on average is not
    picked), and the churn limit."""

    task_hours: float
    actions: float = float("inf")
    parts: tuple[float, ...] = ()

    def allows(self, result: Result) -> bool:
        return (result.task_hours <= self.task_hours and result.actions <= self.actions
                and all(used <= budget for (_, used), budget in zip(result.parts, self.parts, strict=False)))

    @classmethod
    def within(cls, reference: Result, margin: float, actions: float = float("inf")) -> Limits:
        """(1 - margin) x the reference's task-hours, over the whole and over each of its parts."""
        return cls((1 - margin) * reference.task_hours, actions, tuple((1 - margin) * hours for _, hours in
                                                                       reference.parts))


def next_percentile(members: Sequence[tuple[Candidate, Result]], limits: Limits) -> float | None:
    """The percentile to try next in one family: between its highest affordable percentile and the lowest
    unaffordable one above it; lower or higher when all fall on one side; None when settled (< 1 apart)."""
    tried = {c.percentile for c, _ in members}
    cheap = [c.percentile for c, r in members if limits.allows(r)]
    dear = [c.percentile for c, r in members if not limits.allows(r)]
    if not cheap:
        low = min(tried)
        guess = max(MIN_PERCENTILE, low - (low - MIN_PERCENTILE) / 2)
    elif not dear or max(dear) < max(cheap):
        high = max(cheap)
        guess = min(MAX_PERCENTILE, high + (MAX_PERCENTILE - high) / 2)
    else:
        low = max(cheap)
        high = min(p for p in dear if p > low)
        guess = (low + high) / 2
    guess = round(guess, 1)
    if any(abs(guess - p) < 1.0 for p in tried):
        return None
    return guess


def refine(job: Job, found: Search, limits: Limits, rounds: int = ROUNDS, top: int = TOP,
           workers: int | None = None, on_result: Callable[[Candidate, Result], None] | None = None,
           deadline: float | None = None) -> Search:
    """Stage 2: each round, bisect the percentile of the ``top`` families whose best affordable setting
    has the fewest overload minutes (families with none affordable come last)."""
    for _ in range(rounds):
        by_family: dict[int, list[tuple[Candidate, Result]]] = {}
        for candidate, result in found.evaluated:
            by_family.setdefault(candidate.family, []).append((candidate, result))
        ranked: list[tuple[tuple[float, float, int], Candidate]] = []
        for family, members in sorted(by_family.items()):
            value = next_percentile(members, limits)
            if value is None:
                continue
            affordable = [r for _, r in members if limits.allows(r)]
            best = min(affordable, key=lambda r: (r.overload_minutes, r.task_hours)) if affordable else None
            key = (best.overload_minutes, best.task_hours, family) if best else (float("inf"), float("inf"), family)
            ranked.append((key, members[0][0].with_percentile(value)))
        batch = [c for _, c in sorted(ranked, key=lambda kc: kc[0])[:top]]
        if not batch or (deadline is not None and time.monotonic() > deadline):
            break
        more = search(job, batch, workers, on_result, deadline)
        found.evaluated += more.evaluated
        found.skipped += more.skipped
        found.seconds += more.seconds
        found.rounds += 1
    return found


def planned(grid: Sequence[Candidate], rounds: int = ROUNDS, top: int = TOP) -> int:
    """The most replays a search makes (for a progress bar)."""
    return len(grid) + rounds * top


def pareto(evaluated: Sequence[tuple[Candidate, Result]], max_actions: float = float("inf"),
           ) -> list[tuple[Candidate, Result]]:
    """Candidates within the churn limit that no other beats on both overload minutes and task-hours,
    cheapest first."""
    ordered = sorted((cr for cr in evaluated if cr[1].actions <= max_actions),
                     key=lambda cr: (cr[1].task_hours, cr[1].overload_minutes))
    front: list[tuple[Candidate, Result]] = []
    best = None
    for candidate, result in ordered:
        if best is None or result.overload_minutes < best:
            front.append((candidate, result))
            best = result.overload_minutes
    return front


def pick(evaluated: Sequence[tuple[Candidate, Result]], limits: Limits) -> tuple[Candidate, Result] | None:
    """The fewest overload minutes within ``limits`` (task-hours, in every part too, and actions)."""
    affordable = [cr for cr in evaluated if limits.allows(cr[1])]
    return min(affordable, key=lambda cr: (cr[1].overload_minutes, cr[1].task_hours)) if affordable else None


def meets(result: dict[str, Any] | Result, reference: dict[str, Any] | Result, share: float = 0.35) -> bool:
    """Issue 12's bar for a tuned rule: at most ``share`` of the reference's overload minutes at no more task-hours."""
    def get(r: dict[str, Any] | Result, key: str) -> float:
        return float(r[key] if isinstance(r, dict) else getattr(r, key))
    return (get(result, "overload_minutes") <= share * get(reference, "overload_minutes")
            and get(result, "task_hours") <= get(reference, "task_hours"))


def snippet(candidate: Candidate, min_tasks: int, max_tasks: int) -> str:
    """The scaling block to paste into a ServicePolicy's spec (only non-default rule fields)."""
    rule = candidate.rule.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    metric = rule.pop("metric", candidate.rule.metric)
    if isinstance(metric, MetricSpec):
        metric = metric.model_dump(mode="json", exclude_defaults=True)
    rule = {"metric": metric, "targetValue": rule.pop("targetValue"), **rule}
    block = {"scaling": {"minTasks": min_tasks, "maxTasks": max_tasks, "rules": [{"targetTracking": rule}]}}
    return yaml.safe_dump(block, sort_keys=False, default_flow_style=None, width=100)
