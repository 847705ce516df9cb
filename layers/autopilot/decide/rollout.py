"""Rollouts as pure functions: LKG bookkeeping, THE rollback decision, alarm rules, rollback retries.

Nothing here does I/O or reads a clock; callers pass what DescribeServices said (``ServiceFacts``)
and ``now``. Sources: contract section 2 (LKG definition, rollout policy), aws-facts sections 1 and 3.

Ordering: deployments are ordered by their own data (DescribeServices ``createdAt``, else the
``updatedAt`` of their first event), never by when an event arrived. So a late COMPLETED for an older
deployment cannot move LKG backwards, and a duplicate changes nothing.

``decide_rollback`` is the one rollback mechanism: the RolloutFunction (failed deployments), the
alarm rules (ScalerFunction), the healer (crash loops, image-pull failures) and the reconciler's
retries all go through it, so "at most one rollback per service per failing revision" holds however
many of them notice the same bad revision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from autopilot.models.actions import Decision, Notify, Recycle, RollBack
from autopilot.models.rollout_state import (
    MAX_BAD_REVISIONS,
    MAX_DEPLOYMENTS,
    MAX_ROLLBACKS,
    BadMark,
    DeploymentRecord,
    RollbackRecord,
    RolloutState,
    revision_id,
    same_revision,
)

ROLLBACK_RETRY_AFTER = timedelta(minutes=3)  # the reconciler re-checks a rollback this long after an attempt
ROLLBACK_MAX_RETRIES = 3  # retries after the first attempt; then it gives up and notifies
ROLLBACK_STALE_AFTER = timedelta(minutes=15)  # a pending rollback older than this is never acted on
NO_LKG_SUBJECT = "no known good revision"


@dataclass(frozen=True)
class ObservedDeployment:
    """One entry of DescribeServices ``deployments[]``."""

    id: str
    task_definition: str
    status: str = "PRIMARY"  # PRIMARY | ACTIVE | INACTIVE
    rollout_state: str | None = None  # IN_PROGRESS | COMPLETED | FAILED
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ServiceFacts:
    """What DescribeServices said about the service, reduced to what rollout decisions use."""

    running_task_definition: str  # the service's taskDefinition (its PRIMARY deployment's)
    circuit_breaker_rollback: bool = False
    deployments: tuple[ObservedDeployment, ...] = field(default_factory=tuple)


def short(task_definition: str | None) -> str:
    """``family:revision`` for messages (full ARNs stay in actions and state)."""
    return revision_id(task_definition) or "unknown revision"


def _lkg(task_definition: str | None) -> str:
    return revision_id(task_definition) or "none"


# ---------------------------------------------------------------------------- bookkeeping


def _latest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _earliest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _ordered(records: Iterable[DeploymentRecord]) -> list[DeploymentRecord]:
    items = list(records)
    dated = sorted((r for r in items if r.order_key is not None), key=lambda r: (r.order_key, r.id), reverse=True)
    return dated + [r for r in items if r.order_key is None]


def upsert_deployment(rollout: RolloutState, deployment_id: str, **changes: object) -> RolloutState:
    """Merge what one source says about a deployment into its record (creating it if needed).

    Terminal statuses (COMPLETED, FAILED) never go back to IN_PROGRESS; FAILED wins over COMPLETED;
    a task definition or start time once known is only replaced by DescribeServices' own values.
    """
    current = rollout.deployment(deployment_id) or DeploymentRecord(id=deployment_id)
    data = current.model_dump()
    status = changes.pop("status", None)
    authoritative = bool(changes.pop("authoritative", False))
    for key, value in changes.items():
        if value is None:
            continue
        if key == "updated_at":
            data[key] = _latest(current.updated_at, value)  # type: ignore[arg-type]
        elif key == "started_at":
            data[key] = value if authoritative else _earliest(current.started_at, value)  # type: ignore[arg-type]
        elif key == "task_definition":
            data[key] = value if authoritative or current.task_definition is None else current.task_definition
        elif key in ("completed_at", "failed_at"):
            data[key] = data.get(key) or value
        elif key == "ecs_rollback":
            data[key] = bool(current.ecs_rollback or value)
        else:
            data[key] = value
    if status == "FAILED" or (status == "COMPLETED" and current.status == "IN_PROGRESS"):
        data["status"] = status
    record = DeploymentRecord.model_validate(data)
    others = [d for d in rollout.deployments if d.id != deployment_id]
    deployments = _ordered([record, *others])
    return rollout.model_copy(update={"deployments": deployments, "current_deployment": deployments[0]})


def merge_observed(rollout: RolloutState, observed: Iterable[ObservedDeployment]) -> RolloutState:
    """Record every deployment DescribeServices listed (its createdAt is the deployment's start)."""
    state = rollout
    for d in observed:
        status = d.rollout_state if d.rollout_state in ("COMPLETED", "FAILED") else None
        state = upsert_deployment(state, d.id, task_definition=d.task_definition, started_at=d.created_at,
                                  updated_at=d.updated_at, status=status, authoritative=True,
                                  completed_at=d.updated_at if status == "COMPLETED" else None,
                                  failed_at=d.updated_at if status == "FAILED" else None)
    return state


def recompute_lkg(rollout: RolloutState) -> RolloutState:
    """LKG = task definition of the newest (by start) completed deployment whose revision is not bad.

    If no recorded deployment qualifies (records are bounded), a previous LKG stands unless it is bad.
    Records are pruned to the newest ``MAX_DEPLOYMENTS`` here.
    """
    candidates = [d for d in rollout.deployments
                  if d.status == "COMPLETED" and d.task_definition and not rollout.is_bad(d.task_definition)]
    best = _ordered(candidates)[0] if candidates else None
    lkg: str | None
    lkg_deployment: str | None
    if best is not None:
        lkg, lkg_deployment = best.task_definition, best.id
    elif rollout.lkg and not rollout.is_bad(rollout.lkg):
        lkg, lkg_deployment = rollout.lkg, rollout.lkg_deployment
    else:
        lkg, lkg_deployment = None, None
    deployments = _ordered(rollout.deployments)[:MAX_DEPLOYMENTS]
    return rollout.model_copy(update={"lkg": lkg, "lkg_deployment": lkg_deployment, "deployments": deployments,
                                      "current_deployment": deployments[0] if deployments else None})


def lkg_before(rollout: RolloutState, deployment: DeploymentRecord) -> str | None:
    """The revision that was last known good when ``deployment`` started (ignoring it and later ones)."""
    start = deployment.order_key
    earlier = [d for d in rollout.deployments
               if d.id != deployment.id and d.status == "COMPLETED" and d.task_definition
               and not rollout.is_bad(d.task_definition)
               and (start is None or (d.order_key is not None and d.order_key < start))]
    if earlier:
        return _ordered(earlier)[0].task_definition
    return rollout.lkg if rollout.lkg and not same_revision(rollout.lkg, deployment.task_definition) else None


def mark_bad(rollout: RolloutState, revision: str, reason: str, now: datetime) -> RolloutState:
    """Mark ``revision`` bad (now, for ``reason``) and recompute LKG. Marking again refreshes the mark."""
    rid = revision_id(revision)
    assert rid is not None
    bad = [b for b in rollout.bad_revisions if revision_id(b) != rid] + [revision]
    marks = {**rollout.bad_marks, rid: BadMark(marked_at=now, reason=reason[:500])}
    if len(bad) > MAX_BAD_REVISIONS:
        oldest = sorted(bad, key=lambda b: marks[revision_id(b) or ""].marked_at if revision_id(b) in marks
                        else datetime.min.replace(tzinfo=now.tzinfo))
        dropped = {revision_id(b) for b in oldest[:len(bad) - MAX_BAD_REVISIONS]}
        bad = [b for b in bad if revision_id(b) not in dropped]
        marks = {k: v for k, v in marks.items() if k not in dropped}
    return recompute_lkg(rollout.model_copy(update={"bad_revisions": bad, "bad_marks": marks}))


def _rehabilitate(rollout: RolloutState, record: DeploymentRecord) -> tuple[RolloutState, bool]:
    """A deployment of a bad revision that *started after* the mark and completed clears the mark.

    That is an operator deliberately redeploying it and ECS reaching steady state; the contract's LKG
    is "the most recent deployment that completed and was not later marked bad".
    """
    rid = revision_id(record.task_definition)
    mark = rollout.bad_marks.get(rid or "")
    if rid is None or mark is None or not rollout.is_bad(record.task_definition) or record.started_at is None:
        return rollout, False
    if record.started_at <= mark.marked_at:
        return rollout, False
    return rollout.model_copy(update={
        "bad_revisions": [b for b in rollout.bad_revisions if revision_id(b) != rid],
        "bad_marks": {k: v for k, v in rollout.bad_marks.items() if k != rid},
        "rollbacks": [r for r in rollout.rollbacks if revision_id(r.failing_revision) != rid],
    }), True


# ---------------------------------------------------------------------------- deployment events


def on_in_progress(*, rollout: RolloutState, deployment_id: str, updated_at: datetime, reason: str | None,
                   ecs_rollback: bool, observed: Iterable[ObservedDeployment] | None,
                   trigger: str) -> tuple[Decision, RolloutState]:
    """Record a deployment that started (or an ECS circuit-breaker rollback, which we never fight)."""
    state = upsert_deployment(rollout, deployment_id, started_at=updated_at, updated_at=updated_at,
                              reason=reason, ecs_rollback=ecs_rollback)
    seen = list(observed or [])
    state = recompute_lkg(merge_observed(state, seen))
    record = state.deployment(deployment_id)
    assert record is not None
    kind = "ECS circuit-breaker rollback" if ecs_rollback else "deployment"
    if not any(d.id == deployment_id for d in seen):
        return Decision(outcome="recorded:no-matching-deployment",
                        reason=f"{trigger}: DescribeServices lists no deployment {deployment_id}; recorded without "
                        f"a task definition (not guessed)"), state
    outcome = "recorded:ecs-rollback" if ecs_rollback else "recorded:in-progress"
    return Decision(outcome=outcome, reason=f"{trigger}: {kind} {deployment_id} of {short(record.task_definition)} "
                    f"started at {_t(record.started_at)}; LKG {_lkg(state.lkg)}"), state


def needs_describe(rollout: RolloutState, deployment_id: str) -> bool:
    """A COMPLETED needs DescribeServices only when the deployment's task definition is not known yet."""
    record = rollout.deployment(deployment_id)
    return record is None or record.task_definition is None


def on_completed(*, rollout: RolloutState, deployment_id: str, updated_at: datetime, reason: str | None,
                 observed: Iterable[ObservedDeployment] | None, trigger: str) -> tuple[Decision, RolloutState]:
    """The completed deployment's task definition becomes LKG unless it is bad or an LKG is newer."""
    before = rollout.lkg
    state = upsert_deployment(rollout, deployment_id, updated_at=updated_at, started_at=None, reason=reason,
                              status="COMPLETED", completed_at=updated_at)
    state = merge_observed(state, observed or [])
    record = state.deployment(deployment_id)
    assert record is not None
    state, rehabilitated = _rehabilitate(state, record)
    state = recompute_lkg(state)
    record = state.deployment(deployment_id) or record
    if record.task_definition is None:
        return Decision(outcome="recorded:no-matching-deployment",
                        reason=f"{trigger}: deployment {deployment_id} completed but its task definition is unknown "
                        f"(DescribeServices lists no such deployment); LKG stays {_lkg(state.lkg)}"), state
    rev = short(record.task_definition)
    if state.is_bad(record.task_definition):
        mark = state.bad_marks.get(revision_id(record.task_definition) or "")
        why = f" ({mark.reason})" if mark else ""
        return Decision(outcome="recorded:completed-bad",
                        reason=f"{trigger}: {rev} is marked bad{why}; LKG stays {_lkg(state.lkg)}"), state
    note = f"; {rev} was marked bad earlier and is cleared by this later deployment" if rehabilitated else ""
    if state.lkg_deployment == deployment_id and not same_revision(before, state.lkg):
        return Decision(outcome="recorded:lkg",
                        reason=f"{trigger}: {rev} is the last known good revision (was {_lkg(before)}){note}"), state
    if same_revision(state.lkg, record.task_definition):
        return Decision(outcome="recorded:completed",
                        reason=f"{trigger}: {rev} completed; it is already the last known good revision{note}"), state
    return Decision(outcome="recorded:completed-older",
                    reason=f"{trigger}: {rev} completed, but deployment {state.lkg_deployment} of "
                    f"{short(state.lkg)} started later and stays last known good"), state


def on_failed(*, cluster: str, service: str, rollout: RolloutState, deployment_id: str, updated_at: datetime,
              reason: str | None, facts: ServiceFacts | None, rollback_on_failure: bool, now: datetime,
              trigger: str) -> tuple[Decision, RolloutState]:
    """Mark the failed revision bad; roll back to LKG unless ECS's circuit breaker does it itself."""
    state = upsert_deployment(rollout, deployment_id, started_at=None, updated_at=updated_at, reason=reason,
                              status="FAILED", failed_at=updated_at)
    state = recompute_lkg(merge_observed(state, facts.deployments if facts else ()))
    record = state.deployment(deployment_id)
    assert record is not None
    why = f"{trigger}: deployment {deployment_id} failed ({reason or 'no reason given'})"
    failing = record.task_definition
    if failing is None:
        return Decision(outcome="recorded:no-matching-deployment",
                        reason=f"{why}; its task definition is unknown (DescribeServices lists no such deployment), "
                        f"so nothing is marked bad or rolled back",
                        actions=(Notify(subject=f"Deployment of {cluster}/{service} failed", reason=why,
                                        detail={"cluster": cluster, "service": service,
                                                "deployment": deployment_id}),)), state
    if same_revision(lkg_before(state, record), failing):
        note = (f"{why}; the deployment did not change the revision ({short(failing)} is the last known good one), "
                f"so the failure is not the revision's: nothing marked bad, nothing to roll back to")
        return Decision(outcome="recorded:failed-same-revision", reason=note, actions=(Notify(
            subject=f"Deployment of {cluster}/{service} failed", reason=note,
            detail={"cluster": cluster, "service": service, "deployment": deployment_id, "revision": failing}),)), \
            state
    if facts is None:
        return Decision(outcome="skipped:service-missing",
                        reason=f"{why}; {short(failing)} marked bad; service {cluster}/{service} not found"), \
            mark_bad(state, failing, why, now)
    if facts.circuit_breaker_rollback:
        note = f"{why}; {short(failing)} marked bad; the ECS circuit breaker rolls the service back itself"
        return Decision(outcome="recorded:ecs-rolls-back", reason=note, actions=(Notify(
            subject=f"Deployment of {cluster}/{service} failed; ECS rolls back", reason=note,
            detail={"cluster": cluster, "service": service, "deployment": deployment_id, "failed": failing}),)), \
            mark_bad(state, failing, why, now)
    if not rollback_on_failure:
        note = f"{why}; {short(failing)} marked bad; rollbackOnDeploymentFailure is off"
        return Decision(outcome="recorded:rollback-disabled", reason=note, actions=(Notify(
            subject=f"Deployment of {cluster}/{service} failed", reason=note,
            detail={"cluster": cluster, "service": service, "deployment": deployment_id, "failed": failing}),)), \
            mark_bad(state, failing, why, now)
    return decide_rollback(cluster=cluster, service=service, running_task_definition=facts.running_task_definition,
                           failing_revision=failing, rollout=state, reason=why, now=now)


# ---------------------------------------------------------------------------- the rollback


def decide_rollback(*, cluster: str, service: str, running_task_definition: str, failing_revision: str,
                    rollout: RolloutState, reason: str, now: datetime) -> tuple[Decision, RolloutState]:
    """THE rollback decision, shared by every capability. Returns the decision and the rollout state to store.

    - ``failing_revision`` is marked bad (LKG moves off it if it was LKG);
    - at most one rollback per service per failing revision: "skipped:already-rolled-back";
    - no LKG: only a Notify ("no known good revision"), outcome "skipped:no-lkg";
    - the service already runs LKG: "skipped:already-on-lkg";
    - the service runs neither LKG nor the failing revision (someone deployed something newer):
      "skipped:service-moved-on" (a late signal must not undo a newer deployment);
    - otherwise a RollBack to LKG (never to a bad revision), outcome "rollback", recorded so the
      reconciler can retry it if the service is not on LKG a few minutes later.
    """
    earlier = rollout.rollback_for(failing_revision)
    state = mark_bad(rollout, failing_revision, reason, now)
    failing, running, target = short(failing_revision), short(running_task_definition), state.lkg
    if earlier is not None:
        return Decision(outcome="skipped:already-rolled-back",
                        reason=f"{reason}; already rolled back from {failing} to {short(earlier.to_revision)} at "
                        f"{_t(earlier.decided_at)} (at most one rollback per failing revision)"), state
    if target is None or state.is_bad(target):
        note = f"{reason}; {failing} marked bad, but there is no known good revision to roll back to"
        return Decision(outcome="skipped:no-lkg", reason=note, actions=(Notify(
            subject=f"{cluster}/{service}: {NO_LKG_SUBJECT}", reason=note,
            detail={"cluster": cluster, "service": service, "failing": failing_revision,
                    "running": running_task_definition}),)), state
    if same_revision(running_task_definition, target):
        return Decision(outcome="skipped:already-on-lkg",
                        reason=f"{reason}; {failing} marked bad; the service already runs last known good "
                        f"{short(target)}"), state
    if not same_revision(running_task_definition, failing_revision):
        return Decision(outcome="skipped:service-moved-on",
                        reason=f"{reason}; {failing} marked bad; the service now runs {running}, neither the "
                        f"failing revision nor last known good {short(target)}: not rolled back"), state
    why = f"{reason}; rolling back from {failing} to last known good {short(target)}"
    action = RollBack(cluster=cluster, service=service, to_task_definition=target,
                      from_task_definition=running_task_definition, reason=why)
    record = RollbackRecord(failing_revision=failing_revision, to_revision=target, decided_at=now, reason=why[:500],
                            last_attempt_at=now)
    others = [r.model_copy(update={"status": "superseded"}) if r.status == "pending" else r for r in state.rollbacks]
    state = state.model_copy(update={"rollbacks": [record, *others][:MAX_ROLLBACKS]})
    return Decision(outcome="rollback", reason=why, actions=(action,)), state


# ---------------------------------------------------------------------------- alarm rules


def current_at(rollout: RolloutState, moment: datetime) -> DeploymentRecord | None:
    """The deployment that was the newest one at ``moment`` (by the deployments' own start times)."""
    return next((d for d in rollout.deployments if d.order_key is not None and d.order_key <= moment), None)


def decide_rollback_alarm(*, cluster: str, service: str, alarm: str, alarm_at: datetime, rollout: RolloutState,
                          facts: ServiceFacts, bake_seconds: int, now: datetime) -> tuple[Decision, RolloutState]:
    """A rollback alarm went to ALARM: within ``bake_seconds`` of the deployment's start, roll back to LKG
    and mark the new revision bad; otherwise only notify."""
    state = recompute_lkg(merge_observed(rollout, facts.deployments))
    trigger = f"alarm {alarm} -> ALARM at {_t(alarm_at)}"
    deployment = current_at(state, alarm_at)
    detail = {"cluster": cluster, "service": service, "alarm": alarm}
    if deployment is None or deployment.order_key is None:
        note = (f"{trigger}: no deployment of {cluster}/{service} is known to have started before it; "
                "nothing rolled back")
        return Decision(outcome="skipped:no-deployment", reason=note,
                        actions=(Notify(subject=f"{cluster}/{service}: rollback alarm {alarm}", reason=note,
                                        detail=detail),)), state
    elapsed = (alarm_at - deployment.order_key).total_seconds()
    if elapsed > bake_seconds:
        note = (f"{trigger}: {int(elapsed)}s after deployment {deployment.id} of {short(deployment.task_definition)} "
                f"started, outside the {bake_seconds}s bake window; not rolled back")
        return Decision(outcome="skipped:outside-bake-window", reason=note,
                        actions=(Notify(subject=f"{cluster}/{service}: rollback alarm {alarm}", reason=note,
                                        detail=detail),)), state
    if deployment.task_definition is None:
        note = f"{trigger}: within the bake window of deployment {deployment.id}, whose task definition is unknown"
        return Decision(outcome="skipped:unknown-revision", reason=note,
                        actions=(Notify(subject=f"{cluster}/{service}: rollback alarm {alarm}", reason=note,
                                        detail=detail),)), state
    before = lkg_before(state, deployment)
    if deployment.ecs_rollback or same_revision(before, deployment.task_definition):
        note = (f"{trigger}: deployment {deployment.id} did not change the revision "
                f"({short(deployment.task_definition)} was already last known good); nothing to roll back to")
        return Decision(outcome="skipped:not-a-new-revision", reason=note,
                        actions=(Notify(subject=f"{cluster}/{service}: rollback alarm {alarm}", reason=note,
                                        detail=detail),)), state
    why = (f"{trigger}, {int(elapsed)}s after deployment {deployment.id} of {short(deployment.task_definition)} "
           f"started (bake window {bake_seconds}s)")
    return decide_rollback(cluster=cluster, service=service, running_task_definition=facts.running_task_definition,
                           failing_revision=deployment.task_definition, rollout=state, reason=why, now=now)


def decide_recycle(*, cluster: str, service: str, alarm: str, rollout: RolloutState, bake_seconds: int,
                   now: datetime) -> tuple[Decision, RolloutState]:
    """A recycle alarm went to ALARM: force a new deployment, at most once per ``bake_seconds``."""
    trigger = f"alarm {alarm} -> ALARM"
    last = rollout.last_recycle_at
    if last is not None and now < last + timedelta(seconds=bake_seconds):
        return Decision(outcome="skipped:recycle-cooldown",
                        reason=f"{trigger}: last recycled at {_t(last)}; at most once per {bake_seconds}s"), rollout
    why = f"{trigger}: rolling restart (forceNewDeployment)"
    return (Decision(outcome="recycle", reason=why, actions=(Recycle(cluster=cluster, service=service, reason=why),)),
            rollout.model_copy(update={"last_recycle_at": now}))


# ---------------------------------------------------------------------------- reconciler


def rollback_due(rollout: RolloutState, now: datetime) -> bool:
    """A pending rollback whose last attempt is at least ``ROLLBACK_RETRY_AFTER`` old (no AWS call needed)."""
    record = rollout.pending_rollback()
    return record is not None and now - record.last_attempt_at >= ROLLBACK_RETRY_AFTER


def decide_rollback_retry(*, cluster: str, service: str, rollout: RolloutState, running_task_definition: str | None,
                          now: datetime) -> tuple[Decision, RolloutState]:
    """A few minutes after a rollback: done if the service runs its target; retried (bounded) if it still
    runs the failing revision; left alone if someone deployed something else meanwhile."""
    record = rollout.pending_rollback()
    if record is None:
        return Decision(outcome="skipped:no-pending-rollback", reason="no rollback is waiting"), rollout
    if running_task_definition is None:
        return Decision(outcome="skipped:service-missing",
                        reason=f"reconcile: service {cluster}/{service} was not found"), rollout
    waited = int((now - record.decided_at).total_seconds())
    if same_revision(running_task_definition, record.to_revision):
        return (Decision(outcome="recorded:rollback-done",
                         reason=f"reconcile: {cluster}/{service} runs {short(record.to_revision)}; rollback done"),
                _set_rollback(rollout, record, status="done"))
    if not same_revision(running_task_definition, record.failing_revision):
        return (Decision(outcome="recorded:rollback-superseded",
                         reason=f"reconcile: {cluster}/{service} now runs {short(running_task_definition)}, a newer "
                         f"deployment than the rollback from {short(record.failing_revision)}; not retried"),
                _set_rollback(rollout, record, status="superseded"))
    if now - record.last_attempt_at > ROLLBACK_STALE_AFTER:
        return (Decision(outcome="recorded:rollback-expired",
                         reason=f"reconcile: the rollback of {cluster}/{service} from {short(record.failing_revision)} "
                         f"was last attempted at {_t(record.last_attempt_at)}, too long ago to act on safely; "
                         f"not retried"),
                _set_rollback(rollout, record, status="expired"))
    if now - record.last_attempt_at < ROLLBACK_RETRY_AFTER:
        return Decision(outcome="skipped:rollback-not-due",
                        reason=f"reconcile: rollback of {cluster}/{service} attempted at {_t(record.last_attempt_at)}; "
                        f"re-checked after {int(ROLLBACK_RETRY_AFTER.total_seconds())}s"), rollout
    target = rollout.lkg if rollout.lkg and not rollout.is_bad(rollout.lkg) else None
    retries = record.attempts - 1
    if retries >= ROLLBACK_MAX_RETRIES or target is None:
        cause = (f"after {record.attempts} attempts" if target is not None
                 else "and there is no known good revision any more")
        note = (f"reconcile: {cluster}/{service} still runs {short(record.failing_revision)} {waited}s after the "
                f"rollback to {short(record.to_revision)} was decided {cause}; giving up")
        return (Decision(outcome="gave-up:rollback", reason=note, actions=(Notify(
                    subject=f"Rollback of {cluster}/{service} gave up", reason=note,
                    detail={"cluster": cluster, "service": service, "failing": record.failing_revision,
                            "target": record.to_revision, "attempts": record.attempts}),)),
                _set_rollback(rollout, record, status="gave-up"))
    why = (f"reconcile: {cluster}/{service} still runs {short(record.failing_revision)} {waited}s after the rollback "
           f"was decided; retry {retries + 1} of {ROLLBACK_MAX_RETRIES}: rolling back from "
           f"{short(record.failing_revision)} to last known good {short(target)}")
    action = RollBack(cluster=cluster, service=service, to_task_definition=target,
                      from_task_definition=running_task_definition, reason=why)
    return (Decision(outcome="rollback-retry", reason=why, actions=(action,)),
            _set_rollback(rollout, record, attempts=record.attempts + 1, last_attempt_at=now, to_revision=target))


def _set_rollback(rollout: RolloutState, record: RollbackRecord, **changes: object) -> RolloutState:
    updated = record.model_copy(update=changes)
    return rollout.model_copy(update={"rollbacks": [updated if r is record else r for r in rollout.rollbacks]})


def _t(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "an unknown time"
