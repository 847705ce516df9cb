"""Issue 7's benchmark: does `autopilot recommend`'s policy beat the AWS target-tracking model?

For each NAB trace (capacity per task = p95 demand / 10, 2-minute start delay, 70 % target, metric seen
one minute late; the same service model for every policy): the setting `recommend` marks (fewest
overload minutes at no more task-hours than the AWS model), the AWS target-tracking model, a typical
step pair and the oracle. Target: overload <= 40 % of the AWS model's at no more task-hours.

Also a hold-out check: `recommend` tunes on the first half of each trace only, and that pick is replayed
on the second half beside the AWS model (both starting fresh there): does the setting generalise?

The search is deterministic (a fixed set of settings, then a fixed number of bisection rounds), so the
numbers do not depend on the machine; only the seconds do. Prints markdown; writes every number (and
the Pareto fronts) to build/bench-backtest.json. Never fails on a number.

    .venv/bin/python bench/bench_backtest.py [--traces a,b] [--workers N] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from autopilot_tools.backtest.cli import holdout, ratios, searched
from autopilot_tools.backtest.controllers import step_pair
from autopilot_tools.backtest.model import ServiceModel, simulate
from autopilot_tools.backtest.recommend import ROUNDS, Job, meets, run_candidate
from autopilot_tools.backtest.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]

TRACES = ["elb_request_count_8c0756", "Twitter_volume_AMZN", "Twitter_volume_GOOG", "nyc_taxi"]
DATA = ROOT / "bench" / "data" / "traces"  # copied unchanged; sources and terms in its README
TARGET, DELAY_MINUTES, MIN_TASKS, MAX_TASKS, SHARE = 70.0, 2, 1, 10000, 0.4
METRIC = "my-service-cpu"


def bench_trace(name: str, workers: int | None, rounds: int = ROUNDS, hold_check: bool = False) -> dict[str, Any]:
    trace = read_trace(DATA / f"{name}.csv")
    model = ServiceModel(capacity_per_task=trace.percentile(95) / 10, start_delay_minutes=DELAY_MINUTES)
    started = time.monotonic()
    options: dict[str, Any] = {"workers": workers, "metric": METRIC, "rounds": rounds}
    outcome, candidate = searched(trace, model, TARGET, MIN_TASKS, MAX_TASKS, **options)
    search_seconds = time.monotonic() - started
    aws, oracle = outcome["references"]
    initial = model.tasks_for(TARGET, trace.values[0])
    steps = simulate(trace.values, trace.start, model, step_pair(TARGET, MIN_TASKS, MAX_TASKS), initial).summary()
    picked = next((e for e in outcome["pareto"] if e["pick"]), None)
    started = time.monotonic()
    held = holdout(trace, model, TARGET, MIN_TASKS, MAX_TASKS, **options)
    return {"trace": name, "minutes": trace.minutes, "source_period_seconds": trace.source_period,
            "capacity_per_task": round(model.capacity_per_task, 4), "evaluated": outcome["evaluated"],
            "rounds": outcome["rounds"], "deterministic": outcome["deterministic"],
            "search_seconds": round(search_seconds, 1),
            "holdout_seconds": round(time.monotonic() - started, 1), "recommended": picked,
            "met": picked is not None and meets(picked, aws, SHARE), "aws": aws, "steps": steps, "oracle": oracle,
            "holdout": held, "pareto": outcome["pareto"],
            "hold_fill": hold_fill(name, model, candidate, options) if hold_check else None}


def hold_fill(name: str, model: ServiceModel, linear_pick: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The same trace with each coarse value held until the next (every change a step, nothing to
    extrapolate): the AWS model, the setting tuned on the linear fill, and `recommend` re-tuned here."""
    trace = read_trace(DATA / f"{name}.csv", fill="hold")
    outcome, _ = searched(trace, model, TARGET, MIN_TASKS, MAX_TASKS, **options)
    aws = outcome["references"][0]
    retuned = next((e for e in outcome["pareto"] if e["pick"]), None)
    linear = None
    if linear_pick is not None:
        initial = max(MIN_TASKS, min(MAX_TASKS, model.tasks_for(TARGET, trace.values[0])))
        job = Job(trace.values, trace.start, model, MIN_TASKS, MAX_TASKS, initial)
        linear = run_candidate(linear_pick, job).summary()
    return {"aws": aws, "linear_pick": linear, "retuned": retuned,
            "retuned_met": retuned is not None and meets(retuned, aws, SHARE)}


def run(traces: list[str] | None = None, workers: int | None = None, rounds: int = ROUNDS,
        hold_check: bool = False) -> dict[str, Any]:
    """bench/run.py's entry point: every trace, one document."""
    started = time.monotonic()
    rows = []
    for name in traces or TRACES:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(bench_trace(name, workers, rounds, hold_check))
    return {"setup": {"target": TARGET, "start_delay_minutes": DELAY_MINUTES, "capacity_per_task": "p95 / 10",
                      "metric": "utilization, seen one minute late", "min_tasks": MIN_TASKS, "max_tasks": MAX_TASKS,
                      "bar": f"overload <= {SHARE:.0%} of the AWS model's at <= its task-hours",
                      "rounds": rounds, "workers": workers, "cpus": os.cpu_count()},
            "seconds": round(time.monotonic() - started, 1), "traces": rows}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(trace: str, label: str, r: dict[str, Any] | None, aws: dict[str, Any]) -> str:
    if r is None:
        return f"| {trace} | {label} | - | - | - | - | - | - | - |"
    vs = ratios(r, aws)
    return (f"| {trace} | {label} | {r['overload_minutes']} | {r['minutes_over_85pct']} | {r['dropped_demand_pct']} "
            f"| {r['task_hours']} | {r['scaling_actions']} | {_ratio(vs['overload_minutes'])} "
            f"| {_ratio(vs['task_hours'])} |")


