"""Per-service healing bookkeeping: failure windows, OOM bumps, Spot fallback holds.

Owned by the healing capability (issue 4). Fields are filled in there.
"""

from __future__ import annotations

from autopilot.models.state_base import StateModel


class HealingState(StateModel):
    pass


class RestartState(StateModel):
    """Per standalone-task family: restart lineages (TaskPolicy)."""

    pass
