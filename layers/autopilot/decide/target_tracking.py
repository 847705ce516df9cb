"""targetTracking rules: keep a metric near a target the way Kubernetes' HPA does, as pure functions.

Once a minute the reconciler hands each rule the newest datapoints of its metric. A rule recommends
``ceil(base x metric / targetValue)`` tasks, where ``base`` is the number of tasks that produced the
metric: the running count seen one evaluation earlier (the metric arrives a period late), but no more
than the desired count (a scale-in at that evaluation stopped the tasks above it at once).

- Within ``tolerance`` of the target the rule holds: above ``targetValue x (1 + tolerance)`` it may scale
  out, below ``targetValue x (1 - scaleInTolerance)`` (default: ``tolerance``) it may scale in.
- Scale-out needs ``datapointsToScaleOut`` consecutive datapoints beyond the band and is limited by
  ``scaleOutPolicies`` (at most N tasks or P % per period, ``scaleOutSelectPolicy`` Max|Min|Disabled).
- Trend-aware scale-out (``scaleOutLookaheadSeconds`` > 0): a least-squares line through the newest
  ``trendDatapoints`` forecasts the metric that far past the newest datapoint; when the forecast is
  higher it stands in for the newest datapoint (band, confirmation and size of a scale-out). Datapoints
  from before a scale-in are first rescaled to the tasks left (fewer tasks raise the metric: that is
  not a trend). Forecasts never scale in, and the stabilization window below remembers what was
  measured, not what was forecast.
- Scale-in takes the highest recommendation of the last ``scaleInStabilizationSeconds`` (so a
  brief dip does not remove tasks a spike will need again) and is limited by ``scaleInPolicies``.
- Missing data never scales in: a rule without a fresh datapoint holds (and its hold counts as a
  recommendation, so scale-in waits a full window once data returns).
- Several rules: scale out when any rule asks (the largest ask wins), scale in only when every rule
  agrees (the largest, i.e. most cautious, wins).
- Then the rules every scaling rule obeys: clamp to [minTasks, maxTasks], Application Auto Scaling
  cooldowns (a scale-out in its cooldown only proceeds beyond what that cooldown already set; a
  scale-in waits for its cooldown; a scale-out ends a scale-in cooldown), and no scale-in while an
  ECS deployment is in progress (as AWS suspends it).

The same functions run in the ReconcilerFunction and in ``autopilot backtest`` (which is why the
core works on small frozen dataclasses: it is replayed hundreds of thousands of times per trace).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple, Protocol

from autopilot.models.actions import Decision, SetDesiredCount
from autopilot.models.policy import RatePolicy, Scaling, TargetTracking
from autopilot.models.state import ScalingState, TargetTrackingState

Peaks = tuple[tuple[datetime, int], ...]
Loads = tuple[tuple[datetime, float], ...]  # (evaluation time, load in tasks at the target), oldest first
# Float noise guard for ceil(): 3 x 70 / 70 must be 3, not 4.
_EPS = 1e-9
_FRESH_RUNNING = timedelta(minutes=3)
_SECONDS: dict[int, timedelta] = {}


def _span(seconds: int) -> timedelta:
    """timedelta(seconds=...) memoised: built once per distinct window, not once per minute replayed."""
    span = _SECONDS.get(seconds)
    if span is None:
        span = _SECONDS[seconds] = timedelta(seconds=seconds)
    return span


class Memory(NamedTuple):
    """What the rules of one service carry from one evaluation to the next."""

    peaks: Mapping[str, Peaks] = {}  # per rule: the candidates for its window's maximum (never mutated)
    changes: tuple[tuple[datetime, int], ...] = ()  # desired-count changes made by the rules, for rate limits
    running_seen: tuple[datetime, int] | None = None  # the running count of the previous evaluation
    loads: Mapping[str, Loads] = {}  # per robust rule: the window of loads in tasks at the target (never mutated)
    scales: Mapping[str, float] = {}  # per predictive rule: the forecast's calibration


class Forecast(Protocol):
    """A demand forecast (decide/forecast.py builds them; imported only where a policy uses one)."""

    def at(self, moment: datetime) -> float: ...  # expected load at ``moment``, in the load metric's own unit

    def usable(self, now: datetime) -> str | None: ...  # why it must not be used now (None: usable)

    @property
    def skill(self) -> float: ...  # in [0, 1]: the share of a flat forecast's squared error it removes


class Reading(NamedTuple):
    """One rule's view of this evaluation."""

    key: str
    latest: float | None
    verdict: str  # missing | within-tolerance | steady | out | out-unconfirmed | in
    recommendation: int  # tasks the rule asks for now (the current desired count when it holds)
    proposal: int  # after stabilization (scale-in) and rate limits
    base: int
    note: str = ""  # which limit shaped the proposal
    forecast: float | None = None  # the trend's forecast, when it stood in for the newest datapoint
    predicted: float | None = None  # a predictive rule's forecast load (tasks at the target) within one task start


