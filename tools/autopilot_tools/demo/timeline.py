"""What a scenario run produced: timeline rows, checks, and samples for the charts.

Rows come from what the system recorded (the audit trail, SNS notifications, the handlers' results
and logs, the emulator's state), never from what the demo expected to happen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    at: float  # seconds since the scenario's T+0 (virtual)
    kind: str  # story | event | undelivered | decision | notify | ecs | log | error | quiet | check
    actor: str  # CloudWatch, ECS, scaler, reconciler, healer, ... , demo
    text: str
    target: str = ""  # cluster/service or cluster/family
    outcome: str = ""
    reason: str = ""
    calls: list[str] = field(default_factory=list)
    result: str = ""  # the target's state after the decision: desired count, revision, capacity
    functions: list[str] = field(default_factory=list)  # for events: the functions it was delivered to
    passed: bool | None = None  # for checks
    mode: str = ""


@dataclass
class Check:
    """One outcome a scenario states in advance; the demo fails unless every check passes."""

    at: float
    description: str
    expected: str
    actual: str
    passed: bool


@dataclass
class ServiceSample:
    at: float
    desired: int
    revision: str
    capacity: str


@dataclass
class AlarmSample:
    at: float
    state: str


@dataclass
class ScenarioResult:
    name: str
    title: str
    summary: str
    status: str = "pending"  # passed | failed | skipped
    skip_reason: str = ""
    error: str = ""
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    services: dict[str, list[ServiceSample]] = field(default_factory=dict)  # "prod/web" -> samples
    alarms: dict[str, list[AlarmSample]] = field(default_factory=dict)  # alarm -> samples
    alarm_owner: dict[str, str] = field(default_factory=dict)  # alarm -> "prod/web"
    notifications: list[str] = field(default_factory=list)
    invocations: dict[str, int] = field(default_factory=dict)  # function -> count
    simulated_seconds: float = 0.0
    wall_seconds: float = 0.0
    started_at: str = ""  # the scenario's T+0 as an ISO time

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expectations"] = data.pop("checks")
        data["timeline"] = data.pop("rows")
        return data
