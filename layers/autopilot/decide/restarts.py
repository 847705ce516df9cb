"""Standalone task restarts (TaskPolicy), as pure functions: back-off, give-up, reset, and the restarter's
claim-then-run bookkeeping.

A *lineage* is the chain of re-runs of one standalone task, named after its first task. Re-runs are
started with ``startedBy = autopilot/<lineage>`` (task events carry ``startedBy``, not tags) and tagged
``autopilot:lineage = <first task ARN>``, so a stopped re-run finds its lineage.

- Back-off: re-run *n* (1-based, since the last reset) waits ``initialBackoffSeconds * 2^(n-1)``,
  at most ``maxBackoffSeconds``. 10/300: 10, 20, 40, 80, 160, 300, 300, ...
- Give-up: a failure after ``maxRestarts`` re-runs notifies once and starts nothing more.
- Reset: a run that lasted ``resetAfterSeconds`` or more (``startedAt`` to ``stoppedAt``) resets the
  count: the next re-run is number 1 again. ``resetAfterSeconds: 0`` never resets (otherwise a task
  failing at once would be re-run forever); a task that never started never resets.
- A failed launch (RunTask ``failures[]``, a refused request) counts as a re-run and is retried with the
  back-off (at least ``MIN_RETRY_SECONDS``), never in a tight loop. Throttling is not the task's failure:
  it never reaches this decision (the record is redelivered by SQS instead).
- What is re-run: the same task definition revision, cluster, capacity provider (else launch type),
  the event's overrides (minus no-op entries and AWS-injected sidecars), the policy's network (for
  awsvpc tasks; without one, the stopped task's subnets and the VPC's default security group).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from autopilot.models.actions import Decision, EnqueueRestart, Notify, RunTask
from autopilot.models.healing_state import (
    MAX_ATTEMPTS_KEPT,
    MAX_LINEAGES,
    Attempt,
    Lineage,
    RestartMessage,
    RestartState,
)
from autopilot.models.policy import Restart, TaskPolicy

if TYPE_CHECKING:  # the restarter decides on queued messages only: it never loads task events
    from autopilot.decide.classify import Classification
    from autopilot.models.task_events import TaskStop

STARTED_BY_PREFIX = "autopilot/"
TAG_LINEAGE = "autopilot:lineage"
TAG_SEQUENCE = "autopilot:attempt"
TAG_RESTART_OF = "autopilot:restart-of"
MIN_RETRY_SECONDS = 10  # a failed launch is retried no sooner than this, whatever the policy says
STALE_CLAIM_SECONDS = 300  # a claim older than this without a start is from an invocation that died
MAX_SEEN_TASKS = 20
_LINEAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Overrides RunTask accepts (the event mirrors DescribeTasks' overrides).
_OVERRIDE_KEYS = ("containerOverrides", "cpu", "memory", "executionRoleArn", "taskRoleArn", "ephemeralStorage",
                  "inferenceAcceleratorOverrides")
_INJECTED_SIDECARS = ("aws-guardduty-agent-",)  # added by AWS at run time, not in the task definition


def backoff_seconds(restart: int, policy: Restart) -> int:
    """Delay before re-run number ``restart`` (1-based): doubling from initial, capped at max."""
    if restart <= 1:
        return min(policy.initialBackoffSeconds, policy.maxBackoffSeconds)
    if policy.initialBackoffSeconds == 0:
        return 0
    exponent = min(restart - 1, 62)  # 2**62 s is far beyond any maxBackoffSeconds
    return min(policy.initialBackoffSeconds * (1 << exponent), policy.maxBackoffSeconds)


def lineage_of(task: TaskStop) -> str | None:
    """The lineage a re-run belongs to (from ``startedBy``), or None for a task we did not start."""
    started_by = task.started_by or ""
    if started_by.startswith(STARTED_BY_PREFIX):
        candidate = started_by[len(STARTED_BY_PREFIX):]
        if _LINEAGE_ID.match(candidate):
            return candidate
    return None


def new_lineage_id(task: TaskStop) -> str:
    """The first task's ID (a hash if it has characters ``startedBy`` does not allow)."""
    if _LINEAGE_ID.match(task.task_id):
        return task.task_id
    return hashlib.sha256(task.task_arn.encode()).hexdigest()[:32]