class Cooldowns(NamedTuple):
    """The ScalingState cooldown fields as a plain tuple (the replay changes them thousands of times)."""

    scale_out_until: datetime | None = None
    scale_out_base: int | None = None
    scale_out_target: int | None = None
    scale_in_until: datetime | None = None
    last_action_at: datetime | None = None
    last_desired: int | None = None

    @classmethod
    def of(cls, state: ScalingState) -> Cooldowns:
        return cls(state.scale_out_until, state.scale_out_base, state.scale_out_target, state.scale_in_until,
                   state.last_action_at, state.last_desired)

    def onto(self, state: ScalingState) -> ScalingState:
        """``state`` with these cooldowns (other fields kept); ``state`` itself when nothing changed."""
        if Cooldowns.of(state) == self:
            return state
        return state.model_copy(update=self._asdict())


class Verdict(NamedTuple):
    """The outcome of one evaluation of a service's targetTracking rules."""

    outcome: str  # scale-out | scale-in | skipped:<why>
    desired: int  # the desired count to set (the current one when skipped)
    previous: int
    readings: tuple[Reading, ...]
    memory: Memory
    cooldowns: Cooldowns
    note: str = ""  # why a wanted change was not made

    @property
    def acts(self) -> bool:
        return self.desired != self.previous


def recommend(tt: TargetTracking, latest: float, base: int) -> int:
    """HPA's formula: ceil(base x metric / target); a service at zero tasks with load counts as one."""
    if latest > 0 and base < 1:
        base = 1
    return max(0, math.ceil(base * latest / tt.targetValue - _EPS))


def beyond_band(tt: TargetTracking, value: float) -> int:
    """+1 above the tolerance band, -1 below it (``scaleInTolerance`` when set), 0 within."""
    ratio = value / tt.targetValue
    if ratio > 1 + tt.band_tolerance + _EPS:
        return 1
    low = tt.band_tolerance if tt.scaleInTolerance is None else tt.scaleInTolerance
    if ratio < 1 - low - _EPS:
        return -1
    return 0


def trend(values: Sequence[float | None], lookahead: float) -> float | None:
    """The least-squares line through ``values`` (newest first, one per period) at ``lookahead`` periods
    past the newest; None without the newest value and at least one other (gaps are skipped)."""
    if not values or values[0] is None:
        return None
    if len(values) == 2:  # the common case, in closed form: the newest plus the last change, extended
        older = values[1]
        return None if older is None else values[0] + (values[0] - older) * lookahead
    n = 0
    sx = sy = sxx = sxy = 0.0  # sums over the points (x = -i, y = values[i]), one pass
    for i, v in enumerate(values):
        if v is not None:
            n += 1
            sx -= i
            sy += v
            sxx += i * i
            sxy -= i * v
    if n < 2:
        return None
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return (sy - slope * sx) / n + slope * lookahead


def rescaled(datapoints: Sequence[float | None], base: int, changes: Sequence[tuple[datetime, int]],
             now: datetime, period: timedelta) -> list[float | None]:
    """Datapoints as if produced by ``base`` tasks, undoing the rules' scale-ins since each was produced.

    Datapoint i (newest first) covers the period that ended about i periods before the previous
    evaluation; a scale-in at an evaluation after it stopped tasks that helped produce it, so it is
    scaled by (base + those tasks) / base. Scale-outs are not undone (tasks start at an unknown time):
    the forecast can only come out lower for them, never higher.
    """
    ins = [(at, -c) for at, c in changes if c < 0]
    if not ins or base <= 0:
        return datapoints if isinstance(datapoints, list) else list(datapoints)
    out: list[float | None] = []
    for i, v in enumerate(datapoints):
        if v is None or i == 0:
            out.append(v)
            continue
        since = now - period * (i + 0.5)
        removed = sum(n for at, n in ins if at >= since)
        out.append(v * (base + removed) / base if removed else v)
    return out


def push_peak(peaks: Peaks, now: datetime, value: int, window_seconds: int) -> Peaks:
    """Add a recommendation to a window whose maximum is ``peaks[0]``.

    Only entries above every later one can become the maximum again, so the kept list is strictly
    decreasing: a week of minutes replays in constant memory and the stored state stays small.
    """
    horizon = now - _span(window_seconds)
    kept = [p for p in peaks if p[0] > horizon and p[1] > value]
    kept.append((now, value))
    return tuple(kept)


