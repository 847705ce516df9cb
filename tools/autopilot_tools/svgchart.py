"""One inline-SVG chart renderer for every self-contained report (the demo's and the backtest's).

A chart is a time axis, a value plot (lines, step lines, shaded spans, dashed vertical rules,
markers below the axis) and, optionally, lanes under it (coloured segments: alarm states, revisions).
No scripts, fonts or external resources: the output opens offline and survives being emailed.
Callers build the parts from their own data; this module only draws.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

MUTED = "#5f6b7a"
INK = "#1d2430"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Line:
    """A series of (x, y) points; ``step`` holds each value until the next point."""

    points: Sequence[tuple[float, float | None]]
    colour: str
    label: str = ""
    width: float = 1.2
    dash: str | None = None
    step: bool = False
    dots: bool = False  # a dot and the value at every change (a desired count over a short run)


@dataclass(frozen=True)
class Span:
    """A shaded vertical band over the plot (e.g. minutes of overload)."""

    start: float
    stop: float
    colour: str
    title: str = ""


@dataclass(frozen=True)
class Segment:
    start: float
    stop: float
    colour: str
    title: str = ""
    text: str = ""


@dataclass(frozen=True)
class Lane:
    """A row of coloured segments under the plot; ``name`` is drawn inside (white) or beside it (muted)."""

    name: str
    segments: Sequence[Segment]
    name_inside: bool = True


@dataclass(frozen=True)
class Marker:
    """A small triangle under the axis at ``at`` (e.g. a decision)."""

    at: float
    colour: str
    title: str = ""


@dataclass
class Chart:
    """Geometry and axes; ``render`` draws the parts given."""

    x_end: float
    y_max: float
    x_ticks: Sequence[tuple[float, str]]
    y_ticks: Sequence[tuple[float, str]]
    x_start: float = 0.0
    title: str = ""
    y_title: str = ""
    width: int = 900
    plot_height: int = 150
    left: int = 48
    right: int = 24
    top: int = 26
    lane_height: int = 18
    lane_gap: int = 5
    legend: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (label, colour), top right

    def x(self, t: float) -> float:
        span = self.x_end - self.x_start
        share = (min(max(t, self.x_start), self.x_end) - self.x_start) / span if span > 0 else 0.0
        return self.left + (self.width - self.left - self.right) * share

    def y(self, v: float) -> float:
        return self.top + self.plot_height - self.plot_height * (v / self.y_max if self.y_max > 0 else 0.0)

    def render(self, lines: Sequence[Line] = (), spans: Sequence[Span] = (), lanes: Sequence[Lane] = (),
               markers: Sequence[Marker] = (), rules: Sequence[float] = (), aria: str = "chart") -> str:
        bottom = self.top + self.plot_height
        lanes_top = bottom + 40
        height = lanes_top + len(lanes) * (self.lane_height + self.lane_gap) + (6 if lanes else -8)
        out = [f"<svg viewBox='0 0 {self.width} {height}' width='100%' role='img' aria-label='{_e(aria)}' "
               f"xmlns='http://www.w3.org/2000/svg'>"]
        if self.title:
            out.append(f"<text x='{self.left}' y='14' font-size='13' font-weight='600' fill='{INK}'>"
                       f"{_e(self.title)}</text>")
        for span in spans:
            x0, x1 = self.x(span.start), self.x(span.stop)
            title = f"<title>{_e(span.title)}</title>" if span.title else ""
            out.append(f"<rect x='{x0:.1f}' y='{self.top}' width='{max(x1 - x0, 0.8):.1f}' "
                       f"height='{self.plot_height}' fill='{span.colour}'>{title}</rect>")
        for value, label in self.y_ticks:
            yy = self.y(value)
            out.append(f"<line x1='{self.left}' x2='{self.width - self.right}' y1='{yy:.1f}' y2='{yy:.1f}' "
                       f"stroke='#eef1f4'/><text x='{self.left - 8}' y='{yy + 4:.1f}' font-size='11' "
                       f"text-anchor='end' fill='{MUTED}'>{_e(label)}</text>")
        for at, label in self.x_ticks:
            xx = self.x(at)
            out.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{self.top}' y2='{bottom}' stroke='#f3f5f7'/>"
                       f"<text x='{xx:.1f}' y='{bottom + 26}' font-size='11' text-anchor='middle' "
                       f"fill='{MUTED}'>{_e(label)}</text>")
        if self.y_title:
            out.append(f"<text x='{self.left}' y='{self.top - 10}' font-size='11' fill='{MUTED}'>"
                       f"{_e(self.y_title)}</text>")
        legend_x = self.width - self.right - sum(24 + 6 * len(label) for label, _ in self.legend)
        for label, colour in self.legend:
            out.append(f"<rect x='{legend_x}' y='{self.top - 19}' width='10' height='10' fill='{colour}'/>"
                       f"<text x='{legend_x + 14}' y='{self.top - 10}' font-size='11' fill='{MUTED}'>"
                       f"{_e(label)}</text>")
            legend_x += 24 + 6 * len(label)
        rules_bottom = lanes_top + len(lanes) * (self.lane_height + self.lane_gap) if lanes else bottom
        for at in rules:
            xx = self.x(at)
            out.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{self.top}' y2='{rules_bottom}' stroke='#2563a6' "
                       f"stroke-dasharray='4 3' opacity='.55'/>")
        for line in lines:
            out.extend(self._line(line))
        for marker in markers:
            out.append(f"<path d='M{self.x(marker.at):.1f},{bottom + 3} l-4.5,8 l9,0 z' fill='{marker.colour}'>"
                       + (f"<title>{_e(marker.title)}</title>" if marker.title else "") + "</path>")
        for index, lane in enumerate(lanes):
            out.extend(self._lane(lane, lanes_top + index * (self.lane_height + self.lane_gap)))
        out.append("</svg>")
        return "".join(out)

    def _line(self, line: Line) -> list[str]:
        parts: list[str] = []
        previous: tuple[float, float] | None = None
        pen_up = True
        for t, v in line.points:
            if v is None:
                pen_up = True
                continue
            xx, yy = self.x(t), self.y(v)
            if pen_up:
                parts.append(f"M{xx:.1f},{yy:.1f}")
            elif line.step and previous is not None:
                parts.append(f"L{xx:.1f},{previous[1]:.1f}L{xx:.1f},{yy:.1f}")
            else:
                parts.append(f"L{xx:.1f},{yy:.1f}")
            previous, pen_up = (xx, yy), False
        if line.step and previous is not None:
            parts.append(f"L{self.x(self.x_end):.1f},{previous[1]:.1f}")
        if not parts:
            return []
        dash = f" stroke-dasharray='{line.dash}'" if line.dash else ""
        title = f"<title>{_e(line.label)}</title>" if line.label else ""
        out = [f"<path d='{''.join(parts)}' fill='none' stroke='{line.colour}' stroke-width='{line.width}'{dash}>"
               f"{title}</path>"]
        if line.dots:
            last: float | None = None
            for t, v in line.points:
                if v is not None and v != last:
                    out.append(f"<circle cx='{self.x(t):.1f}' cy='{self.y(v):.1f}' r='3.2' fill='{line.colour}'/>"
                               f"<text x='{self.x(t) + 5:.1f}' y='{self.y(v) - 6:.1f}' font-size='11' "
                               f"fill='{line.colour}'>{v:g}</text>")
                    last = v
        return out

    def _lane(self, lane: Lane, lane_y: float) -> list[str]:
        out = []
        for index, segment in enumerate(lane.segments):
            x0, x1 = self.x(segment.start), self.x(segment.stop)
            title = f"<title>{_e(segment.title)}</title>" if segment.title else ""
            out.append(f"<rect x='{x0:.1f}' y='{lane_y}' width='{max(x1 - x0, 1.0):.1f}' height='{self.lane_height}' "
                       f"fill='{segment.colour}'>{title}</rect>")
            if segment.text and x1 - x0 > 6 * len(segment.text) + 8:
                out.append(f"<text x='{x0 + 6:.1f}' y='{lane_y + 13}' font-size='11' fill='{INK}'>"
                           f"{_e(segment.text)}</text>")
            elif segment.text and segment.stop >= self.x_end and index > 0:  # a short last segment: label it
                out.append(f"<text x='{x1 - 4:.1f}' y='{lane_y + 13}' font-size='11' text-anchor='end' "
                           f"fill='{INK}'>{_e(segment.text)}</text>")
        if lane.name_inside:
            out.append(f"<text x='{self.left + 6}' y='{lane_y + 13}' font-size='11' fill='#fff' font-weight='600'>"
                       f"{_e(lane.name)}</text>")
        else:
            out.append(f"<text x='{self.left - 8}' y='{lane_y + 13}' font-size='10' text-anchor='end' "
                       f"fill='{MUTED}'>{_e(lane.name[:3])}</text>")
        return out
