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
    fresh = generate("daily-low", seed=2)
    assert fresh.values != full.values
    fresh = Trace("synthetic:daily-low@2", fresh.start, fresh.values[:2 * 1440], 60)
    again = bench_backtest.bench_defaults(fresh.name, trace=fresh)
    assert set(again) == {"trace", "minutes", "minutes_are", "capacity_per_task", "seconds", "full"}
    text = bench_backtest.markdown({"traces": [row], "fresh": [again], "seconds": 1.0, "setup": {"cpus": 1}})
    assert "**1. Defaults" in text and "**1b. The same on fresh seeds" in text
    assert "**2. Tuned" in text and "**3. The predictive lever" in text
    assert text.count("| synthetic:daily-low |") == 3 and text.count("| synthetic:daily-low@2 |") == 1


def test_trace_names_carry_their_seed():
    assert bench_backtest.load("synthetic:steady-low").values == generate("steady-low").values
    assert bench_backtest.load("synthetic:steady-low@3").values == generate("steady-low", seed=3).values
    assert bench_backtest.load("synthetic:steady-low@3").name == "synthetic:steady-low@3"