def client_token(cluster: str, family: str, lineage: str, sequence: int) -> str:
    """RunTask's idempotency token: deterministic per lineage and sequence, at most 64 ASCII characters."""
    digest = hashlib.sha256(f"{cluster}|{family}|{lineage}|{sequence}".encode()).hexdigest()[:40]
    return f"ap-{digest}-{sequence}"[:64]


def clean_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The event's overrides as RunTask accepts them: no-op container entries and injected sidecars dropped."""
    out: dict[str, Any] = {}
    for key in _OVERRIDE_KEYS:
        value = overrides.get(key)
        if value in (None, "", [], {}):
            continue
        if key == "containerOverrides":
            kept = [dict(c) for c in value if isinstance(c, dict) and c.get("name")
                    and not str(c["name"]).startswith(_INJECTED_SIDECARS) and set(c) - {"name"}]
            if kept:
                out[key] = kept
        else:
            out[key] = value
    return out


def _fargate(task: TaskStop) -> bool:
    return (task.launch_type or "").upper() == "FARGATE" or (task.capacity_provider or "").upper().startswith("FARGATE")


def run_task_request(task: TaskStop, policy: TaskPolicy, *, lineage: str, first_task: str,
                     sequence: int) -> tuple[dict[str, Any], str | None]:
    """RunTask parameters re-running ``task`` (and a note when the network had to be guessed)."""
    request: dict[str, Any] = {
        "cluster": task.cluster,
        "taskDefinition": task.task_definition_arn,
        "count": 1,
        "startedBy": f"{STARTED_BY_PREFIX}{lineage}"[:128],
        "clientToken": client_token(task.cluster, task.family, lineage, sequence),
        "tags": [{"key": TAG_LINEAGE, "value": first_task[:256]},
                 {"key": TAG_SEQUENCE, "value": str(sequence)},
                 {"key": TAG_RESTART_OF, "value": task.task_arn[:256]}],
    }
    if task.capacity_provider:
        request["capacityProviderStrategy"] = [{"capacityProvider": task.capacity_provider, "weight": 1}]
    elif task.launch_type:
        request["launchType"] = task.launch_type
    overrides = clean_overrides(task.overrides)
    if overrides:
        request["overrides"] = overrides
    if task.group and task.group != f"family:{task.family}":
        request["group"] = task.group
    if task.enable_execute_command:
        request["enableExecuteCommand"] = True
    note: str | None = None
    network = policy.spec.network
    if task.subnets or _fargate(task):
        if network is not None:
            config: dict[str, Any] = {"subnets": list(network.subnets), "assignPublicIp": network.assignPublicIp}
            if network.securityGroups:
                config["securityGroups"] = list(network.securityGroups)
            request["networkConfiguration"] = {"awsvpcConfiguration": config}
        elif task.subnets:
            request["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": list(task.subnets)}}
            note = ("the policy has no network: re-run in the stopped task's subnets with the VPC's default "
                    "security group")
        else:
            note = "the policy has no network and the event names no subnet: RunTask will likely refuse"
    return request, note


def _prune(lineages: dict[str, Lineage], keep: str) -> dict[str, Lineage]:
    if len(lineages) <= MAX_LINEAGES:
        return lineages
    # Unfinished lineages first, then the most recently updated: the oldest finished ones go first.
    ranked = sorted((k for k in lineages if k != keep),
                    key=lambda k: (lineages[k].status not in ("done", "gave-up"), lineages[k].updated_at),
                    reverse=True)
    kept = set(ranked[:MAX_LINEAGES - 1]) | {keep}
    return {k: v for k, v in lineages.items() if k in kept}


