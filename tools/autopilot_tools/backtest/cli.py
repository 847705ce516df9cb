"""`autopilot backtest` and `autopilot recommend` (the CLI forwards every argument after the command here)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autopilot.models.policy import ScalingRule, ServicePolicy
from autopilot_tools.backtest.controllers import AlarmModel, Oracle, PolicyController, aws_target_tracking, step_pair
from autopilot_tools.backtest.model import Result, ServiceModel, simulate
from autopilot_tools.backtest.recommend import (
    ROUNDS,
    Candidate,
    Job,
    candidates,
    meets,
    pareto,
    pick,
    planned,
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
    source.add_argument("--fill", choices=FILLS, default="linear",
                        help="how coarser datapoints become one value a minute: linear ramps (default) or hold "
                             "each value until the next (every change a step)")
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


def _model(args: argparse.Namespace, trace: Trace) -> ServiceModel:
    capacity = args.capacity_per_task
    if capacity is None:
        if args.tasks_at_p95 <= 0:
            raise UsageError("--tasks-at-p95 must be positive")
        capacity = trace.percentile(95) / args.tasks_at_p95
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
        controllers.append(PolicyController(name, bounded, rules, _alarms(args, rules)))
    elif args.no_references:
        raise UsageError("nothing to replay: give --policy, or drop --no-references")
    target = _reference_target(policy, rules, args.target)
    if not args.no_references:
        controllers += [aws_target_tracking(target, low, high), step_pair(target, low, high),
                        Oracle(trace.values, model.capacity_per_task, model.start_delay_minutes, low, high)]
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
        print(f"{trace.name}: {trace.minutes} minutes from {trace.start:%Y-%m-%d %H:%M}, capacity per task "
              f"{model.capacity_per_task:g}, start delay {model.start_delay_minutes} min, metric {info['metric']}")
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
        description="Search a targetTracking rule's settings on a trace and print the Pareto-best policy "
                    "snippets (overload minutes vs task-hours), ready to paste into a policy file.")
    _common(parser)
    parser.add_argument("--target", type=float, default=70.0, help="the rule's targetValue (default 70)")
    parser.add_argument("--search-targets", help="also vary targetValue: comma-separated values, e.g. 60,70,80")
    parser.add_argument("--rule-metric", default="my-service-cpu",
                        help="metric of the printed rule: an alarm name (default: my-service-cpu, edit it)")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"rounds bisecting the stabilization window (default {ROUNDS}; 0: the grid only)")
    parser.add_argument("--budget", type=float,
                        help="optional cut in seconds: settings not started by then are left out (the answer then "
                             "depends on the machine's speed; without it the search is deterministic)")
    parser.add_argument("--holdout", action="store_true",
                        help="also tune on the first half of the trace and replay that pick on the second half "
                             "(does the setting generalise?)")
    parser.add_argument("--workers", type=int, help="processes (default: CPUs, at most 4)")
    parser.add_argument("--top", type=int, default=5, help="snippets to print (default 5)")
    return parser


def _recommend(argv: list[str]) -> int:
    args = recommend_parser().parse_args(argv)
    trace = _trace(args)
    model = _model(args, trace)
    low, high = _bounds(args, None)
    targets = None
    if args.search_targets:
        try:
            targets = [float(v) for v in args.search_targets.split(",") if v.strip()]
        except ValueError as exc:
            raise UsageError(f"--search-targets: {exc}") from exc
    if args.target <= 0 or any(t <= 0 for t in targets or []):
        raise UsageError("targets must be positive")
    if args.rounds < 0:
        raise UsageError("--rounds must not be negative")
    options = {"workers": args.workers, "targets": targets, "metric": args.rule_metric, "budget": args.budget,
               "rounds": args.rounds, "force_progress": args.progress}
    outcome = recommendation(trace, model, args.target, low, high, **options)
    if args.holdout:
        outcome["holdout"] = holdout(trace, model, args.target, low, high, **options)
    if args.json:
        print(json.dumps(outcome, indent=2))
        return EXIT_OK
    print(f"{trace.name}: {trace.minutes} minutes, capacity per task {model.capacity_per_task:g}, start delay "
          f"{model.start_delay_minutes} min; {outcome['evaluated']} settings replayed in {outcome['seconds']:.0f}s"
          + (f" ({outcome['skipped']} left out by --budget: the answer depends on this machine's speed)"
             if outcome["skipped"] else ""))
    ref = outcome["references"]
    print("references: " + "; ".join(f"{r['policy']}: {r['overload_minutes']} overload min, "
                                     f"{r['task_hours']} task-hours" for r in ref))
    print("\nPareto-best settings (fewer overload minutes cost more task-hours):")
    for rank, entry in enumerate(shown(outcome["pareto"], args.top), start=1):
        mark = ""
        if entry.get("pick"):
            mark = "  <- fewest overload minutes at no more task-hours than the AWS target-tracking model"
            mark += ("; meets <= 40 % of its overload minutes at <= its task-hours" if entry.get("meets_target")
                     else "; does NOT reach <= 40 % of its overload minutes")
        print(f"\n# {rank}: {entry['overload_minutes']} overload min, {entry['task_hours']} task-hours, "
              f"{entry['scaling_actions']} actions{mark}")
        print(entry["snippet"].rstrip())
    if not any(e.get("pick") for e in outcome["pareto"]):
        print("\nno setting found at no more task-hours than the AWS target-tracking model")
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


def recommendation(trace: Trace, model: ServiceModel, target: float, low: int, high: int, *,
                   workers: int | None = None, targets: list[float] | None = None, metric: str = "my-service-cpu",
                   budget: float | None = None, rounds: int = ROUNDS, force_progress: bool = False,
                   ) -> dict[str, Any]:
    """Search, then the Pareto front (with the pick marked) and the reference models, as one document.

    Deterministic unless ``budget`` (seconds) cuts the search short; ``skipped`` says so.
    """
    return searched(trace, model, target, low, high, workers=workers, targets=targets, metric=metric,
                     budget=budget, rounds=rounds, force_progress=force_progress)[0]


def searched(trace: Trace, model: ServiceModel, target: float, low: int, high: int, *, workers: int | None = None,
              targets: list[float] | None = None, metric: str = "my-service-cpu", budget: float | None = None,
              rounds: int = ROUNDS, force_progress: bool = False) -> tuple[dict[str, Any], Candidate | None]:
    started = time.monotonic()
    deadline = started + budget if budget is not None else None
    initial = max(low, min(high, model.tasks_for(target, trace.values[0])))
    references = [simulate(trace.values, trace.start, model, c, initial) for c in
                  (aws_target_tracking(target, low, high),
                   Oracle(trace.values, model.capacity_per_task, model.start_delay_minutes, low, high))]
    for ref, controller_name in zip(references, ("aws", "oracle"), strict=True):
        ref.params = {"reference": controller_name}
    aws = references[0]
    grid = candidates(target, metric, targets, model.start_delay_minutes)
    bar = Progress("searching", planned(grid, rounds), force=force_progress)
    job = Job(trace.values, trace.start, model, low, high, initial)

    def advance(candidate: Candidate, result: Result) -> None:
        bar.advance(note=f"{result.overload_minutes} overload min")

    found = search(job, grid, workers, advance, deadline)
    refine(job, found, aws.task_hours, rounds, workers=workers, on_result=advance, deadline=deadline)
    bar.close()
    front = pareto(found.evaluated)
    best = pick(front, aws.task_hours)
    entries = []
    for candidate, result in front:
        entry: dict[str, Any] = {**result.summary(), "snippet": snippet(candidate, low, high)}
        entry["pick"] = best is not None and best[0] is candidate
        entry["meets_target"] = meets(result, aws)
        entry["vs_aws"] = ratios(result.summary(), aws.summary())
        entries.append(entry)
    return {"setup": document(trace, model, [])["setup"], "target": target, "evaluated": len(found.evaluated),
            "skipped": found.skipped, "rounds": found.rounds, "deterministic": found.skipped == 0,
            "seconds": round(time.monotonic() - started, 1),
            "references": [r.summary() for r in references], "pareto": entries}, (best[0] if best else None)


def ratios(result: dict[str, Any], reference: dict[str, Any]) -> dict[str, float | None]:
    """Overload minutes and task-hours as fractions of the reference's (None when it has none)."""
    def share(key: str) -> float | None:
        return round(result[key] / reference[key], 3) if reference[key] else None
    return {"overload_minutes": share("overload_minutes"), "task_hours": share("task_hours")}


