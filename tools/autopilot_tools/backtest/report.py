"""Backtest output: a text table, a JSON document, and a self-contained HTML page with inline SVG charts
(drawn by ``autopilot_tools.svgchart``, the renderer the demo report uses too)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from autopilot_tools.backtest.model import Result, ServiceModel
from autopilot_tools.backtest.trace import Trace
from autopilot_tools.svgchart import Chart, Line, Span

COLUMNS = [("policy", "policy"), ("overload min", "overload_minutes"), ("min > 85%", "minutes_over_85pct"),
           ("dropped %", "dropped_demand_pct"), ("task-hours", "task_hours"), ("actions", "scaling_actions"),
           ("starts", "task_starts"), ("stops", "task_stops")]


def table(results: Sequence[Result]) -> str:
    """A plain-text table, one row per policy, widths fitted to the content."""
    rows = [[str(r.summary()[key]) for _, key in COLUMNS] for r in results]
    heads = [h for h, _ in COLUMNS]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(heads), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def setup(trace: Trace, model: ServiceModel) -> dict[str, Any]:
    return {"trace": trace.name, "start": trace.start.isoformat(), "minutes": trace.minutes,
            "source_period_seconds": trace.source_period, "minutes_are": trace.filled,
            "capacity_per_task": round(model.capacity_per_task, 6),
            "start_delay_minutes": model.start_delay_minutes, "metric": model.metric,
            **({"metric_cap": model.metric_cap} if model.metric_cap is not None else {})}


def document(trace: Trace, model: ServiceModel, results: Sequence[Result]) -> dict[str, Any]:
    return {"setup": setup(trace, model), "results": [r.summary() for r in results]}


# ------------------------------------------------------------------ HTML

_COLOURS = {"demand": "#9aa5b1", "running": "#1f77b4", "desired": "#d62728", "forecast": "#2ca02c",
            "overload": "#f6c9c9"}
_POINTS = 1000


def _buckets(values: Sequence[float], count: int) -> list[float]:
    """The maximum of each of ``count`` equal slices: a spike survives any zoom level."""
    if len(values) <= count:
        return list(values)
    size = len(values) / count
    return [max(values[int(i * size):max(int(i * size) + 1, int((i + 1) * size))]) for i in range(count)]


def _series(values: Sequence[float | None], count: int) -> list[tuple[float, float | None]]:
    """(minute, value) points, one per slice of ``len(values) / count`` minutes (the slice's maximum)."""
    if len(values) <= count:
        return [(float(i), v) for i, v in enumerate(values)]
    size = len(values) / count
    out: list[tuple[float, float | None]] = []
    for i in range(count):
        chunk = [v for v in values[int(i * size):max(int(i * size) + 1, int((i + 1) * size))] if v is not None]
        out.append((i * size, max(chunk) if chunk else None))
    return out


def overload_spans(trace: Trace, model: ServiceModel, result: Result, count: int = _POINTS) -> list[Span]:
    """Shaded spans where demand exceeded running capacity (one per slice that had any)."""
    size = max(1.0, trace.minutes / count)
    slices: dict[int, int] = {}
    for minute, (load, running) in enumerate(zip(trace.values, result.running, strict=False)):
        if load > running * model.capacity_per_task * (1 + 1e-9):
            index = int(minute / size)
            slices[index] = slices.get(index, 0) + 1
    return [Span(i * size, (i + 1) * size, _COLOURS["overload"], f"{n} overload minute(s)")
            for i, n in sorted(slices.items())]


def _ticks(trace: Trace, top: float) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    x_ticks = [(trace.minutes * k / 5, f"{trace.start + timedelta(minutes=trace.minutes * k / 5):%m-%d %H:%M}")
               for k in range(6)]
    y_ticks = [(top * k / 2, f"{top * k / 2:.0f}") for k in range(3)]
    return x_ticks, y_ticks


def chart(trace: Trace, model: ServiceModel, result: Result, top: float, points: int = _POINTS) -> str:
    """One SVG: demand (in tasks at 100 %), running tasks, desired count, the forecast's need when a
    forecast was used, and the overload minutes shaded, over the whole trace."""
    x_ticks, y_ticks = _ticks(trace, top)
    frame = Chart(x_end=float(max(1, trace.minutes)), y_max=top, x_ticks=x_ticks, y_ticks=y_ticks, title=result.name,
                  width=1100, plot_height=160)
    lines = [Line(_series([v / model.capacity_per_task for v in trace.values], points), _COLOURS["demand"],
                  "demand / capacity per task", width=1.0),
             Line(_series([float(v) for v in result.running], points), _COLOURS["running"], "running tasks",
                  step=True),
             Line(_series([float(v) for v in result.desired], points), _COLOURS["desired"], "desired count",
                  width=1.0, dash="3,2", step=True)]
    if any(v is not None for v in result.predicted):
        lines.append(Line(_series(result.predicted, points), _COLOURS["forecast"], "forecast need (tasks)",
                          width=1.0, dash="1,2"))
    return frame.render(lines=lines, spans=overload_spans(trace, model, result, points), aria=result.name)


def html_page(trace: Trace, model: ServiceModel, results: Sequence[Result]) -> str:
    """A self-contained page (no scripts, no external resources): the table and one chart per policy."""
    top = max([v / model.capacity_per_task for v in trace.values]
              + [float(max(r.desired, default=0)) for r in results] + [1.0]) * 1.05
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.summary()[k]))}</td>" for _, k in COLUMNS) + "</tr>"
                   for r in results)
    info = setup(trace, model)
    legend = " ".join(f'<span style="color:{c}">&#9632; {n}</span>' for n, c in
                      (("demand / capacity per task", _COLOURS["demand"]), ("running tasks", _COLOURS["running"]),
                       ("desired count", _COLOURS["desired"]), ("forecast need", _COLOURS["forecast"]),
                       ("overload", "#e39a9a")))
    charts = "".join(chart(trace, model, r, top) for r in results if r.desired)
    facts = ", ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in info.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecs-autopilot backtest: {html.escape(trace.name)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #1d2733; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; }}
td:not(:first-child) {{ text-align: right; }} svg {{ width: 100%; height: auto; margin-top: 8px; }}
.legend span {{ margin-right: 1.5em; }}
</style></head><body>
<h1>Backtest: {html.escape(trace.name)}</h1>
<p>{facts}</p>
<p>Overload = minutes with demand above running capacity (the excess is dropped; shaded in the charts); task-hours
count tasks from the moment they are asked for; starts and stops count the tasks each scaling action started or
stopped. Charts show each slice's maximum.</p>
<table><tr>{head}</tr>{rows}</table>
<p class="legend">{legend}</p>
{charts}
</body></html>
"""
