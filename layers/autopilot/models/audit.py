"""The audit trail's record of one decision (written by the store, shown by ``autopilot history``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntry(BaseModel):
    """One decision, as written to the audit trail and shown by ``autopilot history``."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    at: datetime
    target: str  # SVC#cluster#service, TASK#cluster#family, or "-" for events that name nothing managed
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

    @property
    def cluster_service(self) -> tuple[str, str]:
        parts = self.target.split("#")
        return (parts[1], parts[2]) if len(parts) == 3 else ("-", "-")