def halves(trace: Trace) -> tuple[Trace, Trace]:
    """The first and second half of a trace (the second starts where the first ends)."""
    middle = trace.minutes // 2
    first = Trace(f"{trace.name} (first half)", trace.start, trace.values[:middle], trace.source_period)
    second = Trace(f"{trace.name} (second half)", trace.start + timedelta(minutes=middle), trace.values[middle:],
                   trace.source_period)
    return first, second


def holdout(trace: Trace, model: ServiceModel, target: float, low: int, high: int, **options: Any) -> dict[str, Any]:
    """Tune on the first half, then replay that pick and the AWS model on the second half (same service model)."""
    first, second = halves(trace)
    tuned, candidate = searched(first, model, target, low, high, **{**options, "force_progress": False})
    picked = next((e for e in tuned["pareto"] if e["pick"]), None)
    initial = max(low, min(high, model.tasks_for(target, second.values[0])))
    aws = simulate(second.values, second.start, model, aws_target_tracking(target, low, high), initial).summary()
    oracle = simulate(second.values, second.start, model, Oracle(second.values, model.capacity_per_task,
                                                                  model.start_delay_minutes, low, high),
                      initial).summary()
    out: dict[str, Any] = {"tuned_on": {"minutes": first.minutes, "pick": picked,
                                        "aws": tuned["references"][0], "evaluated": tuned["evaluated"]},
                           "evaluated_on": {"minutes": second.minutes, "start": second.start.isoformat(),
                                            "aws": aws, "oracle": oracle, "pick": None}}
    if candidate is not None:
        job = Job(second.values, second.start, model, low, high, initial)
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
            f"{r['overload_minutes']} overload min and {r['task_hours']} task-hours vs the AWS model's "
            f"{aws['overload_minutes']} and {aws['task_hours']} (overload x{overload}, task-hours "
            f"x{vs['task_hours']:.2f}): {'meets' if held['meets_target'] else 'does NOT meet'} the <= 40 % target")


def run_recommend(argv: list[str]) -> int:
    """Entry point of `autopilot recommend`; returns the exit code."""
    return _guard(_recommend, argv)
