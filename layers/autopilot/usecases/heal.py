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

The reconciler's hook ``restore_spot_holds`` (registered in ``usecases.reconcile.HOOKS``) ends Spot
fallback holds whose ``holdSeconds`` have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autopilot.decide.classify import Classification, StopKind, classify
from autopilot.decide.healing import (
    Facts,
    Need,
    Outcome,
    decide_service_action,
    decide_service_stop,
    decide_spot_restore,
    is_spot_placement_failure,
    spot_hold_expired,
)
from autopilot.decide.restarts import decide_task_stop, lineage_of
from autopilot.models.actions import Decision
from autopilot.models.events import InvalidEvent
from autopilot.models.policy import ServicePolicy, TaskPolicy, effective_mode, family_key, service_key
from autopilot.models.state import ServiceState, Snapshot
from autopilot.models.task_events import ServiceAction, TaskStop, parse_healer_event
from autopilot.observability import logger
from autopilot.store.table import AuditEntry
from autopilot.usecases.observe import count_invalid, count_outcomes
from autopilot.usecases.runner import Context, act, record
from autopilot.wiring import Dependencies

MAX_FACT_ROUNDS = 3  # a decision asks for at most: service, then task definition


def handle_healer_event(event: Any, deps: Dependencies) -> dict[str, Any]:
    """Parse, then heal; invalid events are rejected (logged, counted, audited) without any AWS mutation."""
    started = time.perf_counter()
    ctx = Context(store=deps.store, executor=deps.executor, now=deps.clock(), global_mode=deps.settings.mode,
                  source="healer", event_id=str(event.get("id", "-")) if isinstance(event, dict) else "-")
    try:
        parsed = parse_healer_event(event)
    except InvalidEvent as exc:
        count_invalid(str(exc))
        record(ctx, target="-", trigger="invalid healer event", outcome="rejected:invalid-event", reason=str(exc))
        return {"status": "rejected", "reason": str(exc)}
    managed = deps.settings.managed_clusters
    if managed and parsed.cluster not in managed:
        entries = [record(ctx, target="-", trigger=_trigger(parsed), outcome="ignored:unmanaged-cluster",
                          reason=f"cluster {parsed.cluster!r} is not one of the managed clusters")]
    elif isinstance(parsed, TaskStop):
        entries = heal_task_stop(ctx, deps, parsed)
    else:
        entries = heal_service_action(ctx, deps, parsed)
    count_outcomes(entries, started)
    for entry in entries:
        logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason[:300]})
    return {"status": "ok", "event": ctx.event_id,
            "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}


def _trigger(parsed: TaskStop | ServiceAction, cls: Classification | None = None) -> str:
    if isinstance(parsed, ServiceAction):
        return f"{parsed.event_name} for {parsed.cluster}/{parsed.service}"
    what = f": {cls.kind.value}" if cls is not None else ""
    return f"task {parsed.task_id} ({parsed.family}:{parsed.revision}) {parsed.last_status.lower()}{what}"


def heal_task_stop(ctx: Context, deps: Dependencies, task: TaskStop) -> list[AuditEntry]:
    if task.last_status != "STOPPED":
        return [record(ctx, target="-", trigger=_trigger(task), outcome="ignored:not-stopped",
                       reason=f"lastStatus is {task.last_status}; only STOPPED tasks are healed")]
    cls = classify(task)
    trigger = _trigger(task, cls)
    if cls.kind == StopKind.UNKNOWN:
        logger.warning("unknown stop", extra={"task": task.task_arn, "stopCode": task.stop_code,
                                              "stoppedReason": (task.stopped_reason or "")[:300]})
    if task.service is not None:
        return [heal_service_task(ctx, deps, task, cls, trigger)]
    if task.standalone:
        return [heal_standalone_task(ctx, task, cls, trigger)]
    return [record(ctx, target="-", trigger=trigger, outcome="ignored:no-service-name",
                   reason=f"task {task.task_id} was started by a service (startedBy {task.started_by}) but its "
                          f"group {task.group!r} names none")]


def heal_service_task(ctx: Context, deps: Dependencies, task: TaskStop, cls: Classification,
                      trigger: str) -> AuditEntry:
    assert task.service is not None
    key = service_key(task.cluster, task.service)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, ServicePolicy):
        return record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                      reason=f"no ServicePolicy for {task.cluster}/{task.service}; {cls.explanation}")
    if not cls.failure and cls.kind != StopKind.SPOT:
        return record(ctx, target=key, trigger=trigger, outcome=f"ignored:{cls.kind.value}",
                      reason=f"task {task.task_id}: {cls.explanation}")
    fetch = _fetcher(deps, task.cluster, task.service, task.task_definition_arn)

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, state = resolve(lambda facts: decide_service_stop(
            task=task, cls=cls, policy=policy, state=snap.state, facts=facts, now=ctx.now), fetch)
        return decision, _remembered(state, snap.state, task.event_key)

    return act(ctx, key=key, policy_mode=policy.spec.mode, trigger=trigger, event_key=task.event_key, decide=decide)


