"""ReconcilerFunction's use case, run every minute.

Alarms send no event while they stay in ALARM, but Application Auto Scaling repeats its actions
every minute; so must we. Each run: one DescribeAlarms call per 100 rule alarms, one GetMetricData
for the latest value of the alarms in ALARM, one DescribeServices per 10 services of a cluster, then
every rule whose alarm is still in ALARM goes through the same decision as the scaler (cooldowns
decide whether it acts). Desired counts that drifted outside [minTasks, maxTasks] are brought back.

Places (issue 13): the policies are grouped by the account and region they name; each place is reconciled
with the ports acting there, on a thread of its own when there are several, so a member whose role cannot be
assumed, whose API throttles or whose region does not answer delays no other place's decisions. A place
that failed is logged, counted (``PlaceFailed``) and, once every other place is done, fails the invocation
(the ReconcilerFunction errors alarm); the next run tries it again.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from autopilot.decide.scaling import decide_bounds
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import AlarmChange, InvalidEvent, parse_reason_data
from autopilot.models.place import Place
from autopilot.models.policy import ServicePolicy
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import MetricUnit, logger, metrics
from autopilot.ports import AlarmView, Dependencies, ServiceView
from autopilot.usecases.observe import count_outcomes
from autopilot.usecases.rollbacks import reconcile_rollbacks
from autopilot.usecases.runner import Context, act, context
from autopilot.usecases.scale import apply_rule
from autopilot.usecases.services import describe_policies
from autopilot.usecases.spot_holds import restore_spot_holds
from autopilot.usecases.target_tracking import reconcile_target_tracking

ReconcileHook = Callable[[Context, Dependencies, list[ServicePolicy]], list[AuditEntry]]
"""A pass of the reconciler after the alarm rules: gets the run's context, the dependencies and every
service policy; returns the audit entries of what it decided (a quiet pass returns none)."""

HOOKS: tuple[ReconcileHook, ...] = (
    reconcile_rollbacks,  # rollouts: retry rollbacks the service did not follow
    restore_spot_holds,  # healing: end Spot fallback holds after holdSeconds
    reconcile_target_tracking,  # targetTracking rules: every rule, every minute (issue 7)
)


MAX_PLACES_IN_PARALLEL = 8


class PlacesFailed(RuntimeError):
    """Some places could not be reconciled (the others were); the invocation fails so the errors alarm fires."""


def reconcile(deps: Dependencies, event_id: str = "reconcile", hooks: tuple[ReconcileHook, ...] = HOOKS,
              ) -> dict[str, Any]:
    ctx = context(deps, source="reconciler", event_id=event_id)
    policies = [p for p in deps.store.list_policies() if isinstance(p, ServicePolicy)]
    groups: dict[Place | None, list[ServicePolicy]] = {}
    for policy in policies:
        groups.setdefault(policy.metadata.place, []).append(policy)
    if len(groups) <= 1:  # one place (a single-account deployment): as before places existed, no thread
        place = next(iter(groups), None)
        entries = reconcile_place(context_at(ctx, deps, place), deps.at(place), groups.get(place, []), hooks)
        failed: dict[str, BaseException] = {}
    else:
        entries, failed = _in_parallel(ctx, deps, groups, hooks)
    count_outcomes(entries, ctx.started)
    result = {"status": "ok", "policies": len(policies),
              "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}
    if failed:
        first = next(iter(failed.values()))
        raise PlacesFailed(f"{len(failed)} of {len(groups)} places could not be reconciled "
                           f"({', '.join(failed)}); the others were: {type(first).__name__}: {first}"[:1000])
    return result


def context_at(ctx: Context, deps: Dependencies, place: Place | None) -> Context:
    """The run's context for one place: its own executor (acting there), the run's time and event id."""
    placed = context(deps.at(place), source=ctx.source, event_id=ctx.event_id)
    placed.now, placed.started = ctx.now, ctx.started
    placed.place = str(place) if place is not None else None
    return placed


def reconcile_place(ctx: Context, deps: Dependencies, policies: list[ServicePolicy],
                    hooks: tuple[ReconcileHook, ...] = HOOKS) -> list[AuditEntry]:
    """Everything the reconciler does for the policies of one place, with ports acting there."""
    entries = reconcile_scaling(ctx, deps, [p for p in policies if p.spec.scaling is not None])
    for hook in hooks:
        entries += hook(ctx, deps, policies)
    return entries


def _in_parallel(ctx: Context, deps: Dependencies, groups: dict[Place | None, list[ServicePolicy]],
                 hooks: tuple[ReconcileHook, ...]) -> tuple[list[AuditEntry], dict[str, BaseException]]:
    def run(place: Place | None) -> list[AuditEntry]:
        return reconcile_place(context_at(ctx, deps, place), deps.at(place), groups[place], hooks)

    entries: list[AuditEntry] = []
    failed: dict[str, BaseException] = {}
    ordered = sorted(groups, key=lambda p: (p is not None, p or Place("", "")))  # the hub's own first
    with ThreadPoolExecutor(max_workers=min(MAX_PLACES_IN_PARALLEL, len(ordered)),
                            thread_name_prefix="reconcile") as pool:
        futures = {place: pool.submit(run, place) for place in ordered}
        for place, future in futures.items():
            label = "home" if place is None else str(place)
            try:
                entries += future.result()
            except Exception as exc:  # this place only: the others' decisions stand
                logger.exception("a place could not be reconciled", extra={"place": label})
                metrics.add_metric(name="PlaceFailed", unit=MetricUnit.Count, value=1)
                failed[label] = exc
    return entries, failed


def reconcile_scaling(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    if not policies:
        return []
    names = sorted({r.alarm for p in policies for r in (p.spec.scaling.rules if p.spec.scaling else [])
                    if r.alarm is not None})  # targetTracking rules have no alarm (usecases.target_tracking)
    alarms = deps.alarms.describe_alarms(names) if names else {}
    in_alarm = [a for a in alarms.values() if a.state == "ALARM"]
    latest = deps.alarms.latest_values(in_alarm) if in_alarm else {}
    views = describe_policies(deps.ecs, policies)
    entries: list[AuditEntry] = []
    for policy in policies:
        scaling = policy.spec.scaling
        assert scaling is not None
        view = views.get((policy.metadata.cluster, policy.metadata.service))
        if view is None:
            continue
        acted = False
        for rule in scaling.rules:
            if rule.alarm is None:
                continue  # a targetTracking rule: evaluated by its own hook
            alarm = alarms.get(rule.alarm)
            if alarm is None or alarm.state != "ALARM":
                continue
            change = _still_in_alarm(alarm, latest.get(alarm.name), ctx)
            if change is None:
                continue
            entry = apply_rule(ctx, policy, rule, change, deps.ecs, f"alarm {alarm.name} still in ALARM",
                               event_key=None, view=view, audit_skips=False)
            if entry.actions:
                entries.append(entry)
                acted = True
                view = None  # desired count changed; a later rule re-reads it
        if not acted and view is not None and not scaling.minTasks <= view.desired_count <= scaling.maxTasks:
            entries.append(_repair_bounds(ctx, policy, view))
    return entries


def _still_in_alarm(alarm: AlarmView, latest: float | None, ctx: Context) -> AlarmChange | None:
    try:
        datapoint, threshold = parse_reason_data(alarm.state_reason_data)
    except InvalidEvent:
        datapoint, threshold = None, None
    return AlarmChange(
        alarm_name=alarm.name, state="ALARM", previous_state="ALARM", timestamp=alarm.state_updated or "",
        event_id=ctx.event_id, datapoint=latest if latest is not None else datapoint,
        threshold=alarm.threshold if alarm.threshold is not None else threshold, form="reconciler",
    )


def _repair_bounds(ctx: Context, policy: ServicePolicy, view: ServiceView) -> AuditEntry:
    scaling = policy.spec.scaling
    assert scaling is not None

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, state = decide_bounds(scaling=scaling, state=snap.state.scaling, capacity=view.desired_count,
                                        cluster=view.cluster, service=view.service, now=ctx.now, trigger="reconcile")
        return decision, snap.state.model_copy(update={"scaling": state})

    return act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: desired count out of bounds",
               event_key=None, decide=decide)
