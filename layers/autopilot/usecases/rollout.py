"""RolloutFunction's use case (the reconciler's rollback retries: ``usecases.rollbacks``).

An "ECS Deployment State Change" event takes one path: parse; find the service's policy (a DynamoDB
read: an unmanaged service, or an old-format ARN without a cluster, is ignored with no AWS call);
then ``runner.act`` loads the state, calls DescribeServices only when the decision needs it, decides
(pure, ``decide.rollout``), claims the new state before any mutation, executes, audits.

Dedupe: Powertools idempotency on the event ``id`` in the handler, plus the per-service memory of
applied events (``ServiceState.applied_events``) keyed on the state change itself, so a redelivery
under another id changes nothing either.
"""

from __future__ import annotations

from typing import Any

from autopilot.decide.rollout import ServiceFacts, needs_describe, on_completed, on_failed, on_in_progress
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.deployment_events import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    DeploymentChange,
    parse_deployment_event,
)
from autopilot.models.place import Place
from autopilot.models.policy import Rollout, TaskPolicy, service_key
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import Dependencies, EcsPort
from autopilot.usecases.observe import count_outcomes, counts_failures
from autopilot.usecases.rollbacks import service_facts
from autopilot.usecases.runner import Context, Rejected, act, open_event, record


@counts_failures
def handle_deployment_event(event: Any, deps: Dependencies) -> dict[str, Any]:
    """Parse, then act; an invalid event is rejected (logged, counted, audited) with no AWS call."""
    opened = open_event(deps, event, source="rollout", what="deployment event", parse=parse_deployment_event,
                        trigger=_trigger)
    if isinstance(opened, Rejected):
        return opened.response
    ctx, change, place, placed = opened
    entry = apply_deployment_change(ctx, change, placed.ecs, place)
    count_outcomes([entry], ctx.started)
    return {"status": "ok", "event": change.event_name, "deployment": change.deployment_id,
            "outcomes": [{"target": entry.target, "outcome": entry.outcome, "reason": entry.reason}]}


def _trigger(change: DeploymentChange) -> str:
    return f"{change.event_name} {change.deployment_id}"


def apply_deployment_change(ctx: Context, change: DeploymentChange, ecs: EcsPort,
                            place: Place | None = None) -> AuditEntry:
    trigger = _trigger(change)
    ref = change.service
    if ref.cluster is None:
        return record(ctx, target="-", trigger=trigger, outcome="ignored:no-cluster-in-arn",
                      reason=f"service ARN {ref.arn} has the old format without a cluster name; "
                      f"no policy can be matched to it")
    policy = ctx.store.get_policy(service_key(ref.cluster, ref.service, place))
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
