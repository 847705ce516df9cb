"""The self-contained ``demo-report.html``: timeline, expectations and, per service, an inline SVG chart
of its desired count and its alarms' states over simulated time.

No scripts, fonts or stylesheets from anywhere: the file opens offline, attaches to a ticket, and
survives being emailed. Charts are inline SVG drawn by ``autopilot_tools.svgchart`` (the renderer the
backtest report uses too) from the run's samples.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from itertools import pairwise

from autopilot_tools.demo.clock import clock_label
from autopilot_tools.demo.render import service_summary
from autopilot_tools.demo.timeline import AlarmSample, Row, ScenarioResult, ServiceSample
from autopilot_tools.svgchart import INK, Chart, Lane, Line, Marker, Segment

_STATE_COLOURS = {"OK": "#2e9d5b", "ALARM": "#d64545", "INSUFFICIENT_DATA": "#9aa3ad"}
_KIND_LABELS = {"story": "story", "event": "event", "undelivered": "not delivered", "decision": "decision",
                "notify": "notification", "ecs": "ECS", "log": "log", "error": "error", "check": "expected",
                "quiet": "reconciler"}

CSS = """
:root { --ink:#1d2430; --muted:#5f6b7a; --line:#e3e7ec; --bg:#f7f8fa; --ok:#2e9d5b; --bad:#d64545; --warn:#b7791f;
        --accent:#2563a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: var(--bg); }
header { background: #14202e; color: #fff; padding: 28px 40px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #b8c4d2; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 40px 60px; }
h2 { font-size: 19px; margin: 36px 0 4px; }
h3 { font-size: 15px; margin: 22px 0 8px; color: var(--muted); font-weight: 600; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px; margin: 16px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.passed { background: #e3f4ea; color: var(--ok); } .failed { background: #fbe5e5; color: var(--bad); }
.skipped { background: #fdf1dc; color: var(--warn); }
.summary-line { font-size: 15px; margin: 6px 0 0; }
.lead { color: var(--muted); margin: 0 0 10px; }
ul.checks { list-style: none; padding: 0; margin: 0; }
ul.checks li { padding: 2px 0; }
ul.checks .ok { color: var(--ok); font-weight: 700; } ul.checks .ko { color: var(--bad); font-weight: 700; }
.timeline td { font-size: 13px; }
.timeline td.t { white-space: nowrap; font-variant-numeric: tabular-nums; color: var(--muted); width: 72px; }
.timeline td.k { white-space: nowrap; width: 96px; }
.timeline tr.story td { color: #3a4656; font-style: italic; background: #fbfcfd; }
.timeline tr.decision td.w { font-weight: 600; }
.timeline tr.quiet td { color: #9aa3ad; }
.timeline tr.error td { color: var(--bad); }
.timeline tr.undelivered td.w { color: var(--warn); }
.kind { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.outcome { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; padding: 0 5px;
           border-radius: 4px; background: #eef2f6; }
.outcome.act { background: #e3f4ea; color: #1f6f40; } .outcome.skip { background: #fdf1dc; color: #8a5a12; }
.outcome.bad { background: #fbe5e5; color: #9b2c2c; }
.detail { color: var(--muted); font-size: 12.5px; }
.calls { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; color: #3a4656; }
svg text { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.error-box { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; color: var(--bad); }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(results: list[ScenarioResult], wall: float) -> str:
    passed = sum(1 for r in results if r.status == "passed")
    failed = sum(1 for r in results if r.status == "failed")
    skipped = sum(1 for r in results if r.status == "skipped")
    invocations = sum(sum(r.invocations.values()) for r in results)
    simulated = sum(r.simulated_seconds for r in results)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>ecs-autopilot demo report</title>", f"<style>{CSS}</style></head><body>",
        "<header><h1>ecs-autopilot demo</h1>",
        "<p>Every decision below was made by the real Lambda handlers, routed by template.yaml's EventBridge rules, "
        "on an embedded AWS emulator (moto), and read back from the audit trail and the SNS topic.</p></header>",
        "<main>",
        "<div class='card'><p class='summary-line'>"
        f"<span class='badge passed'>{passed} passed</span> "
        + (f"<span class='badge failed'>{failed} failed</span> " if failed else "")
        + (f"<span class='badge skipped'>{skipped} skipped</span> " if skipped else "")
        + f"&nbsp; {invocations} handler invocations &middot; {_e(clock_label(simulated)[2:])} simulated "
        f"in {wall:.1f}s wall time &middot; generated {_e(generated)}</p>",
        _scenario_table(results), "</div>",
    ]
    for result in results:
        parts.append(_scenario(result))
    parts.append("<footer>Self-contained report: no scripts, no external resources. Times are simulated "
                 "(T+mm:ss since each scenario began); the virtual clock drives cooldowns, holds and back-offs."
                 "</footer></main></body></html>")
    return "\n".join(parts)


def _scenario_table(results: list[ScenarioResult]) -> str:
    rows = []
    for r in results:
        checks = f"{sum(1 for c in r.checks if c.passed)}/{len(r.checks)}" if r.status != "skipped" else "&ndash;"
        decisions = sum(1 for row in r.rows if row.kind == "decision")
        rows.append(
            f"<tr><td><a href='#{_e(r.name)}'>{_e(r.name)}</a></td><td><span class='badge {_e(r.status)}'>"
            f"{_e(r.status)}</span></td><td>{_e(r.title) if r.status != 'skipped' else _e(r.skip_reason)}</td>"
            f"<td class='num'>{checks}</td><td class='num'>{decisions}</td><td class='num'>{len(r.notifications)}</td>"
            f"<td class='num'>{_e(clock_label(r.simulated_seconds)[2:]) if r.status != 'skipped' else '&ndash;'}</td>"
            f"<td class='num'>{r.wall_seconds:.1f}s</td></tr>")
    return ("<table><thead><tr><th>scenario</th><th>result</th><th>story</th><th>expected</th><th>decisions</th>"
            "<th>notified</th><th>simulated</th><th>wall</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _scenario(result: ScenarioResult) -> str:
    out = [f"<h2 id='{_e(result.name)}'>{_e(result.name)} &mdash; {_e(result.title)} "
           f"<span class='badge {_e(result.status)}'>{_e(result.status)}</span></h2>",
           f"<p class='lead'>{_e(result.summary)}</p>"]
    if result.status == "skipped":
        out.append(f"<div class='card'>{_e(result.skip_reason)}</div>")
        return "\n".join(out)
    out.append("<div class='card'>")
    if result.checks:
        out.append("<h3 style='margin-top:0'>Expected outcomes</h3><ul class='checks'>")
        for check in result.checks:
            mark = "<span class='ok'>&#10003;</span>" if check.passed else "<span class='ko'>&#10007;</span>"
            miss = "" if check.passed else f" &mdash; expected {_e(check.expected)}, got {_e(check.actual)}"
            out.append(f"<li>{mark} <span class='detail'>{_e(clock_label(check.at))}</span> {_e(check.description)}"
                       f"{miss}</li>")
        out.append("</ul>")
    if result.error:
        out.append(f"<h3>Error</h3><div class='error-box'>{_e(result.error)}</div>")
    summary = service_summary(result)
    if summary:
        out.append("<h3>Services</h3><table><thead><tr><th>service</th><th>desired</th><th>revision</th>"
                   "<th>capacity</th><th>decisions</th><th>notified</th></tr></thead><tbody>")
        for row in summary:
            out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    for key in [row[0] for row in summary]:
        samples = result.services.get(key)
        if samples:
            alarms = {name: s for name, s in result.alarms.items()
                      if result.alarm_owner.get(name) == key and len(s) > 1}
            out.append(f"<h3>{_e(key)} over simulated time</h3>")
            out.append(chart(samples, alarms, max(result.simulated_seconds, 60.0), _markers(result, key)))
    out.append("</div>")
    out.append("<div class='card'><h3 style='margin-top:0'>Timeline</h3>")
    out.append(_timeline(result.rows))
    out.append("</div>")
    return "\n".join(out)


def _markers(result: ScenarioResult, key: str) -> list[tuple[float, str]]:
    """Decisions that changed the service, as (time, outcome) markers on its chart."""
    return [(r.at, r.outcome) for r in result.rows
            if r.kind == "decision" and r.target == key and r.calls
            and any(not c.startswith(("sns:", "dry-run:")) for c in r.calls)]


def _timeline(rows: list[Row]) -> str:
    out = ["<table class='timeline'><thead><tr><th>time</th><th>what</th><th></th></tr></thead><tbody>"]
    quiet: list[Row] = []

    def flush() -> None:
        if quiet:
            span = clock_label(quiet[0].at) + (f"&ndash;{_e(clock_label(quiet[-1].at)[2:])}" if len(quiet) > 1 else "")
            out.append(f"<tr class='quiet'><td class='t'>{span}</td><td class='k'><span class='kind'>reconciler"
                       f"</span></td><td>ran {len(quiet)}&times;: nothing to do</td></tr>")
            quiet.clear()

    for row in rows:
        if row.kind == "quiet":
            quiet.append(row)
            continue
        flush()
        out.append(_timeline_row(row))
    flush()
    out.append("</tbody></table>")
    return "".join(out)


def _outcome_class(outcome: str) -> str:
    if outcome.startswith(("rejected:", "failed:")):
        return "bad"
    if outcome.startswith(("skipped:", "idempotent")):
        return "skip"
    if outcome.startswith(("ignored:", "recorded:", "counted", "none")):
        return ""
    return "act"


def _timeline_row(row: Row) -> str:
    kind = _KIND_LABELS.get(row.kind, row.kind)
    time = _e(clock_label(row.at))
    if row.kind == "decision":
        what = (f"<span class='kind'>{_e(row.actor)}</span> {_e(row.target)} "
                f"<span class='outcome {_outcome_class(row.outcome)}'>{_e(row.outcome)}</span>"
                + (" <span class='badge skipped'>dry-run</span>" if row.mode == "dry-run" else "")
                + f"<div class='detail'>{_e(row.text)}</div>"
                + (f"<div>{_e(row.reason)}</div>" if row.reason else "")
                + (f"<div class='calls'>calls: {_e(', '.join(row.calls))}</div>" if row.calls else "")
                + (f"<div class='detail'>now: {_e(row.result)}</div>" if row.result else ""))
    elif row.kind in ("event", "undelivered"):
        target = (f" &rArr; <b>{_e(', '.join(row.functions))}</b>" if row.kind == "event"
                  else " &rArr; <b>not delivered</b> (no rule in template.yaml matches)")
        what = f"<span class='kind'>{_e(row.actor)}</span> {_e(row.text)}{target}"
    elif row.kind == "check":
        mark = "&#10003;" if row.passed else "&#10007;"
        what = f"{mark} {_e(row.text)}" + ("" if row.passed else f" &mdash; {_e(row.reason)}")
    elif row.kind == "error":
        what = f"{_e(row.text)}<div class='detail'>{_e(row.reason)}</div>"
    else:
        what = (f"<span class='kind'>{_e(row.actor)}</span> " if row.kind not in ("story",) else "") + _e(row.text)
    return (f"<tr class='{_e(row.kind)}'><td class='t'>{time}</td><td class='k'><span class='kind'>{_e(kind)}</span>"
            f"</td><td class='w'>{what}</td></tr>")


# ------------------------------------------------------------------------------------------ charts
def _nice_step(span: float) -> int:
    """Tick spacing in seconds for an axis ``span`` seconds long (about 6-10 ticks)."""
    for step in (30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return step
    return 7200


def chart(samples: list[ServiceSample], alarms: dict[str, list[AlarmSample]], end: float,
          markers: list[tuple[float, str]]) -> str:
    """Desired count (step line) over simulated time, then lanes: revision and capacity when they
    changed, and one per alarm of the service, coloured by state (drawn by ``autopilot_tools.svgchart``)."""
    lanes: list[Lane] = []
    for attribute, palette in (("revision", ("#dbe7f5", "#b9d0ec")), ("capacity", ("#e6e1f5", "#cfc5ee"))):
        values = [(s.at, str(getattr(s, attribute))) for s in samples]
        if len({v for _, v in values}) > 1:
            compact = [values[0]] + [b for a, b in pairwise(values) if b[1] != a[1]]
            segments = []
            for index, (at, value) in enumerate(compact):
                stop = compact[index + 1][0] if index + 1 < len(compact) else end
                segments.append(Segment(at, stop, palette[index % 2], f"{value} from {clock_label(at)}",
                                        value.replace("FARGATE_SPOT", "SPOT")))
            lanes.append(Lane(attribute, segments, name_inside=False))
    for name, states in sorted(alarms.items()):
        segments = []
        for index, state in enumerate(states):
            stop = states[index + 1].at if index + 1 < len(states) else end
            segments.append(Segment(state.at, stop, _STATE_COLOURS.get(state.state, "#9aa3ad"),
                                    f"{name}: {state.state} from {clock_label(state.at)}"))
        lanes.append(Lane(name, segments))
    y_max = max(4, int(max(s.desired for s in samples) * 1.25 + 1))
    y_step = max(1, round(y_max / 5))
    step = _nice_step(end)
    x_ticks = [(float(t), clock_label(t)) for t in range(0, int(end + 0.1) + 1, step)]
    legend = tuple((label, _STATE_COLOURS[label]) for label in ("OK", "ALARM", "INSUFFICIENT_DATA")) if alarms else ()
    frame = Chart(x_end=end, y_max=y_max, x_ticks=x_ticks, y_ticks=[(v, str(v)) for v in range(0, y_max + 1, y_step)],
                  y_title="desired tasks", legend=legend)
    rules = [after.at for before, after in pairwise(samples)
             if after.revision != before.revision or after.capacity != before.capacity]
    points = [(s.at, float(s.desired)) for s in samples]
    return frame.render(lines=[Line(points, INK, width=2.2, step=True, dots=True)], lanes=lanes, rules=rules,
                        markers=[Marker(at, "#2e9d5b", f"{clock_label(at)} {outcome}") for at, outcome in markers],
                        aria="desired count over simulated time")
