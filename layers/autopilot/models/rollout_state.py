"""Per-service rollout bookkeeping: deployments seen, last known good, bad revisions, rollbacks.

Owned by the rollouts capability (issue 3). Everything here is plain data; the rules that change it
live in ``autopilot.decide.rollout`` (pure functions, time passed in).

Field guide (what ``autopilot get`` shows under ``rollout``):

- ``lkg``: task definition ARN of the most recent deployment that completed and was not later
  marked bad (contract section 2). ``lkg_deployment`` names that deployment.
- ``bad_revisions``: task definition ARNs marked bad (failed deployment, crash loop, rollback alarm),
  with when and why in ``bad_marks``. A revision is rehabilitated only by a deployment of it that
  *started after* it was marked and then completed (a deliberate redeploy that reached steady state).
- ``deployments``: the most recent deployments seen (newest first, ordered by the deployment's own
  start time, never by event arrival). ``current_deployment`` is the newest of them.
- ``rollbacks``: rollbacks decided (at most one per failing revision), with retry bookkeeping for the
  reconciler.
- ``last_recycle_at``: when a recycle alarm last forced a new deployment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from autopilot.models.state_base import StateModel

DeploymentStatus = Literal["IN_PROGRESS", "COMPLETED", "FAILED"]
RollbackStatus = Literal["pending", "done", "superseded", "gave-up", "expired"]

MAX_DEPLOYMENTS = 20
MAX_ROLLBACKS = 20
MAX_BAD_REVISIONS = 50


def revision_id(task_definition: str | None) -> str | None:
    """``family:revision`` of a task definition ARN or ``family:revision`` string (None if unknown).

    DescribeServices returns full ARNs, but services updated with ``family:revision`` echo that form
    in some tools and emulators; comparisons always go through this.
    """
    if not task_definition:
        return None
    return task_definition.rsplit("task-definition/", 1)[-1]


def same_revision(a: str | None, b: str | None) -> bool:
    ra, rb = revision_id(a), revision_id(b)
    return ra is not None and ra == rb


class DeploymentRecord(StateModel):
    """One ECS deployment of the service, as far as events and DescribeServices told us."""

    id: str
    task_definition: str | None = None  # None: DescribeServices showed no matching deployment (not guessed)
    started_at: datetime | None = None  # the deployment's createdAt (DescribeServices) or its first event's updatedAt
    updated_at: datetime | None = None  # the latest updatedAt seen for it
    status: DeploymentStatus = "IN_PROGRESS"
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    ecs_rollback: bool = False  # started by the ECS circuit breaker rolling back
    reason: str | None = None

    @property
    def order_key(self) -> datetime | None:
        """What orders deployments: their own start time; else the earliest time known about them."""
        return self.started_at or self.updated_at


class BadMark(StateModel):
    marked_at: datetime
    reason: str


class RollbackRecord(StateModel):
    """A rollback decided for one failing revision (at most one per failing revision)."""

    failing_revision: str
    to_revision: str
    decided_at: datetime
    reason: str
    attempts: int = 1
    last_attempt_at: datetime
    # pending until the reconciler sees the service on to_revision (done), sees a newer deployment
    # (superseded), runs out of retries (gave-up), or finds it too old to act on safely (expired)
    status: RollbackStatus = "pending"


class RolloutState(StateModel):
    """Last known good (LKG) revision and what is known about deployments of the service."""

    lkg: str | None = None  # task definition ARN of the most recent completed deployment not marked bad
    lkg_deployment: str | None = None  # the deployment that made it LKG (None when carried over)
    bad_revisions: list[str] = Field(default_factory=list)
    bad_marks: dict[str, BadMark] = Field(default_factory=dict)  # revision_id -> when and why
    deployments: list[DeploymentRecord] = Field(default_factory=list)  # newest first
    current_deployment: DeploymentRecord | None = None  # the newest of ``deployments`` (kept in step by decide.rollout)
    rollbacks: list[RollbackRecord] = Field(default_factory=list)  # newest first
    last_recycle_at: datetime | None = None

    def is_bad(self, task_definition: str | None) -> bool:
        rid = revision_id(task_definition)
        return rid is not None and any(revision_id(b) == rid for b in self.bad_revisions)

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def rollback_for(self, failing_revision: str) -> RollbackRecord | None:
        return next((r for r in self.rollbacks if same_revision(r.failing_revision, failing_revision)), None)

    def pending_rollback(self) -> RollbackRecord | None:
        """The newest rollback still waiting to be seen done (older pending ones were superseded)."""
        return next((r for r in self.rollbacks if r.status == "pending"), None)
