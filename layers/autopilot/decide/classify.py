"""Why did a task stop? A pure, table-driven classification of "ECS Task State Change" STOPPED events.

Sources: aws-facts.md section 1 (stop codes, stopped reasons, container reasons, exit codes) and the
ECS developer guide's "Stopped tasks error codes". The rules, first match wins:

1. Spot interruption: stop code ``SpotInterruption``; or ``TerminationNotice`` whose reason says
   "Your Spot Task was interrupted." or whose capacity provider is ``FARGATE_SPOT``.
2. Start failure: stop code ``TaskFailedToStart``, or a stopped/container reason that starts with a
   start error (``CannotPullContainerError`` = image pull, ``ResourceInitializationError``,
   ``CannotStartContainerError``); other ``TaskFailedToStart`` reasons are "start-failure".
3. OOM: a container reason (or the stopped reason) starting ``OutOfMemoryError``.
4. Health check: stopped reason "Task failed ELB health checks ..." (classic ELB and target-group
   forms) or "Task failed container health checks".
5. Essential container exited (stop code ``EssentialContainerExited``, or no stop code and the reason
   "Essential container in task exited"). Events carry no ``essential`` flag; but ECS only stops a
   task with this code because an essential container exited, so the exit codes decide:
   - any exit code other than 0, 137 and 143 -> crash;
   - otherwise, some container exited 0 -> normal (a finished job; 137/143 are the other
     containers that ECS then stopped with SIGTERM, or SIGKILL after ``stopTimeout``);
   - otherwise a 137 (SIGKILL without an OOM reason, no clean exit anywhere) -> crash;
   - otherwise only 143 -> normal (clean SIGTERM exit);
   - no exit code at all (containers missing or null) -> unknown: never a crash on no evidence.
6. ``UserInitiated`` -> normal (StopTask, whatever reason the user gave).
7. ``ServiceSchedulerInitiated`` with "Scaling activity initiated by (deployment ...)" or a
   deployment/scale-in reason -> normal; other scheduler reasons -> unknown.
8. ``TerminationNotice`` (not Spot) and ``InfrastructureHealth`` -> infrastructure: the host went
   away; not the task's fault, but a standalone task did not finish and is re-run.
9. Anything else (unknown stop codes, unknown reasons) -> unknown: audited, never a crash.

Exit codes are looked at only for rule 5: a non-zero exit after a user or scheduler stop (137 after
``stopTimeout``, 143 on SIGTERM) is the stop itself, not a failure.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from autopilot.models.task_events import Container, TaskStop

SPOT_REASON = "Your Spot Task was interrupted."
OOM_PREFIX = "OutOfMemoryError"
ESSENTIAL_EXITED = "Essential container in task exited"
SIGKILL, SIGTERM = 137, 143
SPOT_PROVIDERS = frozenset({"FARGATE_SPOT"})

class StopKind(StrEnum):
    NORMAL = "normal"
    CRASH = "crash"
    OOM = "oom"
    HEALTH_CHECK = "health-check"
    IMAGE_PULL = "image-pull"
    RESOURCE_INIT = "resource-init"
    CANNOT_START = "cannot-start"
    START_FAILURE = "start-failure"
    SPOT = "spot"
    INFRASTRUCTURE = "infrastructure"
    UNKNOWN = "unknown"


# What a crash loop counts (contract: "non-zero essential exit, failed health check, OOM, failed start").
FAILURES = frozenset({StopKind.CRASH, StopKind.OOM, StopKind.HEALTH_CHECK, StopKind.IMAGE_PULL,
                      StopKind.RESOURCE_INIT, StopKind.CANNOT_START, StopKind.START_FAILURE})
START_FAILURES = frozenset({StopKind.IMAGE_PULL, StopKind.RESOURCE_INIT, StopKind.CANNOT_START,
                            StopKind.START_FAILURE})
# A standalone task that stopped this way did not finish its work: re-run it.
RESTARTABLE = FAILURES | {StopKind.SPOT, StopKind.INFRASTRUCTURE}

_START_ERRORS: tuple[tuple[str, StopKind], ...] = (
    ("CannotPullContainerError", StopKind.IMAGE_PULL),
    ("ResourceInitializationError", StopKind.RESOURCE_INIT),
    ("CannotStartContainerError", StopKind.CANNOT_START),
)
_HEALTH_CHECK_PREFIXES = ("Task failed ELB health checks", "Task failed container health checks")
_SCHEDULER_NORMAL_PREFIXES = (
    "Scaling activity initiated by",  # scale-in and deployment replacement
    "Service deployment replaced",
    "Deployment replaced",
)


class Classification(BaseModel):
    """The verdict, with the evidence (culprit container, exit code) and a one-line explanation."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    kind: StopKind
    explanation: str
    container: str | None = None
    exit_code: int | None = None
    oom_containers: tuple[str, ...] = ()

    @property
    def failure(self) -> bool:
        return self.kind in FAILURES

    @property
    def restartable(self) -> bool:
        return self.kind in RESTARTABLE