def rate_limit(direction: int, policies: Sequence[RatePolicy], select: str, desired: int,
               changes: Sequence[tuple[datetime, int]], now: datetime) -> int | None:
    """The furthest the desired count may move now in ``direction`` (None: unlimited).

    As HPA: each policy counts from the capacity at the start of its period (the current count
    minus the rules' changes in that direction within it); Max picks the policy allowing the most
    change, Min the least, Disabled allows none. Percent rounds up when scaling out and down when
    scaling in, as HPA does; a Percent policy lets a service at zero grow by one.
    """
    if select == "Disabled":
        return desired
    if not policies:
        return None
    allowed: list[int] = []
    for policy in policies:
        since = now - _span(policy.periodSeconds)
        moved = sum(c for at, c in changes if at > since and (c > 0) == (direction > 0))
        start = desired - moved
        if policy.type == "Tasks":
            allowed.append(start + direction * policy.value)
        elif direction > 0:
            allowed.append(max(start + 1, math.ceil(start * (100 + policy.value) / 100 - _EPS)))
        else:
            allowed.append(max(0, math.floor(start * (100 - policy.value) / 100 + _EPS)))
    most = max(allowed) if direction > 0 else min(allowed)
    least = min(allowed) if direction > 0 else max(allowed)
    return most if select == "Max" else least


def read_rule(tt: TargetTracking, datapoints: Sequence[float | None], base: int,
              desired: int, forecast: float | None = None) -> tuple[str, int, float | None]:
    """(verdict, recommendation, latest) for one rule, before bounds, stabilization and limits.

    ``forecast`` (trend-aware scale-out) stands in for the newest datapoint when it is higher.
    """
    latest = datapoints[0] if datapoints else None
    if latest is None:
        return "missing", desired, None
    value = forecast if forecast is not None and forecast > latest else latest
    side = beyond_band(tt, value)
    if side == 0:
        return "within-tolerance", desired, latest
    target = recommend(tt, value, base)
    if side > 0 and target > desired:
        count = tt.out_datapoints
        confirmed = count == 1 or (len(datapoints) >= count and all(
            v is not None and beyond_band(tt, v) > 0 for v in datapoints[1:count]))
        return ("out" if confirmed else "out-unconfirmed"), target, latest
    if side < 0 and target < desired:
        return "in", target, latest
    return "steady", desired, latest


def datapoints_needed(tt: TargetTracking) -> int:
    """How many of the newest datapoints a rule reads (the reconciler fetches that many).

    A robust rule keeps its own window of loads, so it reads only the newest (and a trend's)."""
    trend_count = tt.trendDatapoints if tt.scaleOutLookaheadSeconds else 1
    if tt.sizing == "robust":
        return trend_count
    return max(tt.out_datapoints, trend_count)


def memory_seconds(tt: TargetTracking, period: int = 60) -> int:
    """Seconds of the rules' desired-count changes a rule needs: its rate limits' longest period, for a
    trend-aware rule the span of its datapoints (to rescale those from before a scale-in), and for a
    robust rule its hold after a scale-out."""
    span = tt.longest_rate_period
    if tt.scaleOutLookaheadSeconds:
        span = max(span, (tt.trendDatapoints + 1) * period)
    if tt.sizing == "robust":
        span = max(span, tt.hold_after_out)
    return span


# ------------------------------------------------------------------ robust sizing (issue 12)

_MAD_TO_SIGMA = 1.4826 / math.sqrt(2)  # median |x[i+1] - x[i]| of Gaussian noise of deviation s is s x sqrt(2) / 1.4826


