"""Issue 7's benchmark: does `autopilot recommend`'s policy beat the AWS target-tracking model?

For each NAB trace (capacity per task = p95 demand / 10, 2-minute start delay, 70 % target): the
setting `recommend` marks (fewest overload minutes at no more task-hours than the AWS model), the
AWS target-tracking model, a typical step pair and the oracle. Target: overload <= 40 % of the AWS
model's at no more task-hours. Prints a markdown table; never fails on the numbers or on timing.

    .venv/bin/python bench/bench_backtest.py [--budget SECONDS] [--traces a,b] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from autopilot.backtest.cli import recommendation
from autopilot.backtest.controllers import step_pair
from autopilot.backtest.model import ServiceModel, simulate
from autopilot.backtest.trace import read_trace

TRACES = ["elb_request_count_8c0756", "Twitter_volume_AMZN", "Twitter_volume_GOOG", "nyc_taxi"]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
TARGET, DELAY_MINUTES, MIN_TASKS, MAX_TASKS = 70.0, 2, 1, 10000


def bench_trace(name: str, budget: float, workers: int | None) -> dict[str, Any]:
    trace = read_trace(DATA / f"{name}.csv")
    model = ServiceModel(capacity_per_task=trace.percentile(95) / 10, start_delay_minutes=DELAY_MINUTES)
    started = time.monotonic()
    outcome = recommendation(trace, model, TARGET, MIN_TASKS, MAX_TASKS, budget, workers, None, "my-service-cpu")
    aws, oracle = outcome["references"]
    initial = model.tasks_for(TARGET, trace.values[0])
    steps = simulate(trace.values, trace.start, model, step_pair(TARGET, MIN_TASKS, MAX_TASKS), initial).summary()
    picked = next((e for e in outcome["pareto"] if e["pick"]), None)
    return {"trace": name, "minutes": trace.minutes, "evaluated": outcome["evaluated"], "skipped": outcome["skipped"],
            "seconds": round(time.monotonic() - started, 1), "recommended": picked, "aws": aws, "steps": steps,
            "oracle": oracle, "pareto": outcome["pareto"]}


def _row(trace: str, label: str, r: dict[str, Any] | None, aws: dict[str, Any]) -> str:
    if r is None:
        return f"| {trace} | {label} | - | - | - | - | - | - | - |"
    ratio = r["overload_minutes"] / aws["overload_minutes"] if aws["overload_minutes"] else float("nan")
    cost = r["task_hours"] / aws["task_hours"] if aws["task_hours"] else float("nan")
    return (f"| {trace} | {label} | {r['overload_minutes']} | {r['minutes_over_85pct']} | {r['dropped_demand_pct']} "
            f"| {r['task_hours']} | {r['scaling_actions']} | {ratio:.2f} | {cost:.2f} |")


def _setting(entry: dict[str, Any]) -> str:
    """The picked snippet in one line: the rule's non-default fields and the scale-in cooldown."""
    block = yaml.safe_load(entry["snippet"])["scaling"]
    rule = {k: v for k, v in block["rules"][0]["targetTracking"].items() if k != "metric"}
    return json.dumps({**rule, "scaleInCooldownSeconds": block["scaleInCooldownSeconds"]}, separators=(",", ":"))


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| trace | policy | overload min | min > 85 % | dropped % | task-hours | actions "
             "| overload vs AWS model | task-hours vs AWS model |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        aws = row["aws"]
        lines += [_row(row["trace"], "recommended (targetTracking, 70 %)", row["recommended"], aws),
                  _row(row["trace"], "AWS target tracking (model)", aws, aws),
                  _row(row["trace"], "step pair (typical)", row["steps"], aws),
                  _row(row["trace"], "oracle (limit)", row["oracle"], aws)]
    lines.append("")
    lines.append("| trace | target met (overload <= 0.40 x AWS model at <= its task-hours) | settings replayed | "
                 "search s | recommended setting |")
    lines.append("|---|---|---:|---:|---|")
    for row in rows:
        picked, aws = row["recommended"], row["aws"]
        met = bool(picked) and picked["overload_minutes"] <= 0.4 * aws["overload_minutes"] \
            and picked["task_hours"] <= aws["task_hours"]
        params = _setting(picked) if picked else "-"
        lines.append(f"| {row['trace']} | {'yes' if met else 'no'} | {row['evaluated']} "
                     f"(+{row['skipped']} over budget) | {row['seconds']} | `{params}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="search seconds per trace (default 60)")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--json", type=Path, help="also write every number (and the Pareto fronts) here")
    args = parser.parse_args(argv)
    rows = []
    for name in [t for t in args.traces.split(",") if t]:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(bench_trace(name, args.budget, args.workers))
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
