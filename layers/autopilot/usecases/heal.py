"""HealerFunction's use case: a task stopped (or a service could not place one); heal what can be healed.

One event, one path: parse -> classify -> load the policy -> decide (pure, asking for AWS facts only
when a decision needs them) -> claim the new state (conditional write) -> execute -> audit.

- Service tasks: crash loops, image-pull rollbacks, OOM right-sizing, Spot fallback
  (``decide.healing``). Failures are counted per task ARN, so duplicates and redeliveries of one
  stop count once; ``task ARN + detail.version`` is the event key the runner remembers.
- Standalone tasks of a family with a TaskPolicy: restart lineages (``decide.restarts``).
- Everything else (unmanaged clusters, services or families without a policy, normal stops, unknown
  stop codes) is audited and touches nothing.

There is no Powertools idempotency layer here on purpose: every decision is deduplicated in the
service's own state (per task ARN, per revision, per lineage), which also holds for two different
deliveries of one stop, and saves two DynamoDB writes per event in a storm.

The reconciler ends Spot fallback holds whose ``holdSeconds`` have passed (``usecases.spot_holds``), without
loading this module: it parses no task event.
"""

from __future__ import annotations

from typing import Any

from autopilot.decide.classify import Classification, StopKind, classify
from autopilot.decide.healing import (
    Facts,
    Need,
    decide_service_action,
    decide_service_stop,
    is_spot_placement_failure,
)
from autopilot.decide.restarts import decide_task_stop, lineage_of
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.place import Place
from autopilot.models.policy import ServicePolicy, TaskPolicy, family_key, service_key
from autopilot.models.state import ServiceState, Snapshot
from autopilot.models.task_events import ServiceAction, TaskStop, parse_healer_event
from autopilot.observability import logger
from autopilot.ports import Dependencies
from autopilot.usecases.facts import fetcher, resolve
from autopilot.usecases.observe import count_outcomes, counts_failures
from autopilot.usecases.runner import Context, Rejected, act, open_event, record


@counts_failures
def handle_healer_event(event: Any, deps: Dependencies) -> dict[str, Any]:
    """Parse, then heal; invalid events are rejected (logged, counted, audited) without any AWS mutation."""
    opened = open_event(deps, event, source="healer", what="healer event", parse=parse_healer_event,
                        trigger=_trigger)
    if isinstance(opened, Rejected):
        return opened.response
    ctx, parsed, place, placed = opened
    managed = deps.settings.managed_clusters  # the hub's own clusters (a member's stack names its own)
    if place is None and managed and parsed.cluster not in managed:
        entries = [record(ctx, target="-", trigger=_trigger(parsed), outcome="ignored:unmanaged-cluster",
                          reason=f"cluster {parsed.cluster!r} is not one of the managed clusters")]
    elif isinstance(parsed, TaskStop):
        entries = heal_task_stop(ctx, placed, parsed, place)
    else:
        entries = heal_service_action(ctx, placed, parsed, place)
    count_outcomes(entries, ctx.started)
    for entry in entries:
        logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason[:300]})
    return {"status": "ok", "event": ctx.event_id,
            "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}


def _trigger(parsed: TaskStop | ServiceAction, cls: Classification | None = None) -> str:
    if isinstance(parsed, ServiceAction):
        return f"{parsed.event_name} for {parsed.cluster}/{parsed.service}"
    what = f": {cls.kind.value}" if cls is not None else ""
    return f"task {parsed.task_id} ({parsed.family}:{parsed.revision}) {parsed.last_status.lower()}{what}"


def heal_task_stop(ctx: Context, deps: Dependencies, task: TaskStop, place: Place | None = None) -> list[AuditEntry]:
    if task.last_status != "STOPPED":
        return [record(ctx, target="-", trigger=_trigger(task), outcome="ignored:not-stopped",
                       reason=f"lastStatus is {task.last_status}; only STOPPED tasks are healed")]
    cls = classify(task)
    trigger = _trigger(task, cls)
    if cls.kind == StopKind.UNKNOWN:
        logger.warning("unknown stop", extra={"task": task.task_arn, "stopCode": task.stop_code,
                                              "stoppedReason": (task.stopped_reason or "")[:300]})
    if task.service is not None:
        return [heal_service_task(ctx, deps, task, cls, trigger, place)]
    if task.standalone:
        return [heal_standalone_task(ctx, task, cls, trigger, place)]
    return [record(ctx, target="-", trigger=trigger, outcome="ignored:no-service-name",
                   reason=f"task {task.task_id} was started by a service (startedBy {task.started_by}) but its "
                          f"group {task.group!r} names none")]


def heal_service_task(ctx: Context, deps: Dependencies, task: TaskStop, cls: Classification,
                      trigger: str, place: Place | None = None) -> AuditEntry:
    assert task.service is not None
    key = service_key(task.cluster, task.service, place)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, ServicePolicy):
        return record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                      reason=f"no ServicePolicy for {task.cluster}/{task.service}; {cls.explanation}")
    if not cls.failure and cls.kind != StopKind.SPOT:
        return record(ctx, target=key, trigger=trigger, outcome=f"ignored:{cls.kind.value}",
                      reason=f"task {task.task_id}: {cls.explanation}")
    fetch = fetcher(deps, task.cluster, task.service, task.task_definition_arn)

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, state = resolve(lambda facts: decide_service_stop(
            task=task, cls=cls, policy=policy, state=snap.state, facts=facts, now=ctx.now), fetch)
        return decision, _remembered(state, snap.state, task.event_key)

    return act(ctx, key=key, policy_mode=policy.spec.mode, trigger=trigger, event_key=task.event_key, decide=decide)


