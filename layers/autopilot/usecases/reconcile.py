"""ReconcilerFunction's use case, run every minute.

Alarms send no event while they stay in ALARM, but Application Auto Scaling repeats its actions
every minute; so must we. Each run: one DescribeAlarms call per 100 rule alarms, one GetMetricData
for the latest value of the alarms in ALARM, one DescribeServices per 10 services of a cluster, then
every rule whose alarm is still in ALARM goes through the same decision as the scaler (cooldowns
decide whether it acts). Desired counts that drifted outside [minTasks, maxTasks] are brought back.

Each service is decided and acted on on its own (``runner``: an isolating context), and each hook runs
on its own: one service or hook that fails is audited as ``failed:*`` and counted (ActionFailed), the
others still run, and the run then ends with an error (``PartialFailure``: the Errors alarm sees it).
Services whose mode is ``off`` are not looked at, and a paused or cooling-down service writes no audit
record each minute: only decisions that act, and failures, are recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopilot.decide.scaling import decide_bounds
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import AlarmChange, InvalidEvent, parse_reason_data
from autopilot.models.policy import ServicePolicy, effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.ports import AlarmView, Dependencies, ServiceView
from autopilot.usecases.observe import count_outcomes, counts_failures
from autopilot.usecases.rollbacks import reconcile_rollbacks
from autopilot.usecases.runner import Context, act, context, raise_failures, record
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


@counts_failures
def reconcile(deps: Dependencies, event_id: str = "reconcile", hooks: tuple[ReconcileHook, ...] = HOOKS,
              policies: list[ServicePolicy] | None = None) -> dict[str, Any]:
    """One run over ``policies`` (default: every stored service policy); raises PartialFailure at the end if
    a service or a hook failed (after the others were done)."""
    ctx = context(deps, source="reconciler", event_id=event_id, isolate=True)
    ctx.snapshots = {}  # the passes share one read of the states (runner.states)
    if policies is None:
        policies = [p for p in deps.store.list_policies() if isinstance(p, ServicePolicy)]
    entries: list[AuditEntry] = []
    for hook in (_scaling_hook, *hooks):
        entries += run_hook(ctx, deps, hook, policies)
    count_outcomes(entries, ctx.started)
    raise_failures(ctx)
    return {"status": "ok", "policies": len(policies),
            "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}


def run_hook(ctx: Context, deps: Dependencies, hook: ReconcileHook, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """Run one pass; a pass that fails as a whole (its batch reads, say) is audited, counted and reported at
    the end of the run like a failed service, and does not keep the other passes from running."""
    try:
        return hook(ctx, deps, policies)
    except Exception as exc:
        from autopilot.usecases.observe import count_failure

        name = getattr(hook, "__name__", type(hook).__name__)
        entry = record(ctx, target="-", trigger=f"reconcile: {name}", outcome="failed:hook",
                       reason=f"the {name} pass failed as a whole", error=f"{type(exc).__name__}: {exc}"[:500],
                       best_effort=True)
        count_failure(entry, exc)
        ctx.failed(entry, exc)
        return [entry]


def _scaling_hook(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    return reconcile_scaling(ctx, deps, [p for p in policies if p.spec.scaling is not None])


def reported(entry: AuditEntry) -> bool:
    """What a reconciler pass reports: decisions that acted, and failures (quiet skips are not)."""
    return bool(entry.actions) or entry.outcome.startswith("failed:")


def reconcile_scaling(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    # mode off (policy or global switch): nothing to decide, nothing to describe, no audit line each minute
    policies = [p for p in policies if effective_mode(ctx.global_mode, p.spec.mode) != "off"]
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
            if reported(entry):
                entries.append(entry)
            if entry.actions or entry.outcome.startswith("failed:"):
                acted = True
                view = None  # desired count changed (or unknown after a failure); a later rule re-reads it
        if not acted and view is not None and not scaling.minTasks <= view.desired_count <= scaling.maxTasks:
            entry = _repair_bounds(ctx, policy, view)
            if reported(entry):
                entries.append(entry)
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
               event_key=None, decide=decide, audit_skips=False)
