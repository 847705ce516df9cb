"""ScalerFunction's use case: an alarm changed state; apply every rule of every policy naming it."""

from __future__ import annotations

from typing import Any

from autopilot.decide.scaling import cooldown_precheck, decide_scaling
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import AlarmChange, parse_alarm_event
from autopilot.models.place import Place
from autopilot.models.policy import ScalingRule, ServicePolicy
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import Dependencies, EcsPort, ServiceView
from autopilot.usecases.observe import count_outcomes, counts_failures
from autopilot.usecases.runner import Context, Rejected, act, open_event, raise_failures, record


@counts_failures
def handle_alarm_event(event: Any, deps: Dependencies) -> dict[str, Any]:
    """Parse, then act; invalid events are rejected (logged, counted, audited) without any AWS mutation."""
    opened = open_event(deps, event, source="scaler", what="alarm event", parse=parse_alarm_event,
                        trigger=_trigger)
    if isinstance(opened, Rejected):
        return opened.response
    ctx, change = opened.ctx, opened.parsed
    ctx.isolate = True  # one alarm may name several services: each is decided and acted on on its own
    entries = apply_alarm_change(ctx, change, opened.deps.ecs, opened.place)
    count_outcomes(entries, ctx.started)
    raise_failures(ctx)  # after the others were done; the retry finds their event applied
    return {"status": "ok", "alarm": change.alarm_name, "state": change.state,
            "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}


def _trigger(change: AlarmChange) -> str:
    return f"alarm {change.alarm_name} -> {change.state}"


def apply_alarm_change(ctx: Context, change: AlarmChange, ecs: EcsPort, place: Place | None = None) -> list[AuditEntry]:
    """Apply every policy of ``place`` (None: the hub's own) naming the alarm: an alarm is only ever its own
    account's and region's, so a policy elsewhere naming an alarm of the same name is not concerned."""
    trigger = _trigger(change)
    policies = [p for p in ctx.store.policies_for_alarm(change.alarm_name) if p.metadata.place == place]
    if not policies:
        where = f" in {place}" if place is not None else ""
        return [record(ctx, target="-", trigger=trigger, outcome="ignored:unknown-alarm",
                       reason=f"no policy names alarm {change.alarm_name!r}{where}")]
    if change.state != "ALARM":
        return [record(ctx, target=p.key, trigger=trigger, outcome=f"ignored:{change.state.lower()}",
                       reason=f"{change.state} never triggers a rule (only a transition to ALARM does)")
                for p in policies]
    entries: list[AuditEntry] = []
    for policy in policies:
        rule = _scaling_rule(policy, change.alarm_name)
        rollout_entry = None
        if rule is not None:
            entries.append(apply_rule(ctx, policy, rule, change, ecs, trigger, change.event_key))
            continue
        if _is_rollout_alarm(policy, change.alarm_name):
            # Imported here: most alarms are scaling alarms, which do not need the rollout rules (keeping
            # them out of the scaler's import path saves cold-start time).
            from autopilot.usecases.alarm_rules import apply_alarm_rule

            rollout_entry = apply_alarm_rule(ctx, policy, change, ecs, trigger)
        entries.append(rollout_entry or record(
            ctx, target=policy.key, trigger=trigger, outcome="ignored:no-rule",
            reason=f"alarm {change.alarm_name!r} has no scaling rule in this policy"))
    return entries


def _is_rollout_alarm(policy: ServicePolicy, alarm: str) -> bool:
    rollout = policy.spec.rollout
    return rollout is not None and (alarm in rollout.rollbackAlarms or alarm in rollout.recycleAlarms)


def _scaling_rule(policy: ServicePolicy, alarm: str) -> ScalingRule | None:
    rules = policy.spec.scaling.rules if policy.spec.scaling else []
    return next((r for r in rules if r.alarm == alarm), None)


def apply_rule(ctx: Context, policy: ServicePolicy, rule: ScalingRule, change: AlarmChange, ecs: EcsPort,
               trigger: str, event_key: str | None, view: ServiceView | None = None,
               audit_skips: bool = True) -> AuditEntry:
    """Run one rule for one service through the claim-then-act path."""
    assert policy.spec.scaling is not None
    scaling = policy.spec.scaling
    cluster, service = policy.metadata.cluster, policy.metadata.service
    known_view = view

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        nonlocal known_view
        skip = cooldown_precheck(rule=rule, scaling=scaling, state=snap.state.scaling, datapoint=change.datapoint,
                                 threshold=change.threshold, now=ctx.now, trigger=trigger)
        if skip is not None:
            return skip, snap.state
        if known_view is None:
            known_view = ecs.describe_services(cluster, [service]).get(service)
        if known_view is None:
            return Decision(outcome="skipped:service-missing",
                            reason=f"{trigger}: service {cluster}/{service} was not found (or is INACTIVE)"), snap.state
        current = known_view
        known_view = None  # a retry after a concurrent update must see a fresh desired count
        decision, scaling_state = decide_scaling(
            rule=rule, scaling=scaling, state=snap.state.scaling, capacity=current.desired_count,
            datapoint=change.datapoint, threshold=change.threshold, cluster=cluster, service=service,
            now=ctx.now, trigger=trigger)
        return decision, snap.state.model_copy(update={"scaling": scaling_state})

    entry = act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger=trigger, event_key=event_key,
                decide=decide, audit_skips=audit_skips)
    logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason})
    return entry
