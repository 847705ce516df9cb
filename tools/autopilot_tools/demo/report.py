"""The self-contained ``demo-report.html``: timeline, expectations and, per service, an inline SVG chart
of its desired count and its alarms' states over simulated time.

No scripts, fonts or stylesheets from anywhere: the file opens offline, attaches to a ticket, and
survives being emailed. Charts are SVG written here from the run's samples.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from itertools import pairwise

from autopilot_tools.demo.clock import clock_label
from autopilot_tools.demo.render import service_summary
from autopilot_tools.demo.timeline import AlarmSample, Row, ScenarioResult, ServiceSample

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
    changed, and one per alarm of the service, coloured by state."""
    lanes: list[tuple[str, list[tuple[float, float, str, str]]]] = []
    for attribute, palette in (("revision", ("#dbe7f5", "#b9d0ec")), ("capacity", ("#e6e1f5", "#cfc5ee"))):
        values = [(s.at, str(getattr(s, attribute))) for s in samples]
        if len({v for _, v in values}) > 1:
            segments = []
            compact = [values[0]] + [b for a, b in pairwise(values) if b[1] != a[1]]
            for index, (at, value) in enumerate(compact):
                stop = compact[index + 1][0] if index + 1 < len(compact) else end
                segments.append((at, stop, value, palette[index % 2]))
            lanes.append((attribute, segments))
    for name, states in sorted(alarms.items()):
        segments = []
        for index, state in enumerate(states):
            stop = states[index + 1].at if index + 1 < len(states) else end
            segments.append((state.at, stop, f"{name}: {state.state}", _STATE_COLOURS.get(state.state, "#9aa3ad")))
        lanes.append((name, segments))

    width, left, right, top = 900, 48, 24, 26
    plot_h, lane_h, lane_gap = 150, 18, 5
    lanes_top = top + plot_h + 40
    height = lanes_top + len(lanes) * (lane_h + lane_gap) + 6
    plot_w = width - left - right
    y_max = max(4, int(max(s.desired for s in samples) * 1.25 + 1))

    def x(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), end) / end

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / y_max

    out = [f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
           f"aria-label='desired count over simulated time' xmlns='http://www.w3.org/2000/svg'>"]
    y_step = max(1, round(y_max / 5))
    for v in range(0, y_max + 1, y_step):
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#eef1f4'/>")
        out.append(f"<text x='{left - 8}' y='{y(v) + 4:.1f}' font-size='11' text-anchor='end' "
                   f"fill='#5f6b7a'>{v}</text>")
    step = _nice_step(end)
    t = 0
    while t <= end + 0.1:
        out.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{top}' y2='{top + plot_h}' stroke='#f3f5f7'/>")
        out.append(f"<text x='{x(t):.1f}' y='{top + plot_h + 26}' font-size='11' text-anchor='middle' "
                   f"fill='#5f6b7a'>{_e(clock_label(t))}</text>")
        t += step
    out.append(f"<text x='{left}' y='{top - 10}' font-size='11' fill='#5f6b7a'>desired tasks</text>")
    if alarms:
        lx = width - right - 235
        for label, colour in (("OK", _STATE_COLOURS["OK"]), ("ALARM", _STATE_COLOURS["ALARM"]),
                              ("INSUFFICIENT_DATA", _STATE_COLOURS["INSUFFICIENT_DATA"])):
            out.append(f"<rect x='{lx}' y='{top - 19}' width='10' height='10' fill='{colour}'/>"
                       f"<text x='{lx + 14}' y='{top - 10}' font-size='11' fill='#5f6b7a'>{label}</text>")
            lx += 38 + len(label) * 6
    for before, after in pairwise(samples):
        if after.revision != before.revision or after.capacity != before.capacity:
            xx = x(after.at)
            bottom = lanes_top + len(lanes) * (lane_h + lane_gap)
            out.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{top}' y2='{bottom}' stroke='#2563a6' "
                       f"stroke-dasharray='4 3' opacity='.55'/>")
    points = [(x(samples[0].at), y(samples[0].desired))]
    for before, after in pairwise(samples):
        points += [(x(after.at), y(before.desired)), (x(after.at), y(after.desired))]
    points.append((x(end), y(samples[-1].desired)))
    path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
    out.append(f"<path d='{path}' fill='none' stroke='#1d2430' stroke-width='2.2'/>")
    previous = None
    for sample in samples:
        if sample.desired != previous:
            out.append(f"<circle cx='{x(sample.at):.1f}' cy='{y(sample.desired):.1f}' r='3.2' fill='#1d2430'/>")
            out.append(f"<text x='{x(sample.at) + 5:.1f}' y='{y(sample.desired) - 6:.1f}' font-size='11' "
                       f"fill='#1d2430'>{sample.desired}</text>")
            previous = sample.desired
    for at, outcome in markers:
        out.append(f"<path d='M{x(at):.1f},{top + plot_h + 3} l-4.5,8 l9,0 z' fill='#2e9d5b'>"
                   f"<title>{_e(clock_label(at))} {_e(outcome)}</title></path>")
    for index, (name, segments) in enumerate(lanes):
        lane_y = lanes_top + index * (lane_h + lane_gap)
        for segment, (start, stop, text, colour) in enumerate(segments):
            x0, x1 = x(start), x(stop)
            out.append(f"<rect x='{x0:.1f}' y='{lane_y}' width='{max(x1 - x0, 1.0):.1f}' height='{lane_h}' "
                       f"fill='{colour}'><title>{_e(text)} from {_e(clock_label(start))}</title></rect>")
            label = text.replace("FARGATE_SPOT", "SPOT")
            if name in ("revision", "capacity") and x1 - x0 > 6 * len(label) + 8:
                out.append(f"<text x='{x0 + 6:.1f}' y='{lane_y + 13}' font-size='11' fill='#1d2430'>{_e(label)}</text>")
            elif name in ("revision", "capacity") and stop >= end and segment > 0:  # a short last segment: label
                out.append(f"<text x='{x1 - 4:.1f}' y='{lane_y + 13}' font-size='11' text-anchor='end' "
                           f"fill='#1d2430'>{_e(label)}</text>")
        if name not in ("revision", "capacity"):
            out.append(f"<text x='{left + 6}' y='{lane_y + 13}' font-size='11' fill='#fff' font-weight='600'>"
                       f"{_e(name)}</text>")
        else:
            out.append(f"<text x='{left - 8}' y='{lane_y + 13}' font-size='10' text-anchor='end' fill='#5f6b7a'>"
                       f"{_e(name[:3])}</text>")
    out.append("</svg>")
    return "".join(out)