def _with(state: RestartState, lineage: Lineage) -> RestartState:
    attempts = lineage.attempts[-MAX_ATTEMPTS_KEPT:]
    seen = lineage.seen_tasks[-MAX_SEEN_TASKS:]
    lineage = lineage.model_copy(update={"attempts": attempts, "seen_tasks": seen})
    return state.model_copy(update={"lineages": _prune({**state.lineages, lineage.id: lineage}, lineage.id)})


def _give_up(*, cluster: str, family: str, lineage: Lineage, why: str, now: datetime,
             state: RestartState) -> tuple[Decision, RestartState]:
    reason = f"gave up restarting {cluster}/{family} (lineage of {lineage.first_task}): {why}"
    note = Notify(subject=f"Gave up restarting {cluster}/{family}", reason=reason,
                  detail={"cluster": cluster, "family": family, "lineage": lineage.id, "firstTask": lineage.first_task,
                          "restarts": lineage.restarts})
    gave_up = lineage.model_copy(update={"status": "gave-up", "updated_at": now})
    return Decision(outcome="gave-up", reason=reason, actions=(note,)), _with(state, gave_up)


def _queue(*, policy: TaskPolicy, lineage: Lineage, request: dict[str, Any], why: str, now: datetime,
           state: RestartState, min_delay: int = 0) -> tuple[Decision, RestartState]:
    """Queue the lineage's next re-run with its back-off."""
    cluster, family = policy.metadata.cluster, policy.metadata.family
    restarts, sequence = lineage.restarts + 1, lineage.sequence + 1
    delay = max(backoff_seconds(restarts, policy.spec.restart), min_delay)
    not_before = now + timedelta(seconds=delay)
    token = client_token(cluster, family, lineage.id, sequence)
    request = {**request, "clientToken": token,
               "tags": [t if t.get("key") != TAG_SEQUENCE else {"key": TAG_SEQUENCE, "value": str(sequence)}
                        for t in request.get("tags", [])]}
    reason = (f"{why}; re-run {restarts} of {policy.spec.restart.maxRestarts} in {delay}s "
              f"(back-off from {policy.spec.restart.initialBackoffSeconds}s, at most "
              f"{policy.spec.restart.maxBackoffSeconds}s)")
    message = RestartMessage(cluster=cluster, family=family, lineage=lineage.id, first_task=lineage.first_task,
                             sequence=sequence, restarts=restarts, not_before=not_before, request=request,
                             reason=reason, account=policy.metadata.account, region=policy.metadata.region)
    attempt = Attempt(sequence=sequence, client_token=token, queued_at=now, not_before=not_before)
    queued = lineage.model_copy(update={"restarts": restarts, "sequence": sequence, "status": "waiting",
                                        "attempts": [*lineage.attempts, attempt], "updated_at": now})
    action = EnqueueRestart(cluster=cluster, family=family, delay_seconds=delay,
                            message=message.model_dump(mode="json", exclude_none=True), reason=reason)
    return Decision(outcome="restart-queued", reason=reason, actions=(action,)), _with(state, queued)


# --------------------------------------------------------------------------- healer: a standalone task stopped

