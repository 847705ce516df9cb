"""The predictive lever's budget in the reconciler: forecast work per service, memory, GetMetricData calls.

Budget (issue 12): forecast work <= 50 ms per service, at most one GetMetricData call per 500 queries per
run, inside the function's 256 MB. Measured here on what one refresh does per rule: turning 14 days of
5-minute datapoints (4,032, as GetMetricData returns them) into slots, fitting, scoring and encoding the
stored item; and on what every run does per rule (the calibrated need). Pure Python, no I/O; the calls
per run are counted by tests/integration/test_target_tracking_robust.py. Never fails on a number.

    .venv/bin/python bench/bench_forecast.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from autopilot.decide.forecast import fit, to_slots
from autopilot.decide.target_tracking import read_robust
from autopilot.models.policy import TargetTracking
from autopilot.usecases.predictive import MAX_REFRESHES

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
RUNS = 30


def history(days: int = 14) -> list[tuple[datetime, float]]:
    out = []
    for i in range(days * 288):
        at = NOW - timedelta(minutes=5 * (i + 1))
        hour = at.hour + at.minute / 60
        out.append((at, 1000 + 800 * math.exp(-((hour - 14) / 4) ** 2) + 50 * math.sin(i)))
    return out


def run() -> dict[str, Any]:
    points = history()
    refresh_ms = []
    for _ in range(RUNS):
        started = time.perf_counter()
        model = fit(to_slots(points), NOW)
        assert model is not None
        json.dumps(model.to_item())
        refresh_ms.append(1000 * (time.perf_counter() - started))
    tracemalloc.start()
    model = fit(to_slots(points), NOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert model is not None
    gated = model.gated(0.3, 3600)
    rule = TargetTracking.model_validate({"metric": "cpu", "targetValue": 50, "predictive": {"loadMetric": "r"}})
    window = tuple((NOW - timedelta(minutes=15 - i), 4.0) for i in range(15))
    decide_us = []
    for _ in range(RUNS * 10):
        started = time.perf_counter()
        read_robust(rule, window, 50.0, NOW - timedelta(minutes=1) + timedelta(seconds=1), 4, 4, NOW, (),
                    forecast=gated, scale=0.004)
        decide_us.append(1e6 * (time.perf_counter() - started))
    size = len(json.dumps(model.to_item(), separators=(",", ":")))
    return {"refresh_ms_median": round(statistics.median(refresh_ms), 2), "refresh_ms_max": round(max(refresh_ms), 2),
            "refresh_peak_mib": round(peak / 2**20, 2), "decision_us_median": round(statistics.median(decide_us), 1),
            "item_bytes": size, "refreshes_per_run": MAX_REFRESHES,
            "datapoints_per_run": MAX_REFRESHES * 14 * 288, "runs": RUNS}


def markdown(result: dict[str, Any]) -> str:
    return "\n".join([
        "### Predictive lever: work per service (issue 12 budget: <= 50 ms, 256 MB, 1 GetMetricData per 500 queries)",
        "",
        "| what | measured |",
        "|---|---:|",
        f"| refresh one rule: 14 days of 5-minute points -> slots, fit, score, encode (median / max of "
        f"{result['runs']}) | {result['refresh_ms_median']} / {result['refresh_ms_max']} ms |",
        f"| peak Python memory of one refresh | {result['refresh_peak_mib']} MiB |",
        f"| each minute: the calibrated need inside the decision (median) | {result['decision_us_median']} µs |",
        f"| stored forecast item | {result['item_bytes']} bytes |",
        f"| refreshes per run (the stalest first) / their datapoints in the run's one history call | "
        f"{result['refreshes_per_run']} / {result['datapoints_per_run']} (limit 100,800) |",
    ])


def main() -> int:
    print(markdown(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
