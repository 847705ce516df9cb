"""Rollbacks read back from DescribeServices: the reconciler's retries of rollbacks the service did not follow,
and the service facts rollout decisions use (also for rollback alarms, ``usecases.alarm_rules``).

Kept apart from ``usecases.rollout``: the reconciler and the scaler parse no deployment event.
"""

from __future__ import annotations

from collections.abc import Callable

from autopilot.decide.rollout import ObservedDeployment, ServiceFacts, decide_rollback_retry, rollback_due
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import aware_time
from autopilot.models.policy import ServicePolicy, effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.ports import Dependencies, ServiceView
from autopilot.usecases.runner import Context, act, states
from autopilot.usecases.services import describe_or_record


def service_facts(view: ServiceView | None) -> ServiceFacts | None:
    """DescribeServices' view reduced to what rollout decisions use (timestamps parsed)."""
    if view is None:
        return None
    return ServiceFacts(
        running_task_definition=view.task_definition,
        circuit_breaker_rollback=view.circuit_breaker_rollback,
        deployments=tuple(
            ObservedDeployment(id=d.id, task_definition=d.task_definition, status=d.status,
                               rollout_state=d.rollout_state, created_at=aware_time(d.created_at),
                               updated_at=aware_time(d.updated_at))
            for d in view.deployments if d.id and d.task_definition
        ),
    )


def reconcile_rollbacks(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """Retry rollbacks the service did not follow (UpdateService failed or was overwritten), bounded.

    Costs one BatchGetItem per 100 policies when nothing is pending; DescribeServices only for services
    with a rollback at least ``ROLLBACK_RETRY_AFTER`` old. Services whose effective mode is not
    ``enforce`` are skipped (nothing was done there, so there is nothing to verify), as are paused ones.
    """
    managed = [p for p in policies if effective_mode(ctx.global_mode, p.spec.mode) == "enforce"]
    if not managed:
        return []
    snaps = states(ctx, [p.key for p in managed])
    due = [p for p in managed if not snaps[p.key].state.paused and rollback_due(snaps[p.key].state.rollout, ctx.now)]
    if not due:
        return []
    views, unread = describe_or_record(ctx, deps.ecs, due, "reconcile: rollback check")
    entries: list[AuditEntry] = []
    for policy in due:  # a failure is isolated, audited and counted by the runner; the next run tries again
        if policy.key in unread:
            continue  # audited failed:describe; no view is not "the service is gone"
        view = views.get((policy.metadata.cluster, policy.metadata.service))
        entries.append(act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: rollback check",
                           event_key=None, decide=_retry(ctx, policy, view)))
    return entries


def _retry(ctx: Context, policy: ServicePolicy,
           view: ServiceView | None) -> Callable[[Snapshot], tuple[Decision, ServiceState]]:
    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, rollout = decide_rollback_retry(
            cluster=policy.metadata.cluster, service=policy.metadata.service, rollout=snap.state.rollout,
            running_task_definition=view.task_definition if view else None, now=ctx.now)
        return decision, snap.state.model_copy(update={"rollout": rollout})

    return decide
