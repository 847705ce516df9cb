"""targetTracking's predictive lever in the reconciler: load, refresh and hand over demand forecasts.

Imported (with ``decide.forecast``) only when some policy has a ``predictive`` block: a reconciler
without one pays nothing at cold start. Per run:

- one BatchGetItem per 100 predictive rules for their stored forecasts (``store.load_forecasts``);
- for the rules whose forecast is missing or older than their ``refreshSeconds`` (the stalest first, at
  most ``MAX_REFRESHES`` a run), ONE GetMetricData call for their ``loadMetric`` histories (5-minute
  points over ``historyDays``: 4,032 points for 14 days, so 24 histories fit one 100,800-datapoint
  answer), a fit each (a few ms, ``decide.forecast.fit``) and a PutItem each (about 2 KB);
- a failure to refresh is logged and counted, never blocks scaling: the rule uses its stored forecast
  (its quality gate drops it once it is older than two refresh periods) or scales reactively.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol, cast

from autopilot.decide.forecast import SLOT_SECONDS, SeasonalForecast, fit, to_slots
from autopilot.decide.metric_math import metric_stat_query, returning_one
from autopilot.models.policy import MetricSpec, ServicePolicy, TargetTracking
from autopilot.observability import MetricUnit, logger, metrics
from autopilot.ports import AlarmView, Dependencies
from autopilot.usecases.runner import Context

MAX_REFRESHES = 24  # refreshes per run: their histories fit one GetMetricData answer (100,800 datapoints)


class MetricSeriesPort(Protocol):
    def metric_series(self, queries: list[dict[str, Any]], start: Any, end: Any) -> dict[str, list[Any]]: ...


def history_query(query_id: str, tt: TargetTracking, alarms: dict[str, AlarmView]) -> list[dict[str, Any]]:
    """GetMetricData queries for one rule's load metric at 5-minute periods ([] when it cannot be resolved)."""
    assert tt.predictive is not None
    metric = tt.predictive.loadMetric
    if isinstance(metric, MetricSpec):
        return [metric_stat_query(query_id, metric, SLOT_SECONDS)]
    alarm = alarms.get(metric)
    found = returning_one(alarm.metric_query, f"{query_id}_") if alarm else None
    if found is None:
        return []
    queries = found[0]
    for query in queries:
        if "MetricStat" in query:
            query["MetricStat"] = dict(query["MetricStat"], Period=SLOT_SECONDS)
        if "Expression" in query:
            query["Period"] = SLOT_SECONDS
    # the returned query's Id is what the answer is keyed by
    queries.sort(key=lambda q: not q["ReturnData"])
    return queries


def load_metric_names(policies: Sequence[tuple[ServicePolicy, Sequence[TargetTracking]]]) -> list[str]:
    """Alarm names used as predictive load metrics (DescribeAlarms resolves them with the rules' own)."""
    return sorted({tt.predictive.loadMetric for _, tts in policies for tt in tts
                   if tt.predictive is not None and isinstance(tt.predictive.loadMetric, str)})


def forecasts_for(ctx: Context, deps: Dependencies, tracked: Sequence[tuple[ServicePolicy, Sequence[TargetTracking]]],
                  alarms: dict[str, AlarmView]) -> dict[tuple[str, str], SeasonalForecast]:
    """The usable-or-not forecast of every predictive rule, keyed by (policy key, rule key), refreshed where due.

    Each forecast carries its rule's quality gate (``maxError``, age of two refresh periods); the
    decision asks it whether it may be used.
    """
    wanted = [(policy, tt) for policy, tts in tracked for tt in tts if tt.predictive is not None]
    if not wanted:
        return {}
    rules = {(policy.key, tt.key): tt for policy, tt in wanted}
    stored: dict[tuple[str, str], SeasonalForecast] = {}
    for key, item in ctx.store.load_forecasts(rules).items():
        try:
            stored[key] = SeasonalForecast.from_item(item)
        except (KeyError, TypeError, ValueError):
            logger.warning("unreadable stored forecast: refitting", extra={"policy": key[0], "rule": key[1]})
    due: list[tuple[float, tuple[str, str], TargetTracking]] = []  # (-age in seconds, key, rule): stalest first
    for key, tt in rules.items():
        assert tt.predictive is not None
        found = stored.get(key)
        age = float("inf") if found is None else (ctx.now - found.fitted_at).total_seconds()
        if age >= tt.predictive.refreshSeconds:
            due.append((-age, key, tt))
    due.sort(key=lambda d: (d[0], d[1]))
    if due:
        stored.update(_refresh(ctx, deps, [(key, tt) for _, key, tt in due[:MAX_REFRESHES]], alarms))
    out = {}
    for key, tt in rules.items():
        assert tt.predictive is not None
        if key in stored:
            out[key] = stored[key].gated(tt.predictive.maxError, tt.predictive.refreshSeconds)
    return out


def _refresh(ctx: Context, deps: Dependencies, due: Sequence[tuple[tuple[str, str], TargetTracking]],
             alarms: dict[str, AlarmView]) -> dict[tuple[str, str], SeasonalForecast]:
    queries: list[dict[str, Any]] = []
    ids: dict[str, tuple[tuple[str, str], TargetTracking]] = {}
    for index, (key, tt) in enumerate(due):
        rule_queries = history_query(f"h{index}", tt, alarms)
        if not rule_queries:
            logger.warning("predictive loadMetric not found", extra={"policy": key[0], "rule": key[1]})
            continue
        queries += rule_queries
        ids[rule_queries[0]["Id"]] = (key, tt)
    if not queries:
        return {}
    days = max(tt.predictive.historyDays for _, tt in due if tt.predictive is not None)
    try:
        series = cast(MetricSeriesPort, deps.alarms).metric_series(queries, ctx.now - timedelta(days=days), ctx.now)
    except Exception:  # a failed refresh must never stall scaling: the stored forecasts (or none) are used
        logger.exception("forecast refresh failed: GetMetricData")
        metrics.add_metric(name="ForecastRefreshFailed", unit=MetricUnit.Count, value=len(ids))
        return {}
    fitted: dict[tuple[str, str], SeasonalForecast] = {}
    for query_id, (key, tt) in ids.items():
        assert tt.predictive is not None
        started = time.perf_counter()
        model = fit(to_slots(series.get(query_id, [])), ctx.now, tt.predictive.historyDays)
        seconds = time.perf_counter() - started
        if model is None:
            logger.info("not enough history to forecast yet", extra={"policy": key[0], "rule": key[1]})
            continue
        try:
            ctx.store.save_forecast(key[0], key[1], model.to_item(), ctx.now)
        except Exception:  # the fit is still used this run; the next run tries to store it again
            logger.exception("could not store a forecast", extra={"policy": key[0], "rule": key[1]})
            metrics.add_metric(name="ForecastRefreshFailed", unit=MetricUnit.Count, value=1)
        logger.info("forecast refreshed", extra={"policy": key[0], "rule": key[1], "error": model.error,
                                                  "naive_error": model.naive_error, "fit_ms": round(1000 * seconds, 1)})
        fitted[key] = model
    return fitted