def heal_standalone_task(ctx: Context, task: TaskStop, cls: Classification, trigger: str) -> AuditEntry:
    key = family_key(task.cluster, task.family)
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


def heal_service_action(ctx: Context, deps: Dependencies, action: ServiceAction) -> list[AuditEntry]:
    trigger = _trigger(action)
    key = service_key(action.cluster, action.service)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, ServicePolicy):
        return [record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                       reason=f"no ServicePolicy for {action.cluster}/{action.service}")]
    if not is_spot_placement_failure(action):  # nothing to count: no state to load
        out = decide_service_action(action=action, policy=policy, state=ServiceState(), facts=Facts(), now=ctx.now)
        assert not isinstance(out, Need)  # only a Spot placement failure asks for facts
        return [record(ctx, target=key, trigger=trigger, outcome=out[0].outcome, reason=out[0].reason)]
    fetch = _fetcher(deps, action.cluster, action.service, None)

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


# --------------------------------------------------------------------------- facts on demand

Fetch = Callable[[Need, Facts], Facts]


def resolve(decide: Callable[[Facts], Outcome], fetch: Fetch) -> tuple[Decision, ServiceState]:
    """Run a pure decision, fetching each fact it asks for (at most once each)."""
    facts = Facts()
    for _ in range(MAX_FACT_ROUNDS):
        out = decide(facts)
        if not isinstance(out, Need):
            return out
        facts = fetch(out, facts)
    raise RuntimeError("a healing decision kept asking for facts")


def _fetcher(deps: Dependencies, cluster: str, service: str, task_definition: str | None) -> Fetch:
    """Fetches for one service; answers are kept, so a retry after a concurrent update asks AWS no more."""
    cache: dict[Need, Facts] = {}

    def fetch(need: Need, facts: Facts) -> Facts:
        if need == Need.SERVICE:
            if Need.SERVICE not in cache:
                view = deps.ecs.describe_services(cluster, [service]).get(service)
                cache[need] = Facts(service=view, service_fetched=True)
            got = cache[need]
            return Facts(service=got.service, service_fetched=True, task_definition=facts.task_definition,
                         task_definition_fetched=facts.task_definition_fetched)
        if Need.TASK_DEFINITION not in cache:
            described: dict[str, Any] | None = None
            if task_definition is not None and deps.taskdefs is not None:
                described = deps.taskdefs.describe(task_definition).task_definition
            cache[need] = Facts(task_definition=described, task_definition_fetched=True)
        got = cache[need]
        return Facts(service=facts.service, service_fetched=facts.service_fetched,
                     task_definition=got.task_definition, task_definition_fetched=True)

    return fetch


# --------------------------------------------------------------------------- reconciler hook

def restore_spot_holds(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """End every Spot fallback hold whose ``holdSeconds`` have passed (one BatchGetItem per 100 services).

    Every service policy is looked at, not only those that still have ``spotFallback``: removing it
    from a policy during a hold must not strand the service on on-demand capacity.
    """
    if not policies:
        return []
    snaps = ctx.store.load_states(p.key for p in policies)
    entries: list[AuditEntry] = []
    for policy in policies:
        snap = snaps.get(policy.key)
        if snap is None or not spot_hold_expired(snap.state, ctx.now):
            continue
        if snap.state.paused or effective_mode(ctx.global_mode, policy.spec.mode) == "off":
            continue  # the hold waits for the operator (no audit line every minute)
        cluster, service = policy.metadata.cluster, policy.metadata.service
        fetch = _fetcher(deps, cluster, service, None)

        def decide(current: Snapshot, cluster: str = cluster, service: str = service,
                   fetch: Fetch = fetch) -> tuple[Decision, ServiceState]:
            return resolve(lambda facts: decide_spot_restore(cluster=cluster, service=service, state=current.state,
                                                             facts=facts, now=ctx.now), fetch)

        entries.append(act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: Spot hold ended",
                           event_key=None, decide=decide))
    return entries
