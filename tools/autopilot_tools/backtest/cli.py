"""`autopilot backtest` and `autopilot recommend` (the CLI forwards every argument after the command here)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autopilot.models.policy import ScalingRule, ServicePolicy
from autopilot_tools.backtest.controllers import (
    AlarmModel,
    ForecastFeed,
    Oracle,
    PolicyController,
    aws_predictive,
    aws_target_tracking,
    step_pair,
)
from autopilot_tools.backtest.model import Result, ServiceModel, simulate
from autopilot_tools.backtest.recommend import (
    MARGIN,
    MAX_ACTIONS_RATIO,
    PARTS,
    ROUNDS,
    Candidate,
    Job,
    Limits,
    candidates,
    meets,
    pareto,
    pick,
    planned,
    predictive_possible,
    refine,
    run_candidate,
    search,
    snippet,
)
from autopilot_tools.backtest.report import document, html_page, table
from autopilot_tools.backtest.trace import (
    FILLS,
    Progress,
    Trace,
    TraceError,
    chunks,
    describe_alarms_json,
    fetch_metric,
    metric_query,
    parse_time,
    read_trace,
)

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or inputs: printed as one line, exit 2 (1 for an invalid policy file)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _common(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("demand trace (one of)")
    source.add_argument("trace", nargs="?", type=Path,
                        help="CSV (timestamp,value) or the JSON `aws cloudwatch get-metric-data` prints")
    source.add_argument("--query-id", help="which MetricDataResults Id of a get-metric-data JSON to use")
    source.add_argument("--fill", choices=FILLS, default="hold",
                        help="how coarser datapoints become one value a minute: hold each value until the next "
                             "(default: every change a step, as a service learns of it) or linear ramps (optimistic: "
                             "a trend lever sees the next point early, which real minute metrics never allow)")
    source.add_argument("--from-cloudwatch", action="store_true", help="fetch the metric with GetMetricData")
    cw = parser.add_argument_group("--from-cloudwatch")
    cw.add_argument("--namespace", default="AWS/ApplicationELB")
    cw.add_argument("--metric-name", default="RequestCount")
    cw.add_argument("--dimension", action="append", default=[], metavar="NAME=VALUE")
    cw.add_argument("--stat", default="Sum")
    cw.add_argument("--period", type=int, default=60, help="seconds (default 60)")
    cw.add_argument("--days", type=float, default=14.0, help="how far back from --end (default 14)")
    cw.add_argument("--end", help="ISO time (default now)")
    model = parser.add_argument_group("service model")
    model.add_argument("--capacity-per-task", type=float,
                       help="demand one task serves per minute at 100 %% (default: p95 demand / --tasks-at-p95)")
    model.add_argument("--tasks-at-p95", type=float, default=10.0,
                       help="with no --capacity-per-task: tasks that serve the p95 demand at 100 %% (default 10)")
    model.add_argument("--derive-from", choices=["all", "first-half"], default="all",
                       help="the part of the trace the p95 comes from (recommend --holdout always uses the first "
                            "half: nothing is derived from the part a setting is judged on)")
    model.add_argument("--start-delay", type=int, default=120, help="seconds from scale-out to serving (default 120)")
    model.add_argument("--metric", choices=["utilization", "per-task"], default="utilization",
                       help="what the policy's metric measures: 100 x demand / capacity (CPU-like), or demand per "
                            "running task (RequestCountPerTarget-like); default utilization")
    model.add_argument("--metric-cap", type=float, help="cap the utilization metric (e.g. 100 for a saturating CPU)")
    model.add_argument("--min-tasks", type=int, help="default: the policy's, else 1")
    model.add_argument("--max-tasks", type=int, help="default: the policy's, else 10000")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    out.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")


def _trace(args: argparse.Namespace, progress_label: str = "GetMetricData") -> Trace:
    if args.from_cloudwatch:
        if args.trace is not None:
            raise UsageError("give a trace file or --from-cloudwatch, not both")
        dims = {}
        for item in args.dimension:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise UsageError(f"--dimension {item!r}: expected NAME=VALUE")
            dims[name] = value
        end = parse_time(args.end) if args.end else datetime.now(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(days=args.days)
        from autopilot.aws.clients import client

        bar = Progress(progress_label, chunks(start, end), force=args.progress)
        query = metric_query(args.namespace, args.metric_name, dims, args.stat, args.period)
        return fetch_metric(client("cloudwatch").get_metric_data, query, start, end, bar,
                            name=f"{args.namespace}/{args.metric_name}", fill=args.fill)
    if args.trace is None:
        raise UsageError("give a trace file (CSV or get-metric-data JSON) or --from-cloudwatch")
    return read_trace(args.trace, args.query_id, args.fill)


def _model(args: argparse.Namespace, trace: Trace, derive_from: Trace | None = None) -> ServiceModel:
    """The service model; a p95-derived capacity comes from ``derive_from`` (default: as --derive-from says)."""
    capacity = args.capacity_per_task
    if capacity is None:
        if args.tasks_at_p95 <= 0:
            raise UsageError("--tasks-at-p95 must be positive")
        source = derive_from or (halves(trace)[0] if args.derive_from == "first-half" else trace)
        capacity = source.percentile(95) / args.tasks_at_p95
        if capacity <= 0:
            raise UsageError("the trace's p95 demand is 0: give --capacity-per-task")
    if capacity <= 0:
        raise UsageError("--capacity-per-task must be positive")
    if args.start_delay < 0:
        raise UsageError("--start-delay must not be negative")
    return ServiceModel(capacity_per_task=capacity, start_delay_minutes=round(args.start_delay / 60),
                        metric=args.metric, metric_cap=args.metric_cap)


def _load_policy(path: Path, service: str | None) -> ServicePolicy:
    from autopilot_tools.policyfile import load_policies

    policies, errors = load_policies(path)
    if errors:
        raise UsageError("\n".join(str(e) for e in errors), EXIT_INVALID)
    services = [p for p in policies if isinstance(p, ServicePolicy) and p.spec.scaling is not None]
    if service:
        services = [p for p in services if f"{p.metadata.cluster}/{p.metadata.service}" == service]
    if not services:
        raise UsageError(f"{path}: no ServicePolicy with scaling rules" + (f" for {service}" if service else ""))
    if len(services) > 1:
        names = ", ".join(f"{p.metadata.cluster}/{p.metadata.service}" for p in services)
        raise UsageError(f"{path}: several services ({names}); choose one with --service CLUSTER/SERVICE")
    return services[0]


def select_rules(rules: list[ScalingRule], selectors: list[str]) -> list[ScalingRule]:
    """Rules by 0-based index, alarm name, or targetTracking metric (alarm name or key); all by default."""
    if not selectors:
        return rules
    chosen: list[ScalingRule] = []
    for selector in selectors:
        found = [r for i, r in enumerate(rules)
                 if selector == str(i) or selector == r.alarm
                 or (r.targetTracking is not None and selector in (r.targetTracking.metric, r.targetTracking.key))]
        if not found:
            raise UsageError(f"--rule {selector!r} matches no rule (use an index from 0, an alarm name or a metric)")
        chosen += [r for r in found if r not in chosen]
    return chosen


def _alarms(args: argparse.Namespace, rules: list[ScalingRule]) -> dict[str, AlarmModel]:
    names = sorted({r.alarm for r in rules if r.alarm is not None})
    if not names:
        return {}
    raw: list[dict[str, Any]] = []
    if args.alarms:
        raw = describe_alarms_json(args.alarms)
    elif args.alarms_from_cloudwatch:
        from autopilot.aws.clients import client

        cw = client("cloudwatch")
        for start in range(0, len(names), 100):
            for page in cw.get_paginator("describe_alarms").paginate(AlarmNames=names[start:start + 100]):
                raw += page.get("MetricAlarms", [])
    else:
        raise UsageError(f"the policy's alarm rules need their alarms ({', '.join(names)}): give "
                         "`aws cloudwatch describe-alarms` JSON with --alarms FILE, or --alarms-from-cloudwatch")
    try:
        return {a["AlarmName"]: AlarmModel.from_describe_alarms(a) for a in raw if a.get("AlarmName") in names}
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _reference_target(policy: ServicePolicy | None, rules: list[ScalingRule], given: float | None) -> float:
    if given is not None:
        return given
    tracked = [r.targetTracking.targetValue for r in rules if r.targetTracking is not None]
    targets = [r.targetValue for r in rules if r.targetValue is not None]
    return (tracked or targets or [70.0])[0]


def _bounds(args: argparse.Namespace, policy: ServicePolicy | None) -> tuple[int, int]:
    scaling = policy.spec.scaling if policy else None
    low = args.min_tasks if args.min_tasks is not None else (scaling.minTasks if scaling else 1)
    high = args.max_tasks if args.max_tasks is not None else (scaling.maxTasks if scaling else 10000)
    if not 0 <= low <= high:
        raise UsageError(f"need 0 <= min tasks ({low}) <= max tasks ({high})")
    return low, high


def _guard(run: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"autopilot: {exc}", file=sys.stderr)
        return exc.code
    except (TraceError, ValueError, OSError) as exc:
        print(f"autopilot: {exc}", file=sys.stderr)
        return EXIT_USAGE


# ------------------------------------------------------------------ backtest

def backtest_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopilot backtest",
        description="Replay a metric history through a policy (with the functions' own decision code) and "
                    "reference models against a simple service model; report overload, cost and actions.")
    _common(parser)
    policy = parser.add_argument_group("policy under test")
    policy.add_argument("--policy", type=Path, help="policy YAML file (its ServicePolicy's scaling rules)")
    policy.add_argument("--service", help="CLUSTER/SERVICE when the file holds several")
    policy.add_argument("--rule", action="append", default=[], help="rule to replay (index, alarm or metric); "
                        "repeatable; default all")
    policy.add_argument("--alarms", type=Path, help="`aws cloudwatch describe-alarms` JSON for alarm rules")
    policy.add_argument("--alarms-from-cloudwatch", action="store_true", help="DescribeAlarms for alarm rules")
    refs = parser.add_argument_group("reference models")
    refs.add_argument("--target", type=float, help="target of the reference models (default: the policy's, else 70)")
    refs.add_argument("--no-references", action="store_true")
    parser.add_argument("--html", type=Path, help="write a self-contained HTML chart here")
    return parser


def references(trace: Trace, model: ServiceModel, target: float, low: int, high: int,
               history: Sequence[float] = (), steps: bool = True) -> list[Any]:
    """The reference models, in report order: AWS target tracking, AWS target tracking + predictive
    (when there is a day of history to forecast from), the step pair, the oracle."""
    out: list[Any] = [aws_target_tracking(target, low, high)]
    if len(history) + trace.minutes >= 2 * 1440:
        out.append(aws_predictive(target, low, high, trace.values, trace.start, model.capacity_per_task, history))
    if steps:
        out.append(step_pair(target, low, high))
    out.append(Oracle(trace.values, model.capacity_per_task, model.start_delay_minutes, low, high))
    return out


def build_controllers(args: argparse.Namespace, trace: Trace, model: ServiceModel) -> tuple[list[Any], float]:
    """The policy under test (if any) and the reference models, and the target that sizes the first minute."""
    policy = _load_policy(args.policy, args.service) if args.policy else None
    low, high = _bounds(args, policy)
    controllers: list[Any] = []
    rules: list[ScalingRule] = []
    if policy is not None:
        scaling = policy.spec.scaling
        assert scaling is not None
        rules = select_rules(scaling.rules, args.rule)
        bounded = scaling.model_copy(update={"minTasks": low, "maxTasks": high})
        name = f"policy {policy.metadata.cluster}/{policy.metadata.service}"
        predictive = any(r.targetTracking is not None and r.targetTracking.predictive is not None for r in rules)
        feed = ForecastFeed(trace.values, trace.start) if predictive else None
        controllers.append(PolicyController(name, bounded, rules, _alarms(args, rules), feed=feed))
    elif args.no_references:
        raise UsageError("nothing to replay: give --policy, or drop --no-references")
    target = _reference_target(policy, rules, args.target)
    if not args.no_references:
        controllers += references(trace, model, target, low, high)
    return controllers, target


def replay(trace: Trace, model: ServiceModel, controllers: list[Any], target: float, keep_series: bool,
           progress: Progress | None = None) -> list[Result]:
    initial = model.tasks_for(target, trace.values[0])
    results = []
    for controller in controllers:
        bounded = initial
        if hasattr(controller, "scaling"):
            bounded = max(controller.scaling.minTasks, min(controller.scaling.maxTasks, initial))
        result = simulate(trace.values, trace.start, model, controller, bounded, keep_series=keep_series)
        result.params = dict(getattr(controller, "params", {}) or {})
        if keep_series and getattr(controller, "predicted", None):
            result.predicted = list(controller.predicted)
        results.append(result)
        if progress:
            progress.advance(note=controller.name)
    if progress:
        progress.close()
    return results


def _backtest(argv: list[str]) -> int:
    args = backtest_parser().parse_args(argv)
    trace = _trace(args)
    model = _model(args, trace)
    controllers, target = build_controllers(args, trace, model)
    bar = Progress("replaying", len(controllers), force=args.progress)
    results = replay(trace, model, controllers, target, keep_series=args.html is not None, progress=bar)
    if args.html:
        args.html.write_text(html_page(trace, model, results))
    if args.json:
        print(json.dumps(document(trace, model, results), indent=2))
    else:
        info = document(trace, model, results)["setup"]
        origin = args.derive_from if args.capacity_per_task is None else "given"
        print(f"{trace.name}: {trace.minutes} minutes from {trace.start:%Y-%m-%d %H:%M} ({trace.filled}), capacity "
              f"per task {model.capacity_per_task:g} ({origin}), start delay {model.start_delay_minutes} min, "
              f"metric {info['metric']}")
        print(table(results))
        if args.html:
            print(f"chart: {args.html}")
    return EXIT_OK


def run_backtest(argv: list[str]) -> int:
    """Entry point of `autopilot backtest`; returns the exit code."""
    return _guard(_backtest, argv)


# ------------------------------------------------------------------ recommend

def recommend_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopilot recommend",
        description="Search a robust targetTracking rule's settings on a trace and print the Pareto-best policy "
                    "snippets (overload minutes vs task-hours, within a churn limit), ready to paste.")
    _common(parser)
    parser.add_argument("--target", type=float, default=70.0, help="the rule's targetValue (default 70)")
    parser.add_argument("--search-targets",
                        help="targetValues to try, comma-separated (default: the target, +5 and +10; 'fixed': the "
                             "target only)")
    parser.add_argument("--rule-metric", default="my-service-cpu",
                        help="metric of the printed rule: an alarm name (default: my-service-cpu, edit it)")
    parser.add_argument("--max-actions-ratio", type=float, default=MAX_ACTIONS_RATIO,
                        help=f"churn limit: at most this many times the AWS model's scaling actions (default "
                             f"{MAX_ACTIONS_RATIO:g})")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help=f"pick within (1 - margin) x the AWS model's task-hours, over the trace and over each "
                             f"of its halves, so that the pick stays within them on data it was not tuned on "
                             f"(default {MARGIN:g})")
    parser.add_argument("--no-predictive", action="store_true", help="do not try the predictive lever")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"rounds bisecting the scale-in percentile (default {ROUNDS}; 0: the grid only)")
    parser.add_argument("--budget", type=float,
                        help="optional cut in seconds: settings not started by then are left out (the answer then "
                             "depends on the machine's speed; without it the search is deterministic)")
    parser.add_argument("--holdout", action="store_true",
                        help="tune on the first half of the trace (the service model is derived from it too) and "
                             "replay that pick on the second half (does the setting generalise?)")
    parser.add_argument("--workers", type=int, help="processes (default: CPUs, at most 4)")
    parser.add_argument("--top", type=int, default=5, help="snippets to print (default 5)")
    return parser


def _targets(text: str | None, target: float) -> list[float] | None:
    if text is None:
        return None
    if text.strip() == "fixed":
        return [target]
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(f"--search-targets: {exc}") from exc


def _recommend(argv: list[str]) -> int:
    args = recommend_parser().parse_args(argv)
    trace = _trace(args)
    model = _model(args, trace, halves(trace)[0] if args.holdout else None)
    low, high = _bounds(args, None)
    targets = _targets(args.search_targets, args.target)
    if args.target <= 0 or any(t <= 0 for t in targets or []):
        raise UsageError("targets must be positive")
    if args.rounds < 0:
        raise UsageError("--rounds must not be negative")
    if args.max_actions_ratio <= 0:
        raise UsageError("--max-actions-ratio must be positive")
    if not 0 <= args.margin < 1:
        raise UsageError("--margin must be in [0, 1)")
    options = {"workers": args.workers, "targets": targets, "metric": args.rule_metric, "budget": args.budget,
               "rounds": args.rounds, "force_progress": args.progress, "max_actions_ratio": args.max_actions_ratio,
               "predictive": not args.no_predictive, "margin": args.margin}
    outcome = recommendation(trace, model, args.target, low, high, **options)
    if args.holdout:
        outcome["holdout"] = holdout(trace, model, args.target, low, high, **options)
    if args.json:
        print(json.dumps(outcome, indent=2))
        return EXIT_OK
    print(f"{trace.name}: {trace.minutes} minutes ({trace.filled}), capacity per task {model.capacity_per_task:g} "
          f"(p95 of {'the first half' if args.holdout else 'the trace'} / {args.tasks_at_p95:g}), start delay "
          f"{model.start_delay_minutes} min; {outcome['evaluated']} settings replayed in {outcome['seconds']:.0f}s"
          + (f" ({outcome['skipped']} left out by --budget: the answer depends on this machine's speed)"
             if outcome["skipped"] else ""))
    print("references: " + "; ".join(f"{r['policy']}: {r['overload_minutes']} overload min, "
                                     f"{r['task_hours']} task-hours, {r['scaling_actions']} actions"
                                     for r in outcome["references"]))
    print(f"churn limit: at most {outcome['max_actions']:g} scaling actions ({args.max_actions_ratio:g}x the AWS "
          f"model's); {outcome['churn_limited']} settings were over it")
    print("\nPareto-best settings (fewer overload minutes cost more task-hours):")
    for rank, entry in enumerate(shown(outcome["pareto"], args.top), start=1):
        mark = ""
        if entry.get("pick"):
            mark = (f"  <- fewest overload minutes within {1 - args.margin:.0%} of the AWS target-tracking model's "
                    "task-hours (in each half too)")
            mark += ("; meets <= 35 % of its overload minutes" if entry.get("meets_target")
                     else "; does NOT reach <= 35 % of its overload minutes")
        print(f"\n# {rank}: {entry['overload_minutes']} overload min, {entry['task_hours']} task-hours, "
              f"{entry['scaling_actions']} actions{mark}")
        print(entry["snippet"].rstrip())
    if not any(e.get("pick") for e in outcome["pareto"]):
        print("\nno setting found at no more task-hours than the AWS target-tracking model within the churn limit")
    if args.holdout:
        print("\n" + holdout_text(outcome["holdout"]))
    return EXIT_OK


def shown(front: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """At most ``top`` entries spread along the front (cheapest to safest), always with the pick."""
    if top <= 0 or len(front) <= top:
        return front
    chosen = {round(i * (len(front) - 1) / max(1, top - 1)) for i in range(top)}
    picked = [i for i, e in enumerate(front) if e.get("pick")]
    if picked and picked[0] not in chosen:
        chosen.discard(min(chosen - {0, len(front) - 1}, key=lambda i: abs(i - picked[0]), default=0))
        chosen.add(picked[0])
    return [front[i] for i in sorted(chosen)]


def recommendation(trace: Trace, model: ServiceModel, target: float, low: int, high: int, **options: Any,
                   ) -> dict[str, Any]:
    """Search, then the Pareto front (with the pick marked) and the reference models, as one document.

    Deterministic unless ``budget`` (seconds) cuts the search short; ``skipped`` says so.
    """
    return searched(trace, model, target, low, high, **options)[0]


def searched(trace: Trace, model: ServiceModel, target: float, low: int, high: int, *, workers: int | None = None,
             targets: list[float] | None = None, metric: str = "my-service-cpu", budget: float | None = None,
             rounds: int = ROUNDS, force_progress: bool = False, max_actions_ratio: float = MAX_ACTIONS_RATIO,
             predictive: bool = True, history: Sequence[float] = (), margin: float = MARGIN,
             ) -> tuple[dict[str, Any], Candidate | None]:
    started = time.monotonic()
    deadline = started + budget if budget is not None else None
    initial = max(low, min(high, model.tasks_for(target, trace.values[0])))
    refs = references(trace, model, target, low, high, history, steps=False)
    results = [simulate(trace.values, trace.start, model, c, initial, parts=PARTS) for c in refs]
    for result, ref in zip(results, refs, strict=True):
        result.params = {"reference": ref.name}
    aws = results[0]
    aws_p = results[1] if len(results) == 3 else None
    limits = Limits.within(aws, margin, max_actions_ratio * aws.actions)
    job = Job(trace.values, trace.start, model, low, high, initial, history)
    grid = candidates(target, metric, targets, predictive and predictive_possible(job), model.start_delay_minutes)
    bar = Progress("searching", planned(grid, rounds), force=force_progress)

    def advance(candidate: Candidate, result: Result) -> None:
        bar.advance(note=f"{result.overload_minutes} overload min")

    found = search(job, grid, workers, advance, deadline)
    refine(job, found, limits, rounds, workers=workers, on_result=advance, deadline=deadline)
    bar.close()
    front = pareto(found.evaluated, limits.actions)
    best = pick(found.evaluated, limits)
    best_p = pick(found.evaluated, Limits.within(aws_p, margin, limits.actions)) if aws_p is not None else None
    for chosen in (best, best_p):  # a pick the front does not show (a cheaper setting fits only on average)
        if chosen is not None and all(chosen[0] is not c for c, _ in front):
            front = sorted([*front, chosen], key=lambda cr: (cr[1].task_hours, cr[1].overload_minutes))
    entries = []
    for candidate, result in front:
        entry: dict[str, Any] = {**result.summary(), "snippet": snippet(candidate, low, high)}
        entry["pick"] = best is not None and best[0] is candidate
        entry["pick_vs_predictive"] = best_p is not None and best_p[0] is candidate
        entry["meets_target"] = meets(result, aws)
        entry["vs_aws"] = ratios(result.summary(), aws.summary())
        entries.append(entry)
    return {"setup": document(trace, model, [])["setup"], "target": target, "evaluated": len(found.evaluated),
            "skipped": found.skipped, "rounds": found.rounds, "deterministic": found.skipped == 0,
            "seconds": round(time.monotonic() - started, 1), "max_actions": round(limits.actions, 1),
            "churn_limited": sum(1 for _, r in found.evaluated if r.actions > limits.actions),
            "references": [r.summary() for r in results], "pareto": entries}, (best[0] if best else None)


def ratios(result: dict[str, Any], reference: dict[str, Any]) -> dict[str, float | None]:
    """Overload minutes, task-hours and actions as fractions of the reference's (None when it has none)."""
    def share(key: str) -> float | None:
        return round(result[key] / reference[key], 3) if reference[key] else None
    return {"overload_minutes": share("overload_minutes"), "task_hours": share("task_hours"),
            "scaling_actions": share("scaling_actions")}


