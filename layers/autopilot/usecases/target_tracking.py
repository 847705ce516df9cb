"""The reconciler's targetTracking hook: every minute, every targetTracking rule, like HPA's control loop.

One run: one DescribeAlarms per 100 alarms named as a rule's metric, ONE GetMetricData (per 500
queries, paginated) for the recent datapoints of every rule's metric, one BatchGetItem of the
services' states, one DescribeServices per 10 services of a cluster; then each service with
targetTracking rules goes through the claim-then-act path with ``decide.target_tracking``.

Quiet by design: "nothing to do" each minute is not audited (the state still records the
recommendation, which the stabilization window needs); every change, and every failure, is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from autopilot.decide.metric_math import metric_stat_query, returning_one
from autopilot.decide.target_tracking import Forecast, align, datapoints_needed, decide_target_tracking, newest_stamp
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.policy import MetricSpec, ServicePolicy, TargetTracking, effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import AlarmView, Dependencies, ServiceView
from autopilot.usecases.runner import Context, act, states
from autopilot.usecases.services import describe_or_record

TRIGGER = "reconcile: targetTracking"
STALE_PERIODS = 3  # a newest datapoint older than this many periods counts as missing data


class MetricSeriesPort(Protocol):
    def metric_series(self, queries: list[dict[str, Any]], start: datetime,
                      end: datetime) -> dict[str, list[tuple[datetime, float]]]: ...


@dataclass(frozen=True)
class Tracked:
    """One rule's place in the run's single GetMetricData request."""

    query_id: str | None  # None: the metric could not be resolved (unknown alarm): missing data
    period: int
    count: int  # datapoints the decision needs


def metric_queries(rule_id: str, tt: TargetTracking,
                   alarms: dict[str, AlarmView]) -> tuple[list[dict[str, Any]], Tracked]:
    """GetMetricData queries for one rule, their Ids prefixed with ``rule_id`` (unique within the request)."""
    count = datapoints_needed(tt)
    if isinstance(tt.metric, MetricSpec):
        period = tt.metric.period
        return [metric_stat_query(rule_id, tt.metric, period)], Tracked(rule_id, period, count)
    alarm = alarms.get(tt.metric)
    found = returning_one(alarm.metric_query, f"{rule_id}_") if alarm else None
    if found is None:
        return [], Tracked(None, 60, count)
    queries, returned_id = found
    periods = [int(q["MetricStat"].get("Period", 60)) if "MetricStat" in q else int(q["Period"])
               for q in queries if "MetricStat" in q or q.get("Period")]
    return queries, Tracked(returned_id, max(periods, default=60), count)


def deployment_in_progress(view: ServiceView) -> str | None:
    """Why scale-in must wait: AWS suspends it while an ECS deployment rolls (tasks of two revisions)."""
    live = [d for d in view.deployments if d.status in ("PRIMARY", "ACTIVE")]
    if len(live) > 1 or any(d.rollout_state == "IN_PROGRESS" for d in live):
        return "an ECS deployment is in progress: scale-in waits until it completes"
    return None


def reconcile_target_tracking(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """Evaluate every targetTracking rule of every policy (the reconciler's HOOKS signature)."""
    tracked = [(p, [r.targetTracking for r in p.spec.scaling.rules if r.targetTracking is not None])
               for p in policies if p.spec.scaling is not None
               and effective_mode(ctx.global_mode, p.spec.mode) != "off"]  # "off": no decision, no audit each minute
    tracked = [(p, tts) for p, tts in tracked if tts]
    if not tracked:
        return []
    snaps = states(ctx, [p.key for p, _ in tracked])
    tracked = [(p, tts) for p, tts in tracked if not snaps[p.key].state.paused]  # paused: quiet, see `autopilot get`
    if not tracked:
        return []
    names = sorted({tt.metric for _, tts in tracked for tt in tts if isinstance(tt.metric, str)})
    predictive = any(tt.predictive is not None for _, tts in tracked for tt in tts)
    if predictive:  # issue 12: imported only when a policy uses the lever (cold start)
        from autopilot.usecases.predictive import forecasts_for, load_metric_names

        names = sorted(set(names) | set(load_metric_names(tracked)))
    alarms = deps.alarms.describe_alarms(names) if names else {}
    forecasts = forecasts_for(ctx, deps, tracked, alarms) if predictive else {}
    queries: list[dict[str, Any]] = []
    plan: dict[tuple[str, str], Tracked] = {}
    for p_index, (policy, tts) in enumerate(tracked):
        for r_index, tt in enumerate(tts):
            rule_queries, where = metric_queries(f"p{p_index}r{r_index}", tt, alarms)
            if where.query_id is None:
                logger.warning("targetTracking metric not found", extra={"policy": policy.key, "metric": tt.key})
            queries += rule_queries
            plan[(policy.key, tt.key)] = where
    lookback = max((w.period * (w.count + STALE_PERIODS + 2) for w in plan.values()), default=600)
    series: dict[str, list[tuple[datetime, float]]] = {}
    if queries:
        series = cast(MetricSeriesPort, deps.alarms).metric_series(
            queries, ctx.now - timedelta(seconds=lookback), ctx.now)
    views, _unread = describe_or_record(ctx, deps.ecs, [p for p, _ in tracked], "reconcile: targetTracking")
    entries: list[AuditEntry] = []
    for policy, tts in tracked:
        datapoints = []
        periods = []
        stamps = []
        for tt in tts:
            where = plan[(policy.key, tt.key)]
            points = series.get(where.query_id, []) if where.query_id else []
            datapoints.append(align(points, ctx.now, where.period, where.count, STALE_PERIODS))
            periods.append(where.period)
            stamps.append(newest_stamp(points, ctx.now, where.period, STALE_PERIODS))
        rule_forecasts: list[Forecast | None] = [forecasts.get((policy.key, tt.key)) for tt in tts]
        view = views.get((policy.metadata.cluster, policy.metadata.service))
        if view is None:
            continue  # not found or INACTIVE: nothing to scale (the scaling reconciler reports drift)
        # a failure is isolated, audited (failed:*) and counted by the runner: the other services go on
        entry = _apply(ctx, deps, policy, tts, datapoints, view, periods, stamps, rule_forecasts)
        if entry.actions or entry.outcome.startswith("failed:"):
            entries.append(entry)
    return entries


def _apply(ctx: Context, deps: Dependencies, policy: ServicePolicy, tts: list[TargetTracking],
           datapoints: list[list[float | None]], first_view: ServiceView,
           periods: list[int] | None = None, stamps: list[datetime | None] | None = None,
           forecasts: list[Forecast | None] | None = None) -> AuditEntry:
    scaling = policy.spec.scaling
    assert scaling is not None
    cluster, service = policy.metadata.cluster, policy.metadata.service
    known: ServiceView | None = first_view

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        nonlocal known
        view = known if known is not None else deps.ecs.describe_services(cluster, [service]).get(service)
        known = None  # a retry after a concurrent update must see a fresh desired count
        if view is None:
            return Decision(outcome="skipped:service-missing",
                            reason=f"{TRIGGER}: service {cluster}/{service} was not found (or is INACTIVE)"), snap.state
        decision, cooldowns, memory = decide_target_tracking(
            rules=tts, series=datapoints, scaling=scaling, cooldowns=snap.state.scaling,
            memory=snap.state.target_tracking, desired=view.desired_count, running=view.running_count,
            now=ctx.now, cluster=cluster, service=service, trigger=TRIGGER,
            scale_in_blocked=deployment_in_progress(view), periods=periods, stamps=stamps, forecasts=forecasts)
        return decision, snap.state.model_copy(update={"scaling": cooldowns, "target_tracking": memory})

    entry = act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger=TRIGGER, event_key=None,
                decide=decide, audit_skips=False)
    if entry.actions:
        logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason})
    return entry
