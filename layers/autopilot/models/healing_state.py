"""Per-service healing bookkeeping (failure windows, OOM bumps, Spot fallback holds) and per-family
restart lineages. Owned by the healing capability (issue 4); the rules that change it live in
``autopilot.decide.healing`` and ``autopilot.decide.restarts`` (pure functions, time passed in).

Field guide (what ``autopilot get`` shows under ``healing`` / ``restarts``):

- ``crash``: per task-definition revision (``family:revision``) the failed stops counted in the
  crash-loop window: task ARN (each task counts once, however often its events arrive) and when it
  stopped. ``tripped_at`` is set once the window reached ``failures`` and a rollback/notification was
  decided: later failures of that revision change nothing.
- ``oom``: per revision, the one right-sizing decided for it (derived, at the cap, or not applicable),
  so ten OOM kills of one revision produce one new revision, not ten.
- ``spot``: Spot interruptions and Spot placement failures in the window, and the active ``hold``
  (the strategy saved before falling back to on-demand, and when the reconciler restores it).
- ``lineages`` (TaskPolicy families): each chain of re-runs of one standalone task, keyed by the ID
  of its first task; ``restarts`` counts re-runs since the last reset, ``sequence`` every re-run ever
  (it makes RunTask client tokens unique), ``attempts`` what the restarter claimed and started.

Every list and map here is bounded, so a state item stays far below DynamoDB's 400 KB.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from autopilot.models.state_base import StateModel

MAX_REVISIONS = 20  # crash windows / OOM records kept (oldest dropped first)
MAX_LINEAGES = 100  # restart lineages kept per family
MAX_ATTEMPTS_KEPT = 10  # attempt records kept per lineage


class FailureMark(StateModel):
    """One counted event: a failed task (by task ARN) or a Spot placement failure (by event id)."""

    key: str
    at: datetime
    kind: str


class CrashWindow(StateModel):
    failures: list[FailureMark] = Field(default_factory=list)  # oldest first, within the window
    tripped_at: datetime | None = None
    verdict: str | None = None  # rollback | notify | not-current | bad-already ...
    updated_at: datetime | None = None


OomOutcome = Literal["derived", "at-cap", "not-applicable"]


class OomRecord(StateModel):
    outcome: OomOutcome
    at: datetime
    derivation_id: str | None = None
    containers: list[str] = Field(default_factory=list)
    task_memory_from: int | None = None
    task_memory_to: int | None = None
    note: str | None = None


class SpotHold(StateModel):
    """A fallback to on-demand in force: what to restore, and when."""

    saved_strategy: list[dict[str, Any]]
    applied_strategy: list[dict[str, Any]]
    since: datetime
    until: datetime


class SpotState(StateModel):
    marks: list[FailureMark] = Field(default_factory=list)  # interruptions / placement failures in the window
    hold: SpotHold | None = None
    last_fallback_at: datetime | None = None
    last_restore_at: datetime | None = None


class HealingState(StateModel):
    crash: dict[str, CrashWindow] = Field(default_factory=dict)  # revision id -> window
    oom: dict[str, OomRecord] = Field(default_factory=dict)  # revision id -> the one bump decided
    spot: SpotState = Field(default_factory=SpotState)


AttemptStatus = Literal["queued", "claimed", "started", "failed"]


class Attempt(StateModel):
    """One re-run of a lineage: queued by the healer, claimed and started by the restarter."""

    sequence: int
    client_token: str
    status: AttemptStatus = "queued"
    queued_at: datetime
    not_before: datetime
    claimed_at: datetime | None = None
    started_at: datetime | None = None
    error: str | None = None


class Lineage(StateModel):
    id: str  # ID of the first task of the lineage
    first_task: str  # its ARN
    restarts: int = 0  # re-runs since the last reset (a run of resetAfterSeconds or more)
    sequence: int = 0  # re-runs ever (unique client tokens)
    seen_tasks: list[str] = Field(default_factory=list)  # stopped task ARNs already handled
    attempts: list[Attempt] = Field(default_factory=list)  # newest last
    status: Literal["active", "waiting", "gave-up", "done"] = "active"
    updated_at: datetime

    def attempt(self, sequence: int) -> Attempt | None:
        return next((a for a in self.attempts if a.sequence == sequence), None)


class RestartState(StateModel):
    """Per standalone-task family: restart lineages (TaskPolicy)."""

    lineages: dict[str, Lineage] = Field(default_factory=dict)


class RestartMessage(StateModel):
    """The restart queue's message: one re-run of a lineage, due at ``not_before``.

    SQS delays a message at most 900 s; a longer back-off re-queues the message until it is due.
    ``request`` holds RunTask's parameters, ``clientToken`` included (deterministic per lineage and
    sequence, so a retried RunTask of the same attempt is idempotent on AWS).
    """

    v: Literal[1] = 1
    cluster: str
    family: str
    lineage: str
    first_task: str
    sequence: int
    restarts: int  # which re-run since the last reset (1 = first), for back-off and give-up
    not_before: datetime
    request: dict[str, Any]
    reason: str = ""
    account: str | None = None  # where the family runs, when not the hub's own account and region (issue 13)
    region: str | None = None
