"""The terminal timeline: aligned columns, short sentences, colour only on a TTY (and not --no-color).

Rows are printed as they happen (the timeline is live); consecutive reconciler runs that found
nothing to do collapse into one dim line, so minutes of quiet do not bury the decisions.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterable
from typing import TextIO

from autopilot_tools.demo.clock import clock_label
from autopilot_tools.demo.timeline import Row, ScenarioResult

_CODES = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "blue": "34",
          "magenta": "35", "cyan": "36", "grey": "90"}
TIME_W, ACTOR_W = 9, 12
DASH, TIMES = "\u2013", "\u00d7"  # en dash, multiplication sign


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"


_TASK_DEFINITION_ARN = re.compile(r"arn:aws[\w-]*:ecs:[\w-]+:\d{12}:task-definition/([\w-]+:\d+)")


def _short_arns(text: str) -> str:
    """``web:4`` instead of its task definition ARN (the terminal is narrow; the report keeps them)."""
    return _TASK_DEFINITION_ARN.sub(r"\1", text)


def outcome_style(outcome: str) -> tuple[str, ...]:
    if outcome.startswith("failed:") or outcome.startswith("rejected:"):
        return ("red", "bold")
    if outcome.startswith(("skipped:", "idempotent")):
        return ("yellow",)
    if outcome.startswith("ignored:") or outcome in ("none", ""):
        return ("grey",)
    return ("green", "bold")


class TerminalPrinter:
    """Prints one run: a header, each scenario's live timeline and summary, then the run's summary."""

    def __init__(self, out: TextIO, *, color: bool, width: int | None = None) -> None:
        self.out = out
        self.s = Style(color)
        self.width = max(80, min(width or shutil.get_terminal_size((120, 40)).columns, 160))
        self._quiet: list[Row] = []
        self._last_time: float | None = None

    # ------------------------------------------------------------------ framing
    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, endpoint: str, policies: str, scenarios: int) -> None:
        s = self.s
        self.line(s("ecs-autopilot demo", "bold") + s(f"  ·  {scenarios} scenario{'s' if scenarios != 1 else ''}"
                                                   f"  ·  AWS emulated by moto at {endpoint}  ·  policies {policies}",
                                                   "grey"))
        self.line(s("Every decision below is made by the real Lambda handlers, routed by template.yaml's rules and "
                    "read back from the audit trail and the SNS topic.", "grey"))

    def scenario_start(self, index: int, total: int, name: str, title: str, summary: str) -> None:
        s = self.s
        self.line()
        head = f"━━ {index}/{total}  {name}  ─  {title} "
        self.line(s(head + "━" * max(3, self.width - len(head)), "bold", "cyan"))
        for part in textwrap.wrap(summary, self.width - 2):
            self.line("  " + s(part, "italic"))
        self._last_time = None

    def skipped(self, reason: str) -> None:
        self.line("  " + self.s("skipped: ", "yellow", "bold") + self.s(reason, "yellow"))

    # ------------------------------------------------------------------ rows
    def row(self, row: Row) -> None:
        if row.kind == "quiet":
            self._quiet.append(row)
            return
        self._flush_quiet()
        s = self.s
        time = self._time(row.at)
        pad = " " * TIME_W
        if row.kind == "story":
            self._wrapped(time, s("┊ ", "grey"), row.text, style=("italic",))
        elif row.kind in ("event", "undelivered"):
            arrow = (s("  ⇒ ", "grey") + s(", ".join(row.functions), "cyan")) if row.kind == "event" else \
                s("  ⇏ not delivered", "yellow", "bold") + s(": no rule matches", "grey")
            plain = f"  ⇒ {', '.join(row.functions)}" if row.kind == "event" else "  ⇏ not delivered: no rule matches"
            self._wrapped(time, s("▶ ", "blue") + s(row.actor.ljust(ACTOR_W), "blue", "bold"), row.text, tail=arrow,
                          tail_len=len(plain))
        elif row.kind == "decision":
            head = s("  " + row.actor.ljust(ACTOR_W), "magenta")
            plain = f"{row.target}  {row.outcome or 'decided'}{' [dry-run]' if row.mode == 'dry-run' else ''}"
            shown = (s(row.target + "  ", "bold") if row.target else "") + \
                s(row.outcome or "decided", *outcome_style(row.outcome)) + \
                (s(" [dry-run]", "yellow") if row.mode == "dry-run" else "")
            room = self.width - TIME_W - 2 - ACTOR_W - len(plain) - 4
            trigger = row.text if len(row.text) <= room else row.text[: max(0, room - 1)] + "…"
            self.line(f"{time}{head}{shown}" + (s("  ← " + trigger, "grey") if trigger and room > 10 else ""))
            if row.reason:
                reason = row.reason  # most reasons repeat the trigger shown above: say it once
                if row.text and reason.startswith(row.text + ": "):
                    reason = reason[len(row.text) + 2:]
                self._wrapped(pad, " " * (ACTOR_W + 2), "because " + _short_arns(reason), style=(), max_lines=2)
            extra = []
            if row.calls:
                extra.append("calls " + ", ".join(row.calls))
            if row.result:
                extra.append("now " + row.result)
            if extra:
                self._wrapped(pad, " " * (ACTOR_W + 2), "  ·  ".join(extra), style=("grey",))
        elif row.kind == "notify":
            self._wrapped(time, s("  " + "SNS".ljust(ACTOR_W), "cyan"), "✉ " + _short_arns(row.text), style=("cyan",),
                          max_lines=2)
        elif row.kind == "ecs":
            head = s("⚙ ", "grey") + s(row.actor.ljust(ACTOR_W), "grey", "bold")
            self._wrapped(time, head, row.text, style=("grey",))
        elif row.kind == "log":
            self._wrapped(time, s("  " + row.actor.ljust(ACTOR_W), "magenta"), row.text, style=("yellow",))
        elif row.kind == "error":
            self._wrapped(time, s("✗ " + row.actor.ljust(ACTOR_W), "red", "bold"), f"{row.text} — {row.reason}",
                          style=("red",))
        elif row.kind == "check":
            mark = s("✓ ", "green", "bold") if row.passed else s("✗ ", "red", "bold")
            text = row.text if row.passed else f"{row.text}: {row.reason}"
            self._wrapped(time, mark + s("expected".ljust(ACTOR_W), "grey"), text,
                          style=("green",) if row.passed else ("red", "bold"))

    def _flush_quiet(self) -> None:
        if not self._quiet:
            return
        first, last = self._quiet[0].at, self._quiet[-1].at
        span = clock_label(first) if first == last else f"{clock_label(first)}{DASH}{clock_label(last)[2:]}"
        count = len(self._quiet)
        text = (f"reconciler ran {count}{TIMES} ({span}): nothing to do" if count > 1
                else f"reconciler ran ({span}): nothing to do")
        self._quiet = []
        self.line(self.s(" " * TIME_W + "  " + "reconciler".ljust(ACTOR_W) + text.replace("reconciler ", "", 1),
                         "grey", "dim"))

    def _time(self, at: float) -> str:
        if self._last_time is not None and abs(at - self._last_time) < 0.5:
            return " " * TIME_W
        self._last_time = at
        return self.s(clock_label(at).ljust(TIME_W), "bold")

    def _wrapped(self, time: str, head: str, text: str, *, style: tuple[str, ...] = (), tail: str = "",
                 raw: bool = False, max_lines: int = 0, tail_len: int = 0) -> None:
        indent = TIME_W + 2 + ACTOR_W
        room = max(30, self.width - indent)
        if raw:
            self.line(f"{time}{head}{text}")
            return
        parts = textwrap.wrap(text, room) or [""]
        if tail_len and len(parts[-1]) + tail_len > room:  # keep the arrow on the line it belongs to
            parts = textwrap.wrap(text, room - tail_len) or [""]
        if max_lines and len(parts) > max_lines:  # the report and --json keep the full text
            parts = parts[:max_lines]
            parts[-1] = parts[-1][: room - 1].rstrip() + "…"
        for index, part in enumerate(parts):
            shown = self.s(part, *style) if style else part
            if index == len(parts) - 1:
                shown += tail
            self.line(f"{time if index == 0 else ' ' * TIME_W}{head if index == 0 else ' ' * (indent - TIME_W)}{shown}")

    # ------------------------------------------------------------------ summaries
    def scenario_end(self, result: ScenarioResult) -> None:
        self._flush_quiet()
        s = self.s
        rows = service_summary(result)
        if rows:
            self.line()
            self.table(["service", "desired", "revision", "capacity", "decisions", "notified"], rows, indent=2)
        passed = sum(1 for c in result.checks if c.passed)
        verdict = {"passed": s("✓ passed", "green", "bold"), "failed": s("✗ failed", "red", "bold")}.get(
            result.status, s(f"{DASH} skipped", "yellow", "bold"))
        detail = f"{passed}/{len(result.checks)} expectations · {clock_label(result.simulated_seconds)} simulated" \
                 f" in {result.wall_seconds:.1f}s"
        self.line()
        self.line(f"  {verdict}  {s(detail, 'grey')}")
        if result.error:
            for part in textwrap.wrap(result.error, self.width - 4):
                self.line("    " + s(part, "red"))

    def table(self, headers: list[str], rows: Iterable[list[str]], indent: int = 2) -> None:
        body = [list(r) for r in rows]
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
        pad = " " * indent
        def joined(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        self.line(pad + self.s(joined(headers), "bold"))
        self.line(pad + self.s(joined(["─" * w if h else "" for h, w in zip(headers, widths, strict=True)]), "grey"))
        for r in body:
            self.line(pad + joined(r))

    def summary(self, results: list[ScenarioResult], wall: float, report: str | None) -> None:
        s = self.s
        self.line()
        self.line(s("━━ Summary " + "━" * (self.width - 11), "bold", "cyan"))
        rows = []
        for r in results:
            status = {"passed": "✓ passed", "failed": "✗ FAILED", "skipped": f"{DASH} skipped"}.get(r.status, r.status)
            checks = f"{sum(1 for c in r.checks if c.passed)}/{len(r.checks)}" if r.status != "skipped" else "-"
            decisions = sum(1 for row in r.rows if row.kind == "decision")
            sim_time = clock_label(r.simulated_seconds)[2:] if r.status != "skipped" else "-"
            rows.append([r.name, status, checks, str(decisions), str(len(r.notifications)), sim_time,
                         f"{r.wall_seconds:.1f}s" if r.status != "skipped" else "-",
                         r.skip_reason if r.status == "skipped" else r.title])
        self.table(["scenario", "result", "expected", "decisions", "notified", "simulated", "wall", ""], rows)
        failed = [r for r in results if r.status == "failed"]
        skipped = [r for r in results if r.status == "skipped"]
        passed = [r for r in results if r.status == "passed"]
        invocations = sum(sum(r.invocations.values()) for r in results)
        simulated = sum(r.simulated_seconds for r in results)
        self.line()
        verdict = s(f"{len(passed)} passed", "green", "bold")
        if failed:
            verdict += ", " + s(f"{len(failed)} failed", "red", "bold")
        if skipped:
            verdict += ", " + s(f"{len(skipped)} skipped", "yellow", "bold")
        self.line(f"  {verdict}  {s('·', 'grey')}  {invocations} handler invocations  {s('·', 'grey')}  "
                  f"{clock_label(simulated)[2:]} simulated in {wall:.1f}s wall time")
        if report:
            self.line(f"  report: {s(report, 'bold')}")


def service_summary(result: ScenarioResult) -> list[list[str]]:
    """One row per service the scenario touched: start → end desired count, revision, capacity."""
    touched = {r.target for r in result.rows if r.kind == "decision" and r.target and r.target != "-"}
    rows = []
    for key, samples in sorted(result.services.items()):
        changed = len(samples) > 1
        if not changed and key not in touched:
            continue
        first, last = samples[0], samples[-1]

        def arrow(a: object, b: object) -> str:
            return f"{a} → {b}" if a != b else str(a)

        decisions = sum(1 for r in result.rows if r.kind == "decision" and r.target == key)
        notified = sum(1 for n in result.notifications if key in n)
        rows.append([key, arrow(first.desired, last.desired), arrow(first.revision, last.revision),
                     arrow(first.capacity, last.capacity), str(decisions), str(notified)])
    for key in sorted(t for t in touched if t not in result.services):
        decisions = sum(1 for r in result.rows if r.kind == "decision" and r.target == key)
        notified = sum(1 for n in result.notifications if key in n)
        rows.append([key, "-", "-", "-", str(decisions), str(notified)])
    return rows
