"""What a decision asks the executor to do. Each action carries the reason it was decided for.

Actions are data: they are audited, shown by the demo and dry-run, and executed idempotently by
``autopilot.execute``. ``mutating`` actions are skipped in dry-run mode; ``Notify`` always runs.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class BaseAction(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    mutating: ClassVar[bool] = True
    reason: str

    def describe(self) -> str:
        """One short human sentence, used in notifications, audit and the demo timeline."""
        return self.reason


class SetDesiredCount(BaseAction):
    kind: Literal["set-desired-count"] = "set-desired-count"
    cluster: str
    service: str
    desired: int
    previous: int

    def describe(self) -> str:
        verb = "Scaled out" if self.desired > self.previous else "Scaled in"
        return f"{verb} {self.cluster}/{self.service} from {self.previous} to {self.desired} tasks: {self.reason}"


class RollBack(BaseAction):
    """Point the service at a known good task definition (UpdateService taskDefinition)."""

    kind: Literal["rollback"] = "rollback"
    cluster: str
    service: str
    to_task_definition: str
    from_task_definition: str | None = None

    def describe(self) -> str:
        return (f"Rolled back {self.cluster}/{self.service} from {self.from_task_definition} "
                f"to {self.to_task_definition}: {self.reason}")


class DeriveRevision(BaseAction):
    """Register a changed copy of a task definition and roll the service to it (e.g. OOM right-sizing)."""

    kind: Literal["derive-revision"] = "derive-revision"
    cluster: str
    service: str
    base_task_definition: str
    # container name -> new memory (hard limit, ``memory``) in MiB. A container that has a soft limit
    # (``memoryReservation``) gets it scaled in proportion, unless container_memory_reservation names it.
    container_memory: dict[str, int] = Field(default_factory=dict)
    # container name -> new soft limit in MiB (explicit; wins over the proportional scaling)
    container_memory_reservation: dict[str, int] = Field(default_factory=dict)
    task_memory: int | None = None  # task-level memory in MiB
    task_cpu: int | None = None
    derivation_id: str  # deterministic: the same decision always derives the same revision

    def describe(self) -> str:
        return f"Derived a new revision of {self.base_task_definition} for {self.cluster}/{self.service}: {self.reason}"


class SetCapacityStrategy(BaseAction):
    kind: Literal["set-capacity-strategy"] = "set-capacity-strategy"
    cluster: str
    service: str
    strategy: list[dict[str, Any]]
    previous: list[dict[str, Any]] = Field(default_factory=list)

    def describe(self) -> str:
        names = "+".join(str(s.get("capacityProvider")) for s in self.strategy)
        return f"Switched {self.cluster}/{self.service} to capacity {names}: {self.reason}"


class Recycle(BaseAction):
    """Rolling restart of a service's tasks (UpdateService forceNewDeployment)."""

    kind: Literal["recycle"] = "recycle"
    cluster: str
    service: str

    def describe(self) -> str:
        return f"Recycled the tasks of {self.cluster}/{self.service}: {self.reason}"


class EnqueueRestart(BaseAction):
    """Put a standalone-task restart on the restart queue, delayed by its back-off."""

    kind: Literal["enqueue-restart"] = "enqueue-restart"
    cluster: str
    family: str
    delay_seconds: int
    message: dict[str, Any]
    # True when a back-off longer than SQS's 900 s is only carried forward: plumbing, announced once already.
    requeue: bool = False

    def describe(self) -> str:
        return f"Restart of {self.cluster}/{self.family} queued in {self.delay_seconds}s: {self.reason}"


class RunTask(BaseAction):
    kind: Literal["run-task"] = "run-task"
    cluster: str
    family: str
    request: dict[str, Any]  # RunTask parameters, clientToken included

    def describe(self) -> str:
        return f"Re-ran {self.cluster}/{self.family}: {self.reason}"


class Notify(BaseAction):
    """Announce something (give-ups, warnings) without changing anything."""

    mutating: ClassVar[bool] = False
    kind: Literal["notify"] = "notify"
    subject: str
    detail: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.subject}: {self.reason}"


Action = Annotated[
    SetDesiredCount | RollBack | DeriveRevision | SetCapacityStrategy | Recycle | EnqueueRestart | RunTask | Notify,
    Field(discriminator="kind"),
]


class Decision(BaseModel):
    """The outcome of one pure decision: what to do (maybe nothing) and why."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    outcome: str  # short machine-readable verdict: "scale-out", "skipped:cooldown", "ignored:unknown-alarm", ...
    reason: str  # the human "because"
    actions: tuple[Action, ...] = ()

    @property
    def mutating(self) -> bool:
        return any(a.mutating for a in self.actions)