def heal_standalone_task(ctx: Context, task: TaskStop, cls: Classification, trigger: str,
                         place: Place | None = None) -> AuditEntry:
    key = family_key(task.cluster, task.family, place)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, TaskPolicy):
        return record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                      reason=f"no TaskPolicy for {task.cluster}/{task.family}; {cls.explanation}")
    if cls.kind == StopKind.NORMAL and lineage_of(task) is None:
        return record(ctx, target=key, trigger=trigger, outcome="ignored:normal",
                      reason=f"task {task.task_id}: {cls.explanation}")

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, restarts = decide_task_stop(task=task, cls=cls, policy=policy, state=snap.state.restarts,
                                              now=ctx.now)
        return decision, _remembered(snap.state.model_copy(update={"restarts": restarts}), snap.state, task.event_key)

    return act(ctx, key=key, policy_mode=policy.spec.mode, trigger=trigger, event_key=task.event_key, decide=decide)


def heal_service_action(ctx: Context, deps: Dependencies, action: ServiceAction,
                        place: Place | None = None) -> list[AuditEntry]:
    trigger = _trigger(action)
    key = service_key(action.cluster, action.service, place)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, ServicePolicy):
        return [record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                       reason=f"no ServicePolicy for {action.cluster}/{action.service}")]
    if not is_spot_placement_failure(action):  # nothing to count: no state to load
        out = decide_service_action(action=action, policy=policy, state=ServiceState(), facts=Facts(), now=ctx.now)
        assert not isinstance(out, Need)  # only a Spot placement failure asks for facts
        return [record(ctx, target=key, trigger=trigger, outcome=out[0].outcome, reason=out[0].reason)]
    fetch = fetcher(deps, action.cluster, action.service, None)

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, state = resolve(lambda facts: decide_service_action(
            action=action, policy=policy, state=snap.state, facts=facts, now=ctx.now), fetch)
        return decision, _remembered(state, snap.state, action.event_key)

    return [act(ctx, key=key, policy_mode=policy.spec.mode, trigger=trigger, event_key=action.event_key,
                decide=decide)]


def _remembered(state: ServiceState, before: ServiceState, event_key: str) -> ServiceState:
    """Remember the event only when it changed the state: a redelivery then stops at the runner's duplicate
    check. An event that changed nothing (already counted, revision already bad) is cheaper to decide again
    than to remember: no state write at all, only its audit line."""
    return state.remember(event_key) if state != before else state
