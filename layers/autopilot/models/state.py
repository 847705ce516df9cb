"""Per-service state kept in the table (one item per service, written with optimistic locking)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from autopilot.models.healing_state import HealingState, RestartState
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state_base import StateModel

MAX_REMEMBERED_EVENTS = 50


class ScalingState(StateModel):
    """Cooldown bookkeeping with Application Auto Scaling semantics."""

    scale_out_until: datetime | None = None
    scale_out_base: int | None = None  # capacity before the scale-out that started the cooldown
    scale_out_target: int | None = None  # desired count that scale-out (and later differences) set
    scale_in_until: datetime | None = None
    last_action_at: datetime | None = None
    last_desired: int | None = None


class TargetTrackingState(StateModel):
    """What targetTracking rules remember between reconciler runs (decide/target_tracking.py).

    ``peaks`` keeps, per rule key, the recommendations of the scale-in stabilization window that can
    still be its maximum (each newer than and above every later one), as ``[iso time, tasks]``;
    ``changes`` the recent desired-count changes the rules made, ``[iso time, +/-tasks]``, for rate limits;
    ``running_seen`` the running count of the previous run: the tasks that produced the next datapoint.
    """

    peaks: dict[str, list[tuple[datetime, int]]] = Field(default_factory=dict)
    changes: list[tuple[datetime, int]] = Field(default_factory=list)
    running_seen: tuple[datetime, int] | None = None  # running count at the previous evaluation
    # Robust rules (sizing: robust): per rule key, the window of loads in tasks at the target,
    # ``[datapoint time, load]`` oldest first (15 minutes by default: ~15 pairs).
    loads: dict[str, list[tuple[datetime, float]]] = Field(default_factory=dict)
    scales: dict[str, float] = Field(default_factory=dict)  # predictive rules: the forecast's calibration


class ServiceState(StateModel):
    """Everything ecs-autopilot remembers about one service.

    Later capabilities (rollout, healing) add their own sub-models here so one conditional write
    covers every decision about the service.
    """

    paused: bool = False
    paused_reason: str | None = None
    scaling: ScalingState = Field(default_factory=ScalingState)
    target_tracking: TargetTrackingState = Field(default_factory=TargetTrackingState)
    rollout: RolloutState = Field(default_factory=RolloutState)
    healing: HealingState = Field(default_factory=HealingState)
    restarts: RestartState = Field(default_factory=RestartState)  # only for TASK# keys (TaskPolicy)
    # Keys of events already applied to this service: a retried or duplicated event is a no-op.
    applied_events: list[str] = Field(default_factory=list)

    def remember(self, event_key: str) -> ServiceState:
        events = [e for e in self.applied_events if e != event_key] + [event_key]
        return self.model_copy(update={"applied_events": events[-MAX_REMEMBERED_EVENTS:]})

    def has_applied(self, event_key: str) -> bool:
        return event_key in self.applied_events


class Snapshot(BaseModel):
    """A state as read, with the version a conditional write must still find."""
    model_config = ConfigDict(defer_build=True)

    key: str
    state: ServiceState
    version: int = 0
