"""`make bench`: run every benchmark, print its markdown table, write build/bench-*.json.

Benchmarks never fail on a number (targets are printed beside the measurements); a benchmark that
crashes is reported and makes the run exit non-zero, since that is a bug, not a slow machine.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    bench_backtest,
    bench_calls,
    bench_cold_start,
    bench_decisions,
    bench_forecast,
    bench_healer,
)

BENCHES = {"cold-start": bench_cold_start, "calls": bench_calls, "decisions": bench_decisions,
           "healer": bench_healer, "forecast": bench_forecast, "backtest": bench_backtest}


def main() -> int:
    build = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build")
    build.mkdir(parents=True, exist_ok=True)
    print(f"# ecs-autopilot benchmarks - Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    crashed = []
    for name, module in BENCHES.items():
        started = time.perf_counter()
        try:
            result = module.run()  # type: ignore[attr-defined]
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        (build / f"bench-{name}.json").write_text(json.dumps(result, indent=2))
        print(module.markdown(result))  # type: ignore[attr-defined]
        print(f"\n({name}: {time.perf_counter() - started:.1f} s, build/bench-{name}.json)\n")
    if crashed:
        print(f"benchmarks that crashed: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
