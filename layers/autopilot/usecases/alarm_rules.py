"""Rollback and recycle alarms (policy ``spec.rollout``), called by the scaler's use case.

- ``rollbackAlarms``: an alarm going to ALARM within ``bakeSeconds`` after the current deployment
  started rolls back to LKG and marks the new revision bad; outside the bake window it only notifies.
  One DescribeServices (the running task definition and the deployments), then at most one
  UpdateService, through the shared ``decide_rollback``.
- ``recycleAlarms``: a rolling restart (UpdateService forceNewDeployment), at most once per
  ``bakeSeconds``; no read of ECS needed.

Both go through ``runner.act`` (claim before the mutation, release on failure, audit), keyed on the
alarm's state transition so both alarm delivery forms and retries dedupe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from autopilot.decide.rollout import decide_recycle, decide_rollback_alarm
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import AlarmChange, aware_time
from autopilot.models.policy import Rollout, ServicePolicy
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import EcsPort
from autopilot.usecases.rollbacks import service_facts
from autopilot.usecases.runner import Context, act

RuleKind = Literal["rollback", "recycle"]


def rule_kind(policy: ServicePolicy, alarm: str) -> RuleKind | None:
    """Whether ``alarm`` is one of the policy's rollback or recycle alarms."""
    rollout = policy.spec.rollout
    if rollout is None:
        return None
    if alarm in rollout.rollbackAlarms:
        return "rollback"
    if alarm in rollout.recycleAlarms:
        return "recycle"
    return None


def apply_alarm_rule(ctx: Context, policy: ServicePolicy, change: AlarmChange, ecs: EcsPort,
                     trigger: str) -> AuditEntry | None:
    """Apply the policy's rollback/recycle rule for an alarm that went to ALARM (None: not such an alarm)."""
    kind = rule_kind(policy, change.alarm_name)
    if kind is None:
        return None
    rollout = policy.spec.rollout or Rollout()
    cluster, service = policy.metadata.cluster, policy.metadata.service
    alarm_at = _alarm_time(change, ctx)

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        if kind == "recycle":
            decision, new = decide_recycle(cluster=cluster, service=service, alarm=change.alarm_name,
                                           rollout=snap.state.rollout, bake_seconds=rollout.bakeSeconds, now=ctx.now)
        else:
            facts = service_facts(ecs.describe_services(cluster, [service]).get(service))
            if facts is None:
                return Decision(outcome="skipped:service-missing",
                                reason=f"{trigger}: service {cluster}/{service} was not found (or is INACTIVE)"), \
                    snap.state
            decision, new = decide_rollback_alarm(cluster=cluster, service=service, alarm=change.alarm_name,
                                                  alarm_at=alarm_at, rollout=snap.state.rollout, facts=facts,
                                                  bake_seconds=rollout.bakeSeconds, now=ctx.now)
        return decision, snap.state.model_copy(update={"rollout": new}).remember(change.event_key)

    entry = act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger=trigger, event_key=change.event_key,
                decide=decide)
    logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason})
    return entry


def _alarm_time(change: AlarmChange, ctx: Context) -> datetime:
    """When the alarm changed state (its own timestamp); the invocation time if it carries none."""
    return aware_time(change.timestamp) or ctx.now