def halves(trace: Trace) -> tuple[Trace, Trace]:
    """The first and second half of a trace (the second starts where the first ends)."""
    middle = trace.minutes // 2
    first = Trace(f"{trace.name} (first half)", trace.start, trace.values[:middle], trace.source_period, trace.fill)
    second = Trace(f"{trace.name} (second half)", trace.start + timedelta(minutes=middle), trace.values[middle:],
                   trace.source_period, trace.fill)
    return first, second


def holdout(trace: Trace, model: ServiceModel, target: float, low: int, high: int, **options: Any) -> dict[str, Any]:
    """Tune on the first half, then replay that pick and the references on the second half (same service
    model, which should itself come from the first half: see ``_model``). The second half's predictive
    models see the first half as their history, as a service running through both would."""
    first, second = halves(trace)
    tuned, candidate = searched(first, model, target, low, high, **{**options, "force_progress": False})
    picked = next((e for e in tuned["pareto"] if e["pick"]), None)
    initial = max(low, min(high, model.tasks_for(target, second.values[0])))
    refs = references(second, model, target, low, high, first.values, steps=False)
    summaries = [simulate(second.values, second.start, model, c, initial).summary() for c in refs]
    aws = summaries[0]
    out: dict[str, Any] = {"tuned_on": {"minutes": first.minutes, "pick": picked,
                                        "aws": tuned["references"][0], "evaluated": tuned["evaluated"]},
                           "evaluated_on": {"minutes": second.minutes, "start": second.start.isoformat(),
                                            "aws": aws, "references": summaries, "oracle": summaries[-1],
                                            "pick": None}}
    if candidate is not None:
        job = Job(second.values, second.start, model, low, high, initial, first.values)
        result = run_candidate(candidate, job).summary()
        result["policy"] = "recommended on the first half"
        out["evaluated_on"]["pick"] = result
        out["evaluated_on"]["vs_aws"] = ratios(result, aws)
        out["evaluated_on"]["meets_target"] = meets(result, aws)
    return out


def holdout_text(doc: dict[str, Any]) -> str:
    tuned, held = doc["tuned_on"], doc["evaluated_on"]
    if held["pick"] is None:
        return "hold-out: no setting tuned on the first half stays within the AWS model's task-hours there"
    r, aws, vs = held["pick"], held["aws"], held["vs_aws"]
    overload = "n/a" if vs["overload_minutes"] is None else f"{vs['overload_minutes']:.2f}"
    return (f"hold-out (tuned on the first {tuned['minutes']} minutes, replayed on the last {held['minutes']}): "
            f"{r['overload_minutes']} overload min, {r['task_hours']} task-hours and {r['scaling_actions']} actions "
            f"vs the AWS model's {aws['overload_minutes']}, {aws['task_hours']} and {aws['scaling_actions']} "
            f"(overload x{overload}, task-hours x{vs['task_hours']:.2f}): "
            f"{'meets' if held['meets_target'] else 'does NOT meet'} the <= 35 % target")


def run_recommend(argv: list[str]) -> int:
    """Entry point of `autopilot recommend`; returns the exit code."""
    return _guard(_recommend, argv)