def decide_task_stop(*, task: TaskStop, cls: Classification, policy: TaskPolicy, state: RestartState,
                     now: datetime) -> tuple[Decision, RestartState]:
    """A standalone task of a managed family stopped: re-run it, give up, or note that it finished."""
    from autopilot.decide.classify import StopKind

    cluster, family = policy.metadata.cluster, policy.metadata.family
    known = lineage_of(task)
    lineage_id = known or new_lineage_id(task)
    lineage = state.lineages.get(lineage_id)
    if lineage is None:
        first = task.task_arn if known is None else f"{task.task_arn.rsplit('/', 1)[0]}/{lineage_id}"
        lineage = Lineage(id=lineage_id, first_task=first, updated_at=now)
    what = f"task {task.task_id} of {task.family}: {cls.explanation}"
    # Task IDs, not ARNs: an ARN carries the cluster name (up to 255 characters) and IDs are unique in it.
    if task.task_id in lineage.seen_tasks or task.task_arn in lineage.seen_tasks:  # ARNs: written before 0.2
        return Decision(outcome="skipped:duplicate-task", reason=f"{what}; this stop was already handled"), state
    lineage = lineage.model_copy(update={"seen_tasks": [*lineage.seen_tasks, task.task_id], "updated_at": now})

    if cls.kind == StopKind.NORMAL:
        if known is None and lineage_id not in state.lineages:
            return Decision(outcome="ignored:normal", reason=what), state
        done = lineage.model_copy(update={"status": "done"})
        return Decision(outcome="lineage-done", reason=f"{what}; the lineage finished"), _with(state, done)
    if not cls.restartable:
        return Decision(outcome=f"ignored:{cls.kind.value}", reason=f"{what}; not re-run (never on an unknown stop)"), \
            state
    if lineage.status == "gave-up":
        return Decision(outcome="skipped:gave-up", reason=f"{what}; the lineage already gave up"), _with(state, lineage)

    restart = policy.spec.restart
    why = what
    if restart.resetAfterSeconds > 0 and task.ran_seconds >= restart.resetAfterSeconds and lineage.restarts:
        why += f"; it ran {int(task.ran_seconds)}s (>= resetAfterSeconds {restart.resetAfterSeconds}): count reset"
        lineage = lineage.model_copy(update={"restarts": 0})
    if lineage.restarts >= restart.maxRestarts:
        return _give_up(cluster=cluster, family=family, lineage=lineage,
                        why=f"{what}; {lineage.restarts} re-runs used (maxRestarts {restart.maxRestarts})",
                        now=now, state=state)
    request, note = run_task_request(task, policy, lineage=lineage.id, first_task=lineage.first_task,
                                     sequence=lineage.sequence + 1)
    if note:
        why += f"; {note}"
    return _queue(policy=policy, lineage=lineage, request=request, why=why, now=now, state=state)


# --------------------------------------------------------------------------- restarter: a queued re-run is due

def decide_run(*, message: RestartMessage, policy: TaskPolicy, state: RestartState,
               now: datetime) -> tuple[Decision, RestartState]:
    """Claim the re-run and start it; or re-queue it (not yet due), or skip it (duplicate, superseded)."""
    cluster, family = message.cluster, message.family
    what = f"re-run {message.restarts} of {cluster}/{family} (lineage {message.lineage}, #{message.sequence})"
    lineage = state.lineages.get(message.lineage) or Lineage(
        id=message.lineage, first_task=message.first_task, restarts=message.restarts, sequence=message.sequence,
        status="waiting", updated_at=now)
    if lineage.status == "gave-up":
        return Decision(outcome="skipped:gave-up", reason=f"{what}: the lineage gave up"), state
    attempt = lineage.attempt(message.sequence)
    if attempt is not None and attempt.status == "started":
        return Decision(outcome="skipped:duplicate", reason=f"{what}: already started (a redelivered message)"), state
    if attempt is not None and attempt.status == "failed":
        return Decision(outcome="skipped:duplicate", reason=f"{what}: already failed and retried"), state
    if (attempt is not None and attempt.status == "claimed" and attempt.claimed_at is not None
            and now - attempt.claimed_at < timedelta(seconds=STALE_CLAIM_SECONDS)):
        return Decision(outcome="skipped:in-flight", reason=f"{what}: another invocation is starting it"), state
    if attempt is None and lineage.sequence > message.sequence:
        return Decision(outcome="skipped:superseded",
                        reason=f"{what}: the lineage is already at #{lineage.sequence}"), state
    remaining = (message.not_before - now).total_seconds()
    if remaining >= 1:
        delay = int(remaining + 0.999)
        reason = f"{what}: due at {message.not_before.isoformat()}, queued again for {min(delay, 900)}s more"
        requeue = EnqueueRestart(cluster=cluster, family=family, delay_seconds=delay,
                                 message=message.model_dump(mode="json", exclude_none=True), reason=reason,
                                 requeue=True)
        return Decision(outcome="restart-requeued", reason=reason, actions=(requeue,)), state
    stale = " (retrying a claim whose invocation died, same client token)" if attempt is not None and \
        attempt.status == "claimed" else ""
    claimed = (attempt or Attempt(sequence=message.sequence, client_token=str(message.request.get("clientToken", "")),
                                  queued_at=now, not_before=message.not_before)
               ).model_copy(update={"status": "claimed", "claimed_at": now})
    attempts = [a for a in lineage.attempts if a.sequence != message.sequence] + [claimed]
    lineage = lineage.model_copy(update={"attempts": sorted(attempts, key=lambda a: a.sequence),
                                         "sequence": max(lineage.sequence, message.sequence), "updated_at": now})
    reason = f"{what}{stale}: {message.reason}" if message.reason else f"{what}{stale}"
    action = RunTask(cluster=cluster, family=family, request=message.request, reason=reason)
    return Decision(outcome="restart-run", reason=reason, actions=(action,)), _with(state, lineage)


