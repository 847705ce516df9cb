"""Demand traces: CSV (timestamp,value), `aws cloudwatch get-metric-data` JSON, or CloudWatch itself.

Everything is brought to one value per minute, because the reconciler decides once a minute: by
default each coarse value is held until the next datapoint (``fill="hold"``: every change arrives as
a step, as it would to a service that only learns of it then), or, on request, linear interpolation
(``fill="linear"``: a 5- or 30-minute trace becomes a ramp between its points). Linear ramps flatter
any rule that extrapolates: a trend lever sees the next coarse point minutes early, which real
one-minute metrics never allow; results on them are labelled as such.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO


class TraceError(ValueError):
    """A trace that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class Trace:
    """Demand per minute from ``start``; ``source_period`` is the input's median spacing in seconds."""

    name: str
    start: datetime
    values: tuple[float, ...]
    source_period: int
    fill: str = "hold"

    @property
    def filled(self) -> str:
        """How the minutes were made: 'native 1-minute', or the coarse period and the fill."""
        if self.source_period <= 60:
            return "native 1-minute"
        how = "held as steps" if self.fill == "hold" else "interpolated linearly (optimistic for trend rules)"
        return f"{self.source_period // 60}-minute datapoints {how}"

    @property
    def minutes(self) -> int:
        return len(self.values)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the per-minute demand (q in [0, 100])."""
        ordered = sorted(self.values)
        rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]


def parse_time(text: str) -> datetime:
    """ISO 8601 (with or without zone; naive means UTC), 'YYYY-MM-DD HH:MM:SS', or epoch seconds."""
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TraceError(f"unreadable timestamp {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


FILLS = ("hold", "linear")


def to_minutes(points: Iterable[tuple[datetime, float]], name: str, fill: str = "hold") -> Trace:
    """Sort, de-duplicate (last wins) and fill datapoints to one per minute (``FILLS``)."""
    if fill not in FILLS:
        raise TraceError(f"unknown fill {fill!r} (one of {', '.join(FILLS)})")
    by_time: dict[datetime, float] = {}
    for moment, value in points:
        if not math.isfinite(value):
            raise TraceError(f"{name}: value {value!r} at {moment.isoformat()} is not a finite number")
        by_time[moment.replace(second=0, microsecond=0)] = value
    ordered = sorted(by_time.items())
    if len(ordered) < 2:
        raise TraceError(f"{name}: a trace needs at least two datapoints (found {len(ordered)})")
    gaps = sorted(int((b[0] - a[0]).total_seconds()) for a, b in itertools.pairwise(ordered))
    values: list[float] = []
    for (t0, v0), (t1, v1) in itertools.pairwise(ordered):
        steps = int((t1 - t0).total_seconds() // 60)
        if fill == "hold":
            values.extend([v0] * steps)
        else:
            values.extend(v0 + (v1 - v0) * k / steps for k in range(steps))
    values.append(ordered[-1][1])
    return Trace(name=name, start=ordered[0][0], values=tuple(values), source_period=gaps[len(gaps) // 2], fill=fill)


def read_csv(path: Path, fill: str = "hold") -> Trace:
    """``timestamp,value`` with a header row (the NAB corpus' format); extra columns are ignored."""
    points: list[tuple[datetime, float]] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{path}: empty file")
        first_is_data = _is_number(header[1]) if len(header) > 1 else False
        rows: Iterable[list[str]] = [header, *reader] if first_is_data else reader
        for line, row in enumerate(rows, start=1 if first_is_data else 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise TraceError(f"{path}:{line}: expected timestamp,value")
            try:
                points.append((parse_time(row[0]), float(row[1])))
            except (TraceError, ValueError) as exc:
                raise TraceError(f"{path}:{line}: {exc}") from exc
    return to_minutes(points, path.stem, fill)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_metric_data_json(path: Path, query_id: str | None = None, fill: str = "hold") -> Trace:
    """The JSON `aws cloudwatch get-metric-data` prints (or several pages of it concatenated in a list)."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: not JSON: {exc}") from exc
    pages = document if isinstance(document, list) else [document]
    points: list[tuple[datetime, float]] = []
    ids: set[str] = set()
    for page in pages:
        for result in page.get("MetricDataResults", []) if isinstance(page, dict) else []:
            ids.add(result.get("Id", ""))
            if query_id is not None and result.get("Id") != query_id:
                continue
            if query_id is None and len(ids) > 1:
                raise TraceError(f"{path}: several results ({', '.join(sorted(ids))}); choose one with --query-id")
            points += [(parse_time(t), float(v)) for t, v in zip(result.get("Timestamps", []),
                                                                result.get("Values", []), strict=False)]
    if not ids:
        raise TraceError(f"{path}: no MetricDataResults: is this `aws cloudwatch get-metric-data` output?")
    return to_minutes(points, path.stem, fill)


def read_trace(path: Path, query_id: str | None = None, fill: str = "hold") -> Trace:
    if not path.exists():
        raise TraceError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        return read_metric_data_json(path, query_id, fill)
    return read_csv(path, fill)


# ------------------------------------------------------------------ CloudWatch

class Progress:
    """A one-line progress bar on stderr (silent when stderr is not a terminal, unless forced)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, force: bool = False) -> None:
        self.label, self.total, self.done = label, max(1, total), 0
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + amount)
        if self.enabled:
            filled = int(30 * self.done / self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{self.done}/{self.total} {note}".ljust(79))
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def metric_query(namespace: str, metric: str, dimensions: dict[str, str], stat: str, period: int) -> dict[str, Any]:
    return {"Id": "m0", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": metric,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())]},
        "Period": period, "Stat": stat}}


def fetch_metric(get_metric_data: Callable[..., dict[str, Any]], query: dict[str, Any], start: datetime,
                 end: datetime, progress: Progress | None = None, chunk: timedelta = timedelta(days=1),
                 name: str = "cloudwatch", fill: str = "hold") -> Trace:
    """GetMetricData over [start, end) one chunk at a time (so the bar moves), following NextToken."""
    points: list[tuple[datetime, float]] = []
    cursor = start
    while cursor < end:
        upper = min(end, cursor + chunk)
        kwargs: dict[str, Any] = {"MetricDataQueries": [query], "StartTime": cursor, "EndTime": upper,
                                  "ScanBy": "TimestampAscending"}
        while True:
            response = get_metric_data(**kwargs)
            for result in response.get("MetricDataResults", []):
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    points.append((ts if ts.tzinfo else ts.replace(tzinfo=UTC), float(value)))
            if not response.get("NextToken"):
                break
            kwargs["NextToken"] = response["NextToken"]
        if progress:
            progress.advance(note=upper.strftime("%Y-%m-%d %H:%M"))
        cursor = upper
    if progress:
        progress.close()
    return to_minutes(points, name, fill)


def chunks(start: datetime, end: datetime, chunk: timedelta = timedelta(days=1)) -> int:
    return max(1, math.ceil((end - start) / chunk))


def describe_alarms_json(path: Path) -> list[dict[str, Any]]:
    """MetricAlarms from `aws cloudwatch describe-alarms` JSON (one page, or a list of pages)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TraceError(f"{path}: {exc}") from exc
    pages: Sequence[Any] = document if isinstance(document, list) else [document]
    alarms = [a for page in pages if isinstance(page, dict) for a in page.get("MetricAlarms", [])]
    if not alarms:
        raise TraceError(f"{path}: no MetricAlarms: is this `aws cloudwatch describe-alarms` output?")
    return alarms