def classify(task: TaskStop) -> Classification:
    """Classify one stopped task. Pure; never raises on odd input (unknown is a valid answer)."""
    code = task.stop_code
    reason = (task.stopped_reason or "").strip()
    short = _short(reason)

    if code == "SpotInterruption" or (code == "TerminationNotice" and (
            SPOT_REASON.lower() in reason.lower() or (task.capacity_provider or "") in SPOT_PROVIDERS)):
        return Classification(kind=StopKind.SPOT, explanation=f"Spot capacity was reclaimed ({code}: {short})")

    start = _start_error(reason, task.containers)
    if start is not None:
        kind, container, text = start
        return Classification(kind=kind, container=container,
                              explanation=f"task failed to start: {_short(text)}")
    if code == "TaskFailedToStart":
        return Classification(kind=StopKind.START_FAILURE, explanation=f"task failed to start: {short or 'no reason'}")

    oom = tuple(c.name for c in task.containers if (c.reason or "").startswith(OOM_PREFIX))
    if oom or reason.startswith(OOM_PREFIX):
        culprit = next((c for c in task.containers if c.name in oom), None)
        return Classification(kind=StopKind.OOM, container=culprit.name if culprit else None,
                              exit_code=culprit.exit_code if culprit else None, oom_containers=oom,
                              explanation=f"container {', '.join(oom) or '?'} was killed for using too much memory")

    if reason.startswith(_HEALTH_CHECK_PREFIXES):
        return Classification(kind=StopKind.HEALTH_CHECK, explanation=short)

    if code == "EssentialContainerExited" or (code is None and reason.startswith(ESSENTIAL_EXITED)):
        return _essential_exit(task.containers)

    if code == "UserInitiated":
        return Classification(kind=StopKind.NORMAL, explanation=f"stopped by a user ({short or 'no reason given'})")

    if code == "ServiceSchedulerInitiated":
        if reason.startswith(_SCHEDULER_NORMAL_PREFIXES):
            return Classification(kind=StopKind.NORMAL, explanation=f"stopped by the service scheduler: {short}")
        return Classification(kind=StopKind.UNKNOWN,
                              explanation=f"stopped by the service scheduler for a reason not known here: {short}")

    if code in ("TerminationNotice", "InfrastructureHealth"):
        return Classification(kind=StopKind.INFRASTRUCTURE,
                              explanation=f"the task's infrastructure went away ({code}: {short or 'no reason'})")

    return Classification(kind=StopKind.UNKNOWN,
                          explanation=f"stop code {code or 'none'} with reason {short or 'none'!r} is not known here")


def _start_error(reason: str, containers: tuple[Container, ...]) -> tuple[StopKind, str | None, str] | None:
    for prefix, kind in _START_ERRORS:
        if reason.startswith(prefix):
            return kind, None, reason
        for c in containers:
            if (c.reason or "").startswith(prefix):
                return kind, c.name, c.reason or ""
    return None


def _essential_exit(containers: tuple[Container, ...]) -> Classification:
    exited = [c for c in containers if c.exit_code is not None]
    if not exited:
        return Classification(kind=StopKind.UNKNOWN,
                              explanation="an essential container exited but the event reports no exit code")
    bad = next((c for c in exited if c.exit_code not in (0, SIGKILL, SIGTERM)), None)
    if bad is not None:
        return Classification(kind=StopKind.CRASH, container=bad.name, exit_code=bad.exit_code,
                              explanation=f"essential container {bad.name} exited with code {bad.exit_code}")
    if any(c.exit_code == 0 for c in exited):
        return Classification(kind=StopKind.NORMAL, explanation="an essential container exited with code 0")
    killed = next((c for c in exited if c.exit_code == SIGKILL), None)
    if killed is not None:
        return Classification(kind=StopKind.CRASH, container=killed.name, exit_code=SIGKILL,
                              explanation=f"essential container {killed.name} was killed (exit 137, SIGKILL, "
                              "no OOM reason reported)")
    return Classification(kind=StopKind.NORMAL, explanation="containers exited cleanly on SIGTERM (exit 143)")


def _short(text: str, limit: int = 200) -> str:
    """Reasons can be 1024 characters; audit lines and notifications get the start of them."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
