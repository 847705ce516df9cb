"""A small seeded run of issue 12's benchmark (the real one is `make bench`): every step runs and reports."""

from __future__ import annotations

from bench import bench_backtest

from autopilot_tools.backtest.synthetic import generate
from autopilot_tools.backtest.trace import Trace


def test_bench_runs_end_to_end_on_four_seeded_days():
    full = generate("daily-low")
    trace = Trace("synthetic:daily-low", full.start, full.values[:4 * 1440], 60)
    row = bench_backtest.bench_trace(trace.name, workers=1, rounds=0, trace=trace)
    assert row["minutes"] == 4 * 1440 and row["tuned_on_first_half"]["deterministic"]
    full_refs, held = row["full"], row["second_half"]
    assert {"aws", "aws_p", "oracle", "steps", "defaults"} <= set(full_refs)
    assert held["defaults_predictive"]["minutes"] == 2 * 1440
    text = bench_backtest.markdown({"traces": [row], "seconds": 1.0, "setup": {"cpus": 1}})
    assert "**1. Defaults" in text and "**2. Tuned" in text and "**3. The predictive lever" in text
    assert text.count("| synthetic:daily-low |") == 3
