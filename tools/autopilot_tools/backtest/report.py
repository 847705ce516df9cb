"""Backtest output: a text table, a JSON document, and a self-contained HTML page with inline SVG charts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from autopilot_tools.backtest.model import Result, ServiceModel
from autopilot_tools.backtest.trace import Trace

COLUMNS = [("policy", "policy"), ("overload min", "overload_minutes"), ("min > 85%", "minutes_over_85pct"),
           ("dropped %", "dropped_demand_pct"), ("task-hours", "task_hours"), ("actions", "scaling_actions")]


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
            "source_period_seconds": trace.source_period, "capacity_per_task": round(model.capacity_per_task, 6),
            "start_delay_minutes": model.start_delay_minutes, "metric": model.metric,
            **({"metric_cap": model.metric_cap} if model.metric_cap is not None else {})}


def document(trace: Trace, model: ServiceModel, results: Sequence[Result]) -> dict[str, Any]:
    return {"setup": setup(trace, model), "results": [r.summary() for r in results]}


# ------------------------------------------------------------------ HTML

_COLOURS = {"demand": "#9aa5b1", "running": "#1f77b4", "desired": "#d62728"}
_WIDTH, _HEIGHT, _PAD = 1100, 180, 40


def _buckets(values: Sequence[float], count: int) -> list[float]:
    """The maximum of each of ``count`` equal slices: a spike survives any zoom level."""
    if len(values) <= count:
        return list(values)
    size = len(values) / count
    return [max(values[int(i * size):max(int(i * size) + 1, int((i + 1) * size))]) for i in range(count)]


def _path(values: Sequence[float], top: float, step: bool) -> str:
    if not values:
        return ""
    dx = (_WIDTH - 2 * _PAD) / max(1, len(values) - 1 if not step else len(values))
    scale = (_HEIGHT - 2 * _PAD) / top if top > 0 else 0

    def y(v: float) -> float:
        return _HEIGHT - _PAD - v * scale

    parts = [f"M{_PAD:.1f},{y(values[0]):.1f}"]
    for i, v in enumerate(values):
        x = _PAD + i * dx
        if step:
            parts.append(f"L{x:.1f},{y(v):.1f}L{x + dx:.1f},{y(v):.1f}")
        else:
            parts.append(f"L{x:.1f},{y(v):.1f}")
    return "".join(parts)


def _axis(start: datetime, minutes: int, top: float) -> str:
    ticks = []
    for k in range(6):
        x = _PAD + k * (_WIDTH - 2 * _PAD) / 5
        moment = start + timedelta(minutes=minutes * k / 5)
        ticks.append(f'<text x="{x:.0f}" y="{_HEIGHT - 12}" text-anchor="middle">{moment:%m-%d %H:%M}</text>')
    for k in range(3):
        value = top * k / 2
        y = _HEIGHT - _PAD - (_HEIGHT - 2 * _PAD) * k / 2
        ticks.append(f'<line x1="{_PAD}" x2="{_WIDTH - _PAD}" y1="{y:.0f}" y2="{y:.0f}" class="grid"/>'
                     f'<text x="{_PAD - 4}" y="{y + 4:.0f}" text-anchor="end">{value:.0f}</text>')
    return "".join(ticks)


def chart(trace: Trace, model: ServiceModel, result: Result, top: float, points: int = 1000) -> str:
    """One SVG: demand (in tasks at 100 %), running tasks and desired count over the whole trace."""
    demand = _buckets([v / model.capacity_per_task for v in trace.values], points)
    running = _buckets([float(v) for v in result.running], points)
    desired = _buckets([float(v) for v in result.desired], points)
    title = html.escape(result.name)
    return (f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{title}">'
            f'<text x="{_PAD}" y="16" class="title">{title}</text>{_axis(trace.start, trace.minutes, top)}'
            f'<path d="{_path(demand, top, False)}" fill="none" stroke="{_COLOURS["demand"]}" stroke-width="1"/>'
            f'<path d="{_path(running, top, True)}" fill="none" stroke="{_COLOURS["running"]}" stroke-width="1.2"/>'
            f'<path d="{_path(desired, top, True)}" fill="none" stroke="{_COLOURS["desired"]}" stroke-width="1"'
            f' stroke-dasharray="3,2"/></svg>')


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
                       ("desired count", _COLOURS["desired"])))
    charts = "".join(chart(trace, model, r, top) for r in results if r.desired)
    facts = ", ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in info.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecs-autopilot backtest: {html.escape(trace.name)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #1d2733; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; }}
td:not(:first-child) {{ text-align: right; }} svg {{ width: 100%; height: auto; margin-top: 8px; }}
svg text {{ font-size: 11px; fill: #52606d; }} svg .title {{ font-size: 13px; fill: #1d2733; font-weight: 600; }}
svg .grid {{ stroke: #eee; }} .legend span {{ margin-right: 1.5em; }}
</style></head><body>
<h1>Backtest: {html.escape(trace.name)}</h1>
<p>{facts}</p>
<p>Overload = minutes with demand above running capacity (the excess is dropped); task-hours count tasks
from the moment they are asked for. Charts show each slice's maximum.</p>
<table><tr>{head}</tr>{rows}</table>
<p class="legend">{legend}</p>
{charts}
</body></html>
"""