def decide_started(*, message: RestartMessage, state: RestartState, now: datetime) -> tuple[Decision, RestartState]:
    """Record that RunTask started the re-run (a redelivery of its message then changes nothing)."""
    lineage = state.lineages.get(message.lineage)
    attempt = lineage.attempt(message.sequence) if lineage else None
    if lineage is None or attempt is None:
        return Decision(outcome="skipped:no-attempt", reason="no claimed attempt to confirm"), state
    started = attempt.model_copy(update={"status": "started", "started_at": now})
    attempts = [a if a.sequence != message.sequence else started for a in lineage.attempts]
    lineage = lineage.model_copy(update={"attempts": attempts, "status": "active", "updated_at": now})
    return Decision(outcome="restart-started", reason=f"re-run #{message.sequence} started"), _with(state, lineage)


def decide_launch_failed(*, message: RestartMessage, error: str, policy: TaskPolicy, state: RestartState,
                         now: datetime) -> tuple[Decision, RestartState]:
    """RunTask failed (no capacity, refused): count it as a re-run and retry with the back-off."""
    lineage = state.lineages.get(message.lineage) or Lineage(
        id=message.lineage, first_task=message.first_task, restarts=message.restarts, sequence=message.sequence,
        status="waiting", updated_at=now)
    attempt = lineage.attempt(message.sequence)
    if attempt is not None and attempt.status in ("started", "failed"):
        return Decision(outcome="skipped:duplicate",
                        reason=f"re-run #{message.sequence} was already {attempt.status}"), state
    failed = (attempt or Attempt(sequence=message.sequence, client_token=str(message.request.get("clientToken", "")),
                                 queued_at=now, not_before=message.not_before)
              ).model_copy(update={"status": "failed", "error": error[:500]})
    attempts = [a for a in lineage.attempts if a.sequence != message.sequence] + [failed]
    lineage = lineage.model_copy(update={"attempts": sorted(attempts, key=lambda a: a.sequence),
                                         "restarts": max(lineage.restarts, message.restarts),
                                         "sequence": max(lineage.sequence, message.sequence), "updated_at": now})
    why = f"re-run {message.restarts} of {message.cluster}/{message.family} could not be started: {error[:300]}"
    if lineage.restarts >= policy.spec.restart.maxRestarts:
        return _give_up(cluster=message.cluster, family=message.family, lineage=lineage,
                        why=f"{why}; {lineage.restarts} re-runs used (maxRestarts "
                            f"{policy.spec.restart.maxRestarts})", now=now, state=state)
    return _queue(policy=policy, lineage=lineage, request=message.request, why=why, now=now, state=state,
                  min_delay=MIN_RETRY_SECONDS)