def noise(values: Sequence[float]) -> float:
    """The minute-to-minute noise of a load series, robustly: the median absolute difference of
    consecutive values, scaled to a standard deviation. A level, a slow trend and a few bursts barely
    move it; fewer than 3 values give 0 (no evidence of noise yet)."""
    if len(values) < 3:
        return 0.0
    diffs = sorted([abs(b - a) for a, b in pairwise(values)])
    mid = len(diffs) // 2
    median = diffs[mid] if len(diffs) % 2 else (diffs[mid - 1] + diffs[mid]) / 2
    return median * _MAD_TO_SIGMA


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (q in [0, 100]) of a non-empty sequence, interpolating linearly between the
    closest ranks (numpy's default), so that the percentile moves smoothly with q on a short window."""
    ordered = sorted(values)
    position = q / 100 * (len(ordered) - 1)
    low = int(position)
    if low >= len(ordered) - 1:
        return ordered[-1]
    return ordered[low] + (ordered[low + 1] - ordered[low]) * (position - low)


def _time(point: tuple[datetime, float]) -> datetime:
    return point[0]


def _tasks(load: float) -> int:
    return max(0, math.ceil(load - _EPS))


class RobustReading(NamedTuple):
    verdict: str
    recommendation: int
    window: Loads
    note: str
    predicted: float | None  # the forecast's need (tasks at the target) within one task start, when used
    scale: float | None = None  # the forecast's calibration (load in tasks per unit of forecast demand)


CALIBRATION_MINUTES = 60  # the forecast's calibration follows the rule's loads with this time constant


def read_robust(tt: TargetTracking, window: Loads, newest: float | None, stamp: datetime, base: int, desired: int,
                now: datetime, changes: Sequence[tuple[datetime, int]], trend_value: float | None = None,
                forecast: Forecast | None = None, scale: float | None = None) -> RobustReading:
    """One robust rule's reading (``sizing: robust``), before bounds, limits and cooldowns.

    The load is the newest datapoint in tasks at the target (metric x tasks that produced it / target),
    kept over ``window_seconds`` with the time of its datapoint (``stamp``; a datapoint seen twice counts
    once). Scale-out: when the newest load is beyond the band (desired x (1 + tolerance)) and either the
    mean of the newest ``datapointsToScaleOut`` loads is too (a sustained breach: sized on that mean when it
    is lower, since the newest of a few noisy loads that crossed the band is the likeliest to overstate the
    level) or it
    alone is ``scaleOutNoiseDeviations`` noise deviations beyond it (a sudden rise, not noise: sized on the
    newest load). Scale-in: to what the ``scaleInPercentile`` of the window needs, only when that clears one
    task fewer by ``scaleInHysteresis`` noise deviations, and not within ``holdAfterScaleOutSeconds`` of a
    scale-out. A usable forecast (predictive rules) gives a need: its peak demand within one task start,
    calibrated to the rule's loads (``scale``: a running mean of load / forecast over about an hour, so the
    load metric's unit and the forecast's level error cancel) plus the same noise headroom the percentile
    keeps. Beyond the band it scales out ahead of the demand; scale-in never goes below it; it never
    lowers the count by itself. And since it will pre-scale ahead of the next rise, the percentile itself
    needs less headroom while it is usable (``trusted_percentile``): it moves the forecast's skill of the
    way down to ``trustedScaleInPercentile``, never below the mean of the newest ``datapointsToScaleOut``
    loads (a low percentile of a window that straddles a step up is the old level).
    """
    kept = list(window[bisect_right(window, stamp - _span(tt.window_seconds), key=_time):])
    if newest is None:
        return RobustReading("missing", desired, tuple(kept), "", None, scale)
    load = newest * base / tt.targetValue
    fresh = not kept or kept[-1][0] < stamp
    if fresh:
        kept.append((stamp, load))
    elif kept[-1][0] == stamp:
        kept[-1] = (stamp, load)  # the same datapoint again (CloudWatch was late): counted once
    window = tuple(kept)
    values = [v for _, v in kept]
    spread = noise(values[:-1])  # the newest is judged against the noise before it
    out_load = load
    if trend_value is not None and trend_value > newest:
        out_load = trend_value * base / tt.targetValue
    band = desired * (1 + tt.band_tolerance)
    predicted, scale, q = _predicted(tt, forecast, kept, now, scale, spread, fresh)
    ahead = predicted is not None and predicted > band + _EPS  # the forecast needs more than the band
    if out_load > band + _EPS:
        count = tt.out_datapoints
        recent = values[-count:]
        mean = (sum(recent) - load + out_load) / count
        sustained = len(recent) >= count and mean > band + _EPS
        sudden = out_load > band + tt.out_noise_deviations * spread + _EPS
        wanted = _tasks(out_load if sudden or not sustained or mean > out_load else mean)
        if ahead:
            wanted = max(wanted, _tasks(predicted))  # type: ignore[arg-type]
        if (sustained or sudden) and wanted > desired:
            why = (f"beyond {tt.out_noise_deviations:g} noise deviations" if sudden
                   else f"sustained: the mean of the newest {count} is {mean:.3g}")
            return RobustReading("out", wanted, window, f"load {out_load:.3g} tasks > band {band:.3g}: {why}",
                                 predicted, scale)
        if wanted > desired and not ahead:
            return RobustReading("out-unconfirmed", wanted, window,
                                 f"load {out_load:.3g} tasks > band {band:.3g}, not yet sustained", predicted, scale)
    if ahead and _tasks(predicted) > desired:  # type: ignore[arg-type]
        return RobustReading("out", _tasks(predicted), window,  # type: ignore[arg-type]
                             f"the forecast needs {predicted:.3g} tasks within one task start", predicted, scale)
    held = tt.hold_after_out
    if held and changes:
        since = now - _span(held)
        if any(c > 0 and at > since for at, c in changes):
            return RobustReading("steady", desired, window, f"held {held}s after a scale-out", predicted, scale)
    if len(values) < 3:
        return RobustReading("steady", desired, window, "window still filling", predicted, scale)
    level = percentile(values, q)
    if q < tt.in_percentile:  # a trusted forecast lowered it: never below the current sustained load
        recent = values[-tt.out_datapoints:]
        level = max(level, sum(recent) / len(recent))
    target = _tasks(level)
    floor = _tasks(predicted) if predicted is not None else 0
    if floor > target:
        target = floor
    margin = tt.in_hysteresis * spread
    if (target < desired and level <= desired - 1 - margin + _EPS
            and (tt.scaleInTolerance is None or level < desired * (1 - tt.scaleInTolerance) - _EPS)):
        return RobustReading("in", target, window,
                             f"p{q:.3g} of the last {tt.window_seconds}s is {level:.3g} tasks", predicted,
                             scale)
    verdict = "within-tolerance" if load >= desired * (1 - tt.band_tolerance) - _EPS else "steady"
    return RobustReading(verdict, desired, window, "", predicted, scale)


def trusted_percentile(tt: TargetTracking, skill: float) -> float:
    """The scale-in percentile of a robust rule while its forecast is usable: ``scaleInPercentile`` moved
    ``skill`` (in [0, 1]) of the way down to ``predictive.trustedScaleInPercentile`` (never up).

    Why: the percentile's headroom above the window's typical load is there for a rise the rule has not seen
    yet; a forecast that pre-scales one task start ahead covers the rises it foresees, in proportion to how
    much of the demand's movement it explains. A forecast no better than a flat one (skill 0) changes nothing."""
    q = tt.in_percentile
    floor = tt.predictive.trustedScaleInPercentile if tt.predictive is not None else q
    if q <= floor:
        return q
    return q - min(1.0, max(0.0, skill)) * (q - floor)


@lru_cache(maxsize=256)
def _z(q: float) -> float:
    """The normal quantile of percentile ``q``: the noise headroom, in deviations, that percentile keeps
    (statistics is imported here, as in the policy model: only a predictive rule pays for it)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(q, 99.9) / 100)


def _predicted(tt: TargetTracking, forecast: Forecast | None, window: Sequence[tuple[datetime, float]],
               now: datetime, scale: float | None, spread: float,
               fresh: bool) -> tuple[float | None, float | None, float]:
    """(the forecast's need in tasks, the updated calibration, the scale-in percentile); the need is None
    without a usable forecast or a calibration (the calibration is kept while the forecast is unusable), and
    the percentile is lowered (``trusted_percentile``) only with a need."""
    q = tt.in_percentile
    if forecast is None or tt.predictive is None:
        return None, None, q
    if fresh and window:
        at, value = window[-1]
        expected = forecast.at(at)
        if expected > 0:
            ratio = value / expected
            if scale is None:
                ratios = sorted(v / e for v, e in ((v, forecast.at(a)) for a, v in window) if e > 0)
                scale = ratios[len(ratios) // 2] if len(ratios) >= 3 else None
            else:  # a running mean; one burst moves it at most by 3x its weight
                scale += (min(ratio, 3 * scale) - scale) / CALIBRATION_MINUTES
    if scale is None or forecast.usable(now) is not None:
        return None, scale, q
    steps = max(1, tt.predictive.taskStartSeconds // 60)
    peak = max(forecast.at(now + _span(60 * k)) for k in range(steps + 1))
    q = trusted_percentile(tt, forecast.skill)
    z = tt.in_z if q == tt.in_percentile else _z(round(q, 3))
    return scale * peak + z * spread, scale, q


def evaluate(
    *,
    rules: Sequence[TargetTracking],
    series: Sequence[Sequence[float | None]],
    scaling: Scaling,
    memory: Memory,
    cooldowns: Cooldowns,
    desired: int,
    running: int,
    now: datetime,
    scale_in_blocked: str | None = None,
    periods: Sequence[int] | None = None,
    stamps: Sequence[datetime | None] | None = None,
    forecasts: Sequence[Forecast | None] | None = None,
) -> Verdict:
    """Evaluate every targetTracking rule of one service; ``series[i]`` are rule i's datapoints, newest first.

    ``running`` is the service's running count now; the rules scale from the running count of the
    previous evaluation (the tasks that produced the datapoint), capped by the desired count (a
    scale-in stopped the rest), when it is at most 3 minutes old, else from the current one, and from
    the desired count when no task runs. ``periods[i]`` is rule i's metric period in seconds
    (default 60; only trend-aware rules use it). ``scale_in_blocked`` names a reason scale-in must
    wait (e.g. a deployment in progress). Robust rules also take ``stamps[i]``, the start of the
    newest datapoint's period (default: one period before ``now``), and ``forecasts[i]`` (predictive rules).
    """
    seen = memory.running_seen
    if seen is not None and now - seen[0] <= _FRESH_RUNNING:
        base = seen[1] if seen[1] <= desired else desired
    else:
        base = running
    if base <= 0:
        base = desired  # no running count (all tasks starting, or unknown): the desired count is the best guess
    changes = memory.changes
    if changes:
        longest = 0
        for i, tt in enumerate(rules):
            longest = max(longest, memory_seconds(tt, periods[i] if periods else 60))
        horizon = now - _span(longest)
        if changes[0][0] <= horizon:  # oldest first: keep the suffix inside the horizon
            changes = tuple(c for c in changes if c[0] > horizon)
    peaks = dict(memory.peaks)
    loads = dict(memory.loads)
    scales = dict(memory.scales)
    high = scaling.maxTasks
    readings: list[Reading] = []
    for index, (tt, datapoints) in enumerate(zip(rules, series, strict=True)):
        forecast = None
        lookahead = tt.scaleOutLookaheadSeconds
        period = periods[index] if periods else 60
        if lookahead and datapoints and datapoints[0] is not None:
            recent = datapoints[:tt.trendDatapoints]
            if changes:
                recent = rescaled(recent, base, changes, now, _span(period))
            forecast = trend(recent, lookahead / period)
        if tt.sizing == "robust":
            latest = datapoints[0] if datapoints else None
            stamp = (stamps[index] if stamps else None) or now - _span(period)
            robust = read_robust(tt, loads.get(tt.key, ()), latest, stamp, base, desired, now, changes, forecast,
                                 forecasts[index] if forecasts else None, scales.get(tt.key))
            loads[tt.key] = robust.window
            if robust.scale is not None:
                scales[tt.key] = robust.scale
            proposal, note = desired, robust.note
            if robust.verdict == "out":
                limit = rate_limit(1, tt.scaleOutPolicies, tt.scaleOutSelectPolicy, desired, changes, now)
                proposal = robust.recommendation if limit is None else max(desired, min(robust.recommendation, limit))
                if proposal < robust.recommendation:
                    note = f"scale-out limited to {proposal} by scaleOutPolicies ({tt.scaleOutSelectPolicy})"
            elif robust.verdict == "in":
                limit = rate_limit(-1, tt.scaleInPolicies, tt.scaleInSelectPolicy, desired, changes, now)
                proposal = robust.recommendation if limit is None else min(desired, max(robust.recommendation, limit))
                if proposal > robust.recommendation:
                    note = f"scale-in limited to {proposal} by scaleInPolicies ({tt.scaleInSelectPolicy})"
            stood_in = forecast if forecast is not None and latest is not None and forecast > latest else None
            readings.append(Reading(tt.key, latest, robust.verdict, robust.recommendation, proposal, base, note,
                                    stood_in, robust.predicted))
            continue
        verdict, rec, latest = read_rule(tt, datapoints, base, desired, forecast)
        # The window remembers what was measured: a scale-out the forecast alone asked for counts as a hold.
        kept = rec
        if forecast is not None and verdict == "out" and latest is not None and forecast > latest:
            kept = max(desired, recommend(tt, latest, base))
        # Above maxTasks every ask is the same ask (and a huge one must not sit in the stored state).
        stack = push_peak(peaks.get(tt.key, ()), now, min(kept, high), tt.window_seconds)
        peaks[tt.key] = stack
        proposal, note = desired, ""
        if verdict == "out":
            limit = rate_limit(1, tt.scaleOutPolicies, tt.scaleOutSelectPolicy, desired, changes, now)
            proposal = rec if limit is None else max(desired, min(rec, limit))
            if proposal < rec:
                note = f"scale-out limited to {proposal} by scaleOutPolicies ({tt.scaleOutSelectPolicy})"
        elif verdict in ("in", "steady", "within-tolerance"):
            stabilized = stack[0][1]
            if stabilized < desired:
                limit = rate_limit(-1, tt.scaleInPolicies, tt.scaleInSelectPolicy, desired, changes, now)
                proposal = stabilized if limit is None else min(desired, max(stabilized, limit))
                if proposal > stabilized:
                    note = f"scale-in limited to {proposal} by scaleInPolicies ({tt.scaleInSelectPolicy})"
            elif verdict == "in":
                note = (f"the highest recommendation of the last {tt.window_seconds}s "
                        f"is {stabilized} tasks")
        stood_in = forecast if forecast is not None and latest is not None and forecast > latest else None
        readings.append(Reading(tt.key, latest, verdict, rec, proposal, base, note, stood_in))
    new_memory = Memory(peaks, changes, (now, running), loads, scales)
    return _combine(tuple(readings), scaling, new_memory, cooldowns, desired, now, scale_in_blocked)


def _combine(readings: tuple[Reading, ...], scaling: Scaling, memory: Memory, cooldowns: Cooldowns,
             desired: int, now: datetime, scale_in_blocked: str | None) -> Verdict:
    """Any rule may scale out; scale-in needs every rule; then bounds, cooldowns and safety."""
    if not readings:
        return Verdict("skipped:no-rule", desired, desired, readings, memory, cooldowns)
    wanted = readings[0].proposal if len(readings) == 1 else max(r.proposal for r in readings)
    if wanted > desired:
        target = min(scaling.maxTasks, wanted)
        if target <= desired:
            return Verdict("skipped:at-max", desired, desired, readings, memory, cooldowns,
                           f"already at maxTasks {scaling.maxTasks}")
        until = cooldowns.scale_out_until
        if until is not None and now < until and target <= (cooldowns.scale_out_target or 0):
            return Verdict("skipped:cooldown", desired, desired, readings, memory, cooldowns,
                           f"in scale-out cooldown until {until.isoformat()} and the scale-out that started it "
                           f"already set {cooldowns.scale_out_target} tasks")
        in_cooldown = until is not None and now < until
        new_cooldowns = cooldowns._replace(
            scale_out_until=until if in_cooldown else now + _span(scaling.scaleOutCooldownSeconds),
            scale_out_base=cooldowns.scale_out_base if in_cooldown else desired,
            scale_out_target=target, scale_in_until=None, last_action_at=now, last_desired=target)
        memory = memory._replace(changes=(*memory.changes, (now, target - desired)))
        return Verdict("scale-out", target, desired, readings, memory, new_cooldowns)
    if wanted < desired:
        target = max(scaling.minTasks, wanted)
        if target >= desired:
            return Verdict("skipped:at-min", desired, desired, readings, memory, cooldowns,
                           f"already at minTasks {scaling.minTasks}")
        if scale_in_blocked:
            return Verdict("skipped:scale-in-suspended", desired, desired, readings, memory, cooldowns,
                           scale_in_blocked)
        until = cooldowns.scale_in_until
        if until is not None and now < until:
            return Verdict("skipped:cooldown", desired, desired, readings, memory, cooldowns,
                           f"scale-in blocked by its cooldown until {until.isoformat()}")
        new_cooldowns = cooldowns._replace(scale_in_until=now + _span(scaling.scaleInCooldownSeconds),
                                           last_action_at=now, last_desired=target)
        memory = memory._replace(changes=(*memory.changes, (now, target - desired)))
        return Verdict("scale-in", target, desired, readings, memory, new_cooldowns)
    missing = all(r.verdict == "missing" for r in readings)
    return Verdict("skipped:missing-data" if missing else "skipped:no-change", desired, desired, readings, memory,
                   cooldowns)


def explain(verdict: Verdict, rules: Sequence[TargetTracking]) -> str:
    """The human "because" of a verdict, one clause per rule."""
    by_key = {tt.key: tt for tt in rules}
    parts: list[str] = []
    for r in verdict.readings:
        tt = by_key.get(r.key)
        target = f"{tt.targetValue:g}" if tt else "?"
        if r.latest is None:
            parts.append(f"{r.key}: no recent datapoint (missing data never scales in)")
            continue
        trend_note = ""
        if r.forecast is not None and tt is not None:
            trend_note = f" (trend: {r.forecast:.4g} in {tt.scaleOutLookaheadSeconds}s)"
        head = f"{r.key}: {r.latest:g}{trend_note} vs target {target}"
        if r.verdict == "within-tolerance":
            parts.append(f"{head}, within tolerance {tt.band_tolerance:g}" if tt else head)
        elif r.verdict == "out-unconfirmed" and tt is not None and tt.sizing == "robust":
            parts.append(f"{head} x {r.base} tasks: {r.note}")
        elif r.verdict == "out-unconfirmed":
            needed = tt.out_datapoints if tt else "?"
            parts.append(f"{head} asks for {r.recommendation} tasks, waiting for {needed} datapoints above the band")
        else:
            predicted = f", forecast {r.predicted:.3g} tasks" if r.predicted is not None else ""
            parts.append(f"{head} x {r.base} tasks asks for {r.recommendation}"
                         + (f", proposes {r.proposal}" if r.proposal != r.recommendation else "")
                         + (f" ({r.note})" if r.note else "") + predicted)
    text = "; ".join(parts)
    if verdict.acts:
        text += f" -> {verdict.previous} to {verdict.desired} tasks"
    elif verdict.note:
        text += f"; {verdict.note}"
    else:
        text += f"; desired count stays {verdict.previous}"
    return text


# ------------------------------------------------------------------ adapters for the reconciler

def align(points: Sequence[tuple[datetime, float]], now: datetime, period_seconds: int, count: int,
          max_stale_periods: int = 3) -> list[float | None]:
    """Datapoints of complete periods, newest first, one per period (None for a gap).

    The newest complete period whose datapoint exists starts the series if it is at most
    ``max_stale_periods`` old (CloudWatch publishes a minute's datapoint a minute or two late);
    otherwise the series starts with None: missing data. A period still in progress is ignored
    (a partial Sum would read as a drop in load).
    """
    period = timedelta(seconds=period_seconds)
    complete = sorted(((ts, v) for ts, v in points if ts + period <= now), key=lambda p: p[0], reverse=True)
    if not complete:
        return [None] * count
    newest = complete[0][0]
    if now - (newest + period) >= period * max_stale_periods:
        return [None] * count
    by_slot = {round((newest - ts) / period): v for ts, v in complete}
    return [by_slot.get(i) for i in range(count)]


def newest_stamp(points: Sequence[tuple[datetime, float]], now: datetime, period_seconds: int,
                 max_stale_periods: int = 3) -> datetime | None:
    """The start of the period ``align`` takes its newest datapoint from (None: missing data): a robust
    rule counts a datapoint it sees twice (CloudWatch was late) once."""
    period = timedelta(seconds=period_seconds)
    complete = [ts for ts, _ in points if ts + period <= now]
    if not complete:
        return None
    newest = max(complete)
    return None if now - (newest + period) >= period * max_stale_periods else newest


def memory_from_state(state: TargetTrackingState) -> Memory:
    running = state.running_seen
    return Memory(peaks={k: tuple((at, n) for at, n in v) for k, v in state.peaks.items()},
                  changes=tuple((at, c) for at, c in state.changes),
                  running_seen=(running[0], running[1]) if running else None,
                  loads={k: tuple((at, x) for at, x in v) for k, v in state.loads.items()},
                  scales=dict(state.scales))


def memory_to_state(memory: Memory, rules: Sequence[TargetTracking]) -> TargetTrackingState:
    """Stored form; forgets rules no longer in the policy (loads rounded to 4 decimals: the item stays small)."""
    keys = {tt.key for tt in rules}
    return TargetTrackingState(peaks={k: list(v) for k, v in memory.peaks.items() if k in keys},
                               changes=list(memory.changes), running_seen=memory.running_seen,
                               loads={k: [(at, round(x, 4)) for at, x in v] for k, v in memory.loads.items()
                                      if k in keys},
                               scales={k: v for k, v in memory.scales.items() if k in keys})


def decide_target_tracking(
    *,
    rules: Sequence[TargetTracking],
    series: Sequence[Sequence[float | None]],
    scaling: Scaling,
    cooldowns: ScalingState,
    memory: TargetTrackingState,
    desired: int,
    running: int,
    now: datetime,
    cluster: str,
    service: str,
    trigger: str,
    scale_in_blocked: str | None = None,
    periods: Sequence[int] | None = None,
    stamps: Sequence[datetime | None] | None = None,
    forecasts: Sequence[Forecast | None] | None = None,
) -> tuple[Decision, ScalingState, TargetTrackingState]:
    """The reconciler's decision for one service: ``evaluate`` wrapped into a Decision and stored state."""
    verdict = evaluate(rules=rules, series=series, scaling=scaling, memory=memory_from_state(memory),
                       cooldowns=Cooldowns.of(cooldowns), desired=desired, running=running, now=now,
                       scale_in_blocked=scale_in_blocked, periods=periods, stamps=stamps, forecasts=forecasts)
    reason = f"{trigger}: {explain(verdict, rules)}"
    stored = memory_to_state(verdict.memory, rules)
    new_cooldowns = verdict.cooldowns.onto(cooldowns)
    if not verdict.acts:
        return Decision(outcome=verdict.outcome, reason=reason), new_cooldowns, stored
    action = SetDesiredCount(cluster=cluster, service=service, desired=verdict.desired, previous=desired, reason=reason)
    return Decision(outcome=verdict.outcome, reason=reason, actions=(action,)), new_cooldowns, stored
