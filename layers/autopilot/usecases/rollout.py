"""RolloutFunction's use case, and the reconciler's rollback retries.

An "ECS Deployment State Change" event takes one path: parse; find the service's policy (a DynamoDB
read: an unmanaged service, or an old-format ARN without a cluster, is ignored with no AWS call);
then ``runner.act`` loads the state, calls DescribeServices only when the decision needs it, decides
(pure, ``decide.rollout``), claims the new state before any mutation, executes, audits.

Dedupe: Powertools idempotency on the event ``id`` in the handler, plus the per-service memory of
applied events (``ServiceState.applied_events``) keyed on the state change itself, so a redelivery
under another id changes nothing either.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from autopilot.decide.rollout import (
    ObservedDeployment,
    ServiceFacts,
    decide_rollback_retry,
    needs_describe,
    on_completed,
    on_failed,
    on_in_progress,
    rollback_due,
)
from autopilot.models.actions import Decision
from autopilot.models.deployment_events import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    DeploymentChange,
    parse_deployment_event,
)
from autopilot.models.events import InvalidEvent, parse_time
from autopilot.models.policy import Rollout, ServicePolicy, TaskPolicy, effective_mode, service_key
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import EcsPort, ServiceView
from autopilot.store.table import AuditEntry
from autopilot.usecases.observe import count_invalid, count_outcomes
from autopilot.usecases.runner import Context, act, record
from autopilot.wiring import Dependencies


def handle_deployment_event(event: Any, deps: Dependencies) -> dict[str, Any]:
    """Parse, then act; an invalid event is rejected (logged, counted, audited) with no AWS call."""
    started = time.perf_counter()
    ctx = Context(store=deps.store, executor=deps.executor, now=deps.clock(), global_mode=deps.settings.mode,
                  source="rollout", event_id=str(event.get("id", "-")) if isinstance(event, dict) else "-")
    try:
        change = parse_deployment_event(event)
    except InvalidEvent as exc:
        count_invalid(str(exc))
        record(ctx, target="-", trigger="invalid deployment event", outcome="rejected:invalid-event", reason=str(exc))
        return {"status": "rejected", "reason": str(exc)}
    entry = apply_deployment_change(ctx, change, deps.ecs)
    count_outcomes([entry], started)
    return {"status": "ok", "event": change.event_name, "deployment": change.deployment_id,
            "outcomes": [{"target": entry.target, "outcome": entry.outcome, "reason": entry.reason}]}


def apply_deployment_change(ctx: Context, change: DeploymentChange, ecs: EcsPort) -> AuditEntry:
    trigger = f"{change.event_name} {change.deployment_id}"
    ref = change.service
    if ref.cluster is None:
        return record(ctx, target="-", trigger=trigger, outcome="ignored:no-cluster-in-arn",
                      reason=f"service ARN {ref.arn} has the old format without a cluster name; "
                      f"no policy can be matched to it")
    policy = ctx.store.get_policy(service_key(ref.cluster, ref.service))
    if policy is None or isinstance(policy, TaskPolicy):
        return record(ctx, target="-", trigger=trigger, outcome="ignored:unmanaged",
                      reason=f"no policy manages service {ref.cluster}/{ref.service}")
    if not change.known:
        return record(ctx, target=policy.key, trigger=trigger, outcome="ignored:unknown-event-name",
                      reason=f"deployment event name {change.event_name!r} is not one ecs-autopilot acts on")
    rollout_policy = policy.spec.rollout or Rollout()
    cluster, service = ref.cluster, ref.service

    def describe() -> ServiceFacts | None:
        return service_facts(ecs.describe_services(cluster, [service]).get(service))

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        rollout = snap.state.rollout
        decision: Decision
        new: RolloutState
        if change.event_name == IN_PROGRESS:
            facts = describe()
            decision, new = on_in_progress(rollout=rollout, deployment_id=change.deployment_id,
                                           updated_at=change.updated_at, reason=change.reason,
                                           ecs_rollback=change.ecs_rollback,
                                           observed=facts.deployments if facts else None, trigger=trigger)
        elif change.event_name == COMPLETED:
            facts = describe() if needs_describe(rollout, change.deployment_id) else None
            decision, new = on_completed(rollout=rollout, deployment_id=change.deployment_id,
                                         updated_at=change.updated_at, reason=change.reason,
                                         observed=facts.deployments if facts else None, trigger=trigger)
        else:
            assert change.event_name == FAILED
            decision, new = on_failed(cluster=cluster, service=service, rollout=rollout,
                                      deployment_id=change.deployment_id, updated_at=change.updated_at,
                                      reason=change.reason, facts=describe(),
                                      rollback_on_failure=rollout_policy.rollbackOnDeploymentFailure,
                                      now=ctx.now, trigger=trigger)
        return decision, snap.state.model_copy(update={"rollout": new}).remember(change.event_key)

    entry = act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger=trigger, event_key=change.event_key,
                decide=decide)
    logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason})
    return entry


# ---------------------------------------------------------------------------- shared with alarm rules


def service_facts(view: ServiceView | None) -> ServiceFacts | None:
    """DescribeServices' view reduced to what rollout decisions use (timestamps parsed)."""
    if view is None:
        return None
    return ServiceFacts(
        running_task_definition=view.task_definition,
        circuit_breaker_rollback=view.circuit_breaker_rollback,
        deployments=tuple(
            ObservedDeployment(id=d.id, task_definition=d.task_definition, status=d.status,
                               rollout_state=d.rollout_state, created_at=_time(d.created_at),
                               updated_at=_time(d.updated_at))
            for d in view.deployments if d.id and d.task_definition
        ),
    )


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parse_time(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# ---------------------------------------------------------------------------- reconciler hook


def reconcile_rollbacks(ctx: Context, deps: Dependencies, policies: list[Any]) -> list[AuditEntry]:
    """Retry rollbacks the service did not follow (UpdateService failed or was overwritten), bounded.

    Costs one BatchGetItem per 100 policies when nothing is pending; DescribeServices only for services
    with a rollback at least ``ROLLBACK_RETRY_AFTER`` old. Services whose effective mode is not
    ``enforce`` are skipped (nothing was done there, so there is nothing to verify), as are paused ones.
    """
    managed = [p for p in policies if isinstance(p, ServicePolicy)
               and effective_mode(ctx.global_mode, p.spec.mode) == "enforce"]
    if not managed:
        return []
    snaps = ctx.store.load_states([p.key for p in managed])
    due = [p for p in managed if not snaps[p.key].state.paused and rollback_due(snaps[p.key].state.rollout, ctx.now)]
    if not due:
        return []
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for p in due:
        by_cluster[p.metadata.cluster].append(p.metadata.service)
    views: dict[tuple[str, str], ServiceView] = {}
    for cluster, services in by_cluster.items():
        for name, found in deps.ecs.describe_services(cluster, services).items():
            views[(cluster, name)] = found
    entries: list[AuditEntry] = []
    for policy in due:
        view = views.get((policy.metadata.cluster, policy.metadata.service))
        try:
            entries.append(act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: rollback check",
                               event_key=None, decide=_retry(ctx, policy, view)))
        except Exception:  # audited as failed by the runner, claim released: the next run tries again
            logger.exception("rollback retry failed", extra={"target": policy.key})
    return entries


def _retry(ctx: Context, policy: ServicePolicy,
           view: ServiceView | None) -> Callable[[Snapshot], tuple[Decision, ServiceState]]:
    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, rollout = decide_rollback_retry(
            cluster=policy.metadata.cluster, service=policy.metadata.service, rollout=snap.state.rollout,
            running_task_definition=view.task_definition if view else None, now=ctx.now)
        return decision, snap.state.model_copy(update={"rollout": rollout})

    return decide
