"""Search a targetTracking rule's settings on a trace; keep the Pareto-best (overload vs task-hours).

The target value is the user's choice (how hot they want tasks to run), so it is fixed unless
asked for; the search varies what decides *how* the rule follows it. It is deterministic: the same
trace, service model and arguments replay the same settings and give the same answer on any machine
(no wall clock decides what is tried; workers only change how fast). Two stages:

1. Every *family* at two stabilization windows (300 s and 900 s). A family fixes everything but the
   window: plain HPA with tolerance 0; trend-aware scale-out looking one start delay + one metric
   period ahead (and one period less) through the newest 2 datapoints, or 3; scale-in paced by a
   300 s cooldown or by 10 % a minute.
2. The window trades task-hours for overload within a family (the longer the window, the more tasks
   are kept), so for the ``top`` families whose best affordable setting is best, the window is then
   bisected on whole minutes toward the task-hour budget (the AWS model's), for ``rounds`` rounds.

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

from autopilot.models.policy import RatePolicy, Scaling, ScalingRule, TargetTracking
from autopilot_tools.backtest.controllers import PolicyController
from autopilot_tools.backtest.model import Result, ServiceModel, simulate

WINDOWS = (300, 900)  # stage 1, seconds
MAX_WINDOW = 3600  # the policy model's bound for scaleInStabilizationSeconds
ROUNDS, TOP = 3, 3  # stage 2


@dataclass(frozen=True)
class Candidate:
    """One point of the search: a rule and the cooldowns of the scaling block it sits in."""

    rule: TargetTracking
    scale_out_cooldown: int = 60
    scale_in_cooldown: int = 0
    family: int = 0  # index of the family in ``families`` (everything but the window)

    def params(self) -> dict[str, object]:
        limits = ",".join(f"{p.value}{'%' if p.type == 'Percent' else ' tasks'}/{p.periodSeconds}s"
                          for p in self.rule.scaleInPolicies) or "none"
        return {"targetValue": self.rule.targetValue, "tolerance": self.rule.tolerance,
                "scaleInStabilizationSeconds": self.rule.scaleInStabilizationSeconds, "scaleInPolicies": limits,
                "datapointsToScaleOut": self.rule.datapointsToScaleOut,
                "scaleOutLookaheadSeconds": self.rule.scaleOutLookaheadSeconds,
                "trendDatapoints": self.rule.trendDatapoints if self.rule.scaleOutLookaheadSeconds else None,
                "scaleInCooldownSeconds": self.scale_in_cooldown}

    def label(self) -> str:
        p = self.params()
        trend = f" ahead={p['scaleOutLookaheadSeconds']}s/{p['trendDatapoints']}dp" if p["trendDatapoints"] else ""
        return (f"tt t={p['targetValue']:g} tol={p['tolerance']:g} win={p['scaleInStabilizationSeconds']}s "
                f"in={p['scaleInPolicies']} cd={self.scale_in_cooldown}s{trend}")

    def scaling(self, min_tasks: int, max_tasks: int) -> Scaling:
        return Scaling(minTasks=min_tasks, maxTasks=max_tasks, scaleOutCooldownSeconds=self.scale_out_cooldown,
                       scaleInCooldownSeconds=self.scale_in_cooldown, rules=[ScalingRule(targetTracking=self.rule)])

    def with_window(self, seconds: int) -> Candidate:
        rule = self.rule.model_copy(update={"scaleInStabilizationSeconds": seconds})
        return Candidate(rule, self.scale_out_cooldown, self.scale_in_cooldown, self.family)

    @property
    def window(self) -> int:
        return self.rule.scaleInStabilizationSeconds


def families(target: float, metric: str | dict[str, Any], targets: Sequence[float] | None = None,
             start_delay_minutes: int = 2) -> list[Candidate]:
    """The families searched (at a 300 s window), in a fixed order.

    The lookahead is the time from the newest datapoint to new tasks serving: the task start delay
    plus one metric period (the datapoint arrives a period late); one period less is also tried.
    """
    ahead = (start_delay_minutes + 1) * 60
    lookaheads = sorted({a for a in (ahead - 60, ahead) if a > 0})
    shapes: list[tuple[dict[str, Any], int]] = [({}, 0)]  # (rule fields, scale-in cooldown)
    for lookahead in reversed(lookaheads):
        trend = {"scaleOutLookaheadSeconds": lookahead, "trendDatapoints": 2}
        shapes += [(trend, 0), (trend, 300)]
    shapes += [({"scaleOutLookaheadSeconds": ahead, "trendDatapoints": 3}, 0),
               ({"scaleOutLookaheadSeconds": lookaheads[0], "trendDatapoints": 2,
                 "scaleInPolicies": [RatePolicy(type="Percent", value=10, periodSeconds=60)]}, 0)]
    out: list[Candidate] = []
    for value in targets or [target]:
        for fields, cooldown in shapes:
            rule = TargetTracking(metric=metric, targetValue=value, tolerance=0.0, scaleInStabilizationSeconds=300,
                                  **fields)
            out.append(Candidate(rule=rule, scale_in_cooldown=cooldown, family=len(out)))
    return out


def candidates(target: float, metric: str | dict[str, Any], targets: Sequence[float] | None = None,
               start_delay_minutes: int = 2) -> list[Candidate]:
    """Stage 1: every family at every window of ``WINDOWS`` (windows outer: a cut keeps every family)."""
    return [f.with_window(w) for w in WINDOWS for f in families(target, metric, targets, start_delay_minutes)]


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


def next_window(members: Sequence[tuple[Candidate, Result]], budget_task_hours: float) -> int | None:
    """The window to try next in one family: between its largest affordable window and the smallest
    unaffordable one above it (on whole minutes); halve or double when all fall on one side."""
    tried = {c.window for c, _ in members}
    cheap = [c.window for c, r in members if r.task_hours <= budget_task_hours]
    dear = [c.window for c, r in members if r.task_hours > budget_task_hours]
    if not cheap:
        low = min(tried)
        guess = max(60, low // 2 // 60 * 60)
    elif not dear or max(dear) < max(cheap):
        high = max(cheap)
        guess = min(MAX_WINDOW, high * 2 // 60 * 60)
    else:
        low = max(cheap)
        high = min(w for w in dear if w > low)
        if high - low <= 60:
            return None
        guess = (low + high) // 2 // 60 * 60
    return guess if guess not in tried and guess >= 60 else None


def refine(job: Job, found: Search, budget_task_hours: float, rounds: int = ROUNDS, top: int = TOP,
           workers: int | None = None, on_result: Callable[[Candidate, Result], None] | None = None,
           deadline: float | None = None) -> Search:
    """Stage 2: each round, bisect the window of the ``top`` families whose best affordable setting
    has the fewest overload minutes (families with none affordable come last)."""
    for _ in range(rounds):
        by_family: dict[int, list[tuple[Candidate, Result]]] = {}
        for candidate, result in found.evaluated:
            by_family.setdefault(candidate.family, []).append((candidate, result))
        ranked: list[tuple[tuple[float, float, int], Candidate]] = []
        for family, members in sorted(by_family.items()):
            window = next_window(members, budget_task_hours)
            if window is None:
                continue
            affordable = [r for _, r in members if r.task_hours <= budget_task_hours]
            best = min(affordable, key=lambda r: (r.overload_minutes, r.task_hours)) if affordable else None
            key = (best.overload_minutes, best.task_hours, family) if best else (float("inf"), float("inf"), family)
            ranked.append((key, members[0][0].with_window(window)))
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


def meets(result: dict[str, Any] | Result, reference: dict[str, Any] | Result, share: float = 0.4) -> bool:
    """Issue 7's bar: at most ``share`` of the reference's overload minutes at no more task-hours."""
    def get(r: dict[str, Any] | Result, key: str) -> float:
        return float(r[key] if isinstance(r, dict) else getattr(r, key))
    return (get(result, "overload_minutes") <= share * get(reference, "overload_minutes")
            and get(result, "task_hours") <= get(reference, "task_hours"))


def snippet(candidate: Candidate, min_tasks: int, max_tasks: int) -> str:
    """The scaling block to paste into a ServicePolicy's spec (only non-default rule fields)."""
    rule = candidate.rule.model_dump(mode="json", exclude_defaults=True)
    rule = {"metric": rule.pop("metric", candidate.rule.metric), "targetValue": rule.pop("targetValue"), **rule}
    if candidate.rule.scaleOutLookaheadSeconds:
        rule["trendDatapoints"] = candidate.rule.trendDatapoints  # said even when it is the default
    block = {"scaling": {"minTasks": min_tasks, "maxTasks": max_tasks,
                         "scaleOutCooldownSeconds": candidate.scale_out_cooldown,
                         "scaleInCooldownSeconds": candidate.scale_in_cooldown,
                         "rules": [{"targetTracking": rule}]}}
    return yaml.safe_dump(block, sort_keys=False, default_flow_style=None, width=100)
