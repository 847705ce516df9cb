"""Per-service rollout bookkeeping: deployments seen, last known good, bad revisions, rollbacks.

Owned by the rollouts capability (issue 3). Fields are filled in there.
"""

from __future__ import annotations

from autopilot.models.state_base import StateModel


class RolloutState(StateModel):
    """Last known good (LKG) revision and what is known about deployments of the service."""

    lkg: str | None = None  # task definition ARN of the most recent completed deployment not marked bad
    bad_revisions: list[str] = []
