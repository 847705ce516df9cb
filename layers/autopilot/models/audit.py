"""The audit trail's record of one decision (written by the store, shown by ``autopilot history``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autopilot.models.place import Place, split_target


class AuditEntry(BaseModel):
    """One decision, as written to the audit trail and shown by ``autopilot history``."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    at: datetime
    # SVC#cluster#service, TASK#cluster#family (SVC#account#region#cluster#service elsewhere than the hub's own
    # account and region), or "-" for events that name nothing managed
    target: str
    event_id: str
    source: str  # which function decided
    trigger: str  # what happened ("alarm web-cpu-high -> ALARM", "reconcile", ...)
    outcome: str  # "scale-out", "skipped:cooldown", "ignored:unknown-alarm", "rejected:invalid-event", ...
    reason: str
    mode: str = "enforce"
    actions: list[dict[str, Any]] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list)  # AWS calls made (or, in dry-run, that would have been)
    error: str | None = None
    actor: str | None = None  # who, for operator actions (apply, delete, pause, resume): an AWS identity ARN
    changes: list[str] = Field(default_factory=list)  # what an operator action changed: "field: old -> new"

    place: str | None = None  # "account/region" of the event or target when it is not the hub's own

    @property
    def cluster_service(self) -> tuple[str, str]:
        found = split_target(self.target)
        return (found[1], found[2]) if found else ("-", "-")

    @property
    def target_place(self) -> Place | None:
        """The target's place (None: the hub's own, or no target); for "-" targets, the event's if recorded."""
        found = split_target(self.target)
        if found is not None:
            return found[0]
        if self.place and "/" in self.place:
            account, region = self.place.split("/", 1)
            return Place(account, region)
        return None