def setting(entry: dict[str, Any]) -> str:
    """The picked snippet in one line: the rule's non-default fields and the scale-in cooldown."""
    block = yaml.safe_load(entry["snippet"])["scaling"]
    rule = {k: v for k, v in block["rules"][0]["targetTracking"].items() if k not in ("metric", "targetValue")}
    return json.dumps({**rule, "scaleInCooldownSeconds": block["scaleInCooldownSeconds"]}, separators=(",", ":"))


def markdown(result: dict[str, Any]) -> str:
    rows = result["traces"]
    lines = ["### Backtest: recommended targetTracking vs the AWS target-tracking model (issue 7)", "",
             "Capacity per task = p95 demand / 10, 2-minute task start, metric seen one minute late, target 70 %; "
             "ratios are to the AWS model. Bar: overload <= 0.40 x the AWS model's at <= its task-hours.", "",
             "| trace | policy | overload min | min > 85 % | dropped % | task-hours | actions "
             "| overload vs AWS | task-hours vs AWS |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        aws = row["aws"]
        lines += [_row(row["trace"], "**recommended** (targetTracking, 70 %)", row["recommended"], aws),
                  _row(row["trace"], "AWS target tracking (model)", aws, aws),
                  _row(row["trace"], "step pair (typical)", row["steps"], aws),
                  _row(row["trace"], "oracle (limit)", row["oracle"], aws)]
    lines += ["", "| trace | bar met | settings replayed | search s | recommended setting (besides target 70, "
              "scale-out cooldown 60 s) |", "|---|---|---:|---:|---|"]
    for row in rows:
        picked = row["recommended"]
        lines.append(f"| {row['trace']} | {'**yes**' if row['met'] else '**no**'} | {row['evaluated']} "
                     f"| {row['search_seconds']} | `{setting(picked) if picked else '-'}` |")
    lines += ["", "Hold-out: tuned on the first half of each trace, replayed on the second half (AWS model and "
              "oracle replayed there too).", "",
              "| trace | AWS model overload / task-hours | tuned-on-first-half overload / task-hours | overload vs AWS "
              "| task-hours vs AWS | bar met | oracle task-hours | setting tuned on the first half |",
              "|---|---:|---:|---:|---:|---|---:|---|"]
    for row in rows:
        held = row["holdout"]["evaluated_on"]
        tuned = row["holdout"]["tuned_on"]["pick"]
        aws = held["aws"]
        if held["pick"] is None:
            lines.append(f"| {row['trace']} | {aws['overload_minutes']} / {aws['task_hours']} | - | - | - | no "
                         f"| {held['oracle']['task_hours']} | - |")
            continue
        r, vs = held["pick"], held["vs_aws"]
        lines.append(f"| {row['trace']} | {aws['overload_minutes']} / {aws['task_hours']} "
                     f"| {r['overload_minutes']} / {r['task_hours']} | {_ratio(vs['overload_minutes'])} "
                     f"| {_ratio(vs['task_hours'])} | {'yes' if held['meets_target'] else 'no'} "
                     f"| {held['oracle']['task_hours']} | `{setting(tuned)}` |")
    checked = [row for row in rows if row.get("hold_fill")]
    if not checked:
        lines += ["", "(Fill check, the same traces with every change a step instead of a ramp: `--hold-check`.)"]
    else:
        lines += ["", "Fill check: the same traces with each 5- or 30-minute value held until the next instead of "
                  "ramped (every change a step: nothing for the trend to extrapolate).", "",
                  "| trace | AWS model overload / task-hours "
                  "| setting tuned on the ramps: overload / task-hours (vs AWS) "
                  "| re-tuned on the steps: overload / task-hours (vs AWS) | re-tuned bar met | re-tuned setting |",
                  "|---|---:|---:|---:|---|---|"]
        for row in checked:
            check = row["hold_fill"]
            aws = check["aws"]

            def cell(r: dict[str, Any] | None, aws: dict[str, Any] = aws) -> str:
                if r is None:
                    return "-"
                vs = ratios(r, aws)
                return (f"{r['overload_minutes']} / {r['task_hours']} ({_ratio(vs['overload_minutes'])}, "
                        f"{_ratio(vs['task_hours'])})")
            retuned = check["retuned"]
            met = "yes" if check["retuned_met"] else "no"
            lines.append(f"| {row['trace']} | {aws['overload_minutes']} / {aws['task_hours']} "
                         f"| {cell(check['linear_pick'])} | {cell(retuned)} | {met} "
                         f"| `{setting(retuned) if retuned else '-'}` |")
    lines += ["", f"({sum(r['evaluated'] for r in rows)} settings replayed on full traces, deterministic: "
              f"{all(r['deterministic'] for r in rows)}; {result['seconds']} s on {result['setup']['cpus']} CPUs)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, help="processes per search (default: CPUs, at most 4)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"window bisection rounds (default {ROUNDS})")
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--hold-check", action="store_true",
                        help="also re-run on the traces with each coarse value held (steps, not ramps): slower")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench-backtest.json",
                        help="where to write every number (default build/bench-backtest.json)")
    args = parser.parse_args(argv)
    result = run([t for t in args.traces.split(",") if t], args.workers, args.rounds, args.hold_check)
    print(markdown(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\n(every number: {args.json})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
