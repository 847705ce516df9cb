"""``autopilot demo`` (and ``python -m autopilot_tools.demo``): run the scenarios, print, report, self-check.

Exit status: 0 when every scenario that ran met all its expectations (scenarios whose capability
is not built yet are reported as skipped), 1 when any expectation was missed, 2 on a usage error,
130 when interrupted. The emulator is stopped in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, TextIO

from autopilot_tools.demo.emulator import Emulator, emulator_missing, preserved_environment, terminate_as_interrupt
from autopilot_tools.demo.estate import POLICIES, PolicyFileError
from autopilot_tools.demo.lambdas import function_available
from autopilot_tools.demo.render import TerminalPrinter
from autopilot_tools.demo.scenarios import SCENARIOS, AssumptionFailed, Scenario
from autopilot_tools.demo.timeline import ScenarioResult
from autopilot_tools.localstack import load_template


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopilot demo",
        description="Run ecs-autopilot end to end on an embedded AWS emulator (moto): no AWS account needed.")
    parser.add_argument("--scenario", action="append", metavar="NAME", default=[],
                        help="run only this scenario (repeatable; see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", action="store_true", help="print machine-readable results instead of the timeline")
    parser.add_argument("--report", metavar="PATH", default="demo-report.html",
                        help="where to write the self-contained HTML report (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    parser.add_argument("--no-color", action="store_true", help="never colour the output")
    parser.add_argument("--policies", metavar="FILE", type=Path, default=POLICIES,
                        help="the policy file to apply (default: examples/policies.yaml)")
    return parser


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    template = load_template()
    if args.list:
        return _list(template, sys.stdout)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in args.scenario if n not in known]
    if unknown:
        sys.stderr.write(f"autopilot demo: unknown scenario {', '.join(unknown)}; "
                         f"choose from {', '.join(known)}\n")
        return 2
    missing = emulator_missing()
    if missing:
        sys.stderr.write(f"autopilot demo: {missing}\n")
        return 2
    selected = [known[n] for n in dict.fromkeys(args.scenario)] if args.scenario else list(SCENARIOS)
    color = (not args.no_color and not args.json and "NO_COLOR" not in os.environ
             and hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
    printer = TerminalPrinter(io.StringIO() if args.json else sys.stdout, color=color)
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    interrupted = False
    with preserved_environment(), terminate_as_interrupt(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emulator = Emulator()
        try:
            emulator.start()
            printer.header(emulator.endpoint, _shown_path(args.policies), len(selected))
            for index, scenario in enumerate(selected, 1):
                results.append(run_scenario(emulator, scenario, template, args.policies, printer, index, len(selected)))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            emulator.stop()
    wall = time.perf_counter() - started
    report = None if args.no_report or not results else _write_report(results, wall, Path(args.report))
    if args.json:
        json.dump(_json(results, wall, report, interrupted), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif results:
        printer.summary(results, wall, report)
    if interrupted:
        sys.stderr.write("autopilot demo: interrupted; the emulator was stopped\n")
        return 130
    return 1 if any(r.status == "failed" for r in results) else 0


def run_scenario(emulator: Emulator, scenario: Scenario, template: dict[str, Any], policies: Path,
                 printer: TerminalPrinter, index: int, total: int) -> ScenarioResult:
    """One scenario on a fresh account; never raises (but KeyboardInterrupt)."""
    from autopilot_tools.demo.sim import Sim

    result = ScenarioResult(scenario.name, scenario.title, scenario.summary)
    printer.scenario_start(index, total, scenario.name, scenario.title, scenario.summary)
    missing = [why for why in (function_available(f, template) for f in scenario.requires) if why]
    if missing:
        result.status = "skipped"
        result.skip_reason = "capability not built yet: " + "; ".join(missing)
        printer.skipped(result.skip_reason)
        return result
    started = time.perf_counter()
    try:
        sim = Sim(emulator, result, policies=policies, parameters=scenario.parameters, on_row=printer.row,
                  template=template)
        scenario.story(sim)
    except (AssumptionFailed, PolicyFileError) as exc:
        result.error = str(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the demo reports and carries on with the next scenario
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
    result.wall_seconds = time.perf_counter() - started
    crashed = [r for r in result.rows if r.kind == "error"]
    if crashed and not result.error:
        result.error = f"{len(crashed)} handler invocation(s) failed: {crashed[0].text}"
    missed = [c for c in result.checks if not c.passed]
    result.status = "failed" if (missed or result.error or not result.checks) else "passed"
    printer.scenario_end(result)
    return result


def _list(template: dict[str, Any], out: TextIO) -> int:
    printer = TerminalPrinter(out, color=False)
    rows = []
    for scenario in SCENARIOS:
        missing = [why for why in (function_available(f, template) for f in scenario.requires) if why]
        rows.append([scenario.name, "ready" if not missing else "not built yet", scenario.title])
    printer.table(["scenario", "status", "story"], rows, indent=0)
    return 0


def _json(results: list[ScenarioResult], wall: float, report: str | None, interrupted: bool) -> dict[str, Any]:
    return {
        "passed": not interrupted and not any(r.status == "failed" for r in results),
        "interrupted": interrupted,
        "wall_seconds": round(wall, 3),
        "report": report,
        "counts": {status: sum(1 for r in results if r.status == status) for status in ("passed", "failed", "skipped")},
        "scenarios": [r.to_json() for r in results],
    }


def _write_report(results: list[ScenarioResult], wall: float, path: Path) -> str | None:
    from autopilot_tools.demo.report import render_html

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(results, wall), encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"autopilot demo: could not write the report to {path}: {exc}\n")
        return None
    return str(path.resolve())


def _shown_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)

