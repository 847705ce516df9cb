"""ECS events the healer acts on: "ECS Task State Change" (STOPPED) and "ECS Service Action".

The raw models mirror what EventBridge delivers (``detail`` mirrors DescribeTasks' Task with ISO
timestamps) and ignore fields they do not use. ``parse_healer_event`` turns either into a small,
frozen domain view (``TaskStop`` or ``ServiceAction``) with the names decisions need already
derived from the ARNs. Anything that cannot be acted on raises ``InvalidEvent``.

Shapes tolerated on purpose (all seen in published samples or documented):
- ``containers`` missing or empty, ``exitCode``/``reason`` absent or null;
- ``stopCode`` absent (older events) or a value this code does not know;
- ``taskDefinitionArn`` without a revision (the published EC2 2025 sample has none);
- reasons of up to 1024 characters (ECS truncates there);
- service ARNs in the old (``service/NAME``) and new (``service/CLUSTER/NAME``) formats.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autopilot.models.events import InvalidEvent, aware_time
from autopilot.models.validation import first_error

TASK_STATE_CHANGE = "ECS Task State Change"
SERVICE_ACTION = "ECS Service Action"
_ARN = re.compile(r"^arn:[\w-]+:ecs:[\w-]*:\d*:(?P<kind>[\w-]+)/(?P<rest>.+)$")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class RawContainer(_Loose):
    name: str = ""
    exitCode: int | None = None
    reason: str | None = None
    lastStatus: str | None = None


class RawTaskDetail(_Loose):
    taskArn: str = Field(min_length=1)
    clusterArn: str = Field(min_length=1)
    taskDefinitionArn: str = Field(min_length=1)
    lastStatus: str
    desiredStatus: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    group: str | None = None
    startedBy: str | None = None
    capacityProviderName: str | None = None
    launchType: str | None = None
    containers: list[RawContainer] | None = None
    overrides: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    stoppingAt: str | None = None
    stoppedAt: str | None = None
    executionStoppedAt: str | None = None
    version: int | None = None
    cpu: str | None = None
    memory: str | None = None
    enableExecuteCommand: bool | None = None

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value


class RawTaskEvent(_Loose):
    id: str = Field(min_length=1)
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    account: str | None = None  # set by EventBridge: where the task ran
    region: str | None = None
    time: str
    detail: RawTaskDetail


class RawServiceActionDetail(_Loose):
    eventType: str | None = None
    eventName: str = Field(min_length=1)
    clusterArn: str = Field(min_length=1)
    capacityProviderArns: list[str] = Field(default_factory=list)
    reason: str | None = None
    createdAt: str | None = None


class RawServiceActionEvent(_Loose):
    id: str = Field(min_length=1)
    detail_type: Literal["ECS Service Action"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    account: str | None = None
    region: str | None = None
    time: str
    resources: list[str] = Field(default_factory=list)
    detail: RawServiceActionDetail


class Container(BaseModel):
    """A container of a stopped task, as the event reports it (no ``essential`` flag: see classify)."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str
    exit_code: int | None = None
    reason: str | None = None


class TaskStop(BaseModel):
    """A task's STOPPED (or other) state change, reduced to what the healer decides on."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    event_id: str
    account: str | None = None  # where the task ran (usecases.places decides whether it may act here)
    region: str | None = None
    time: datetime
    cluster: str
    cluster_arn: str
    task_arn: str
    task_definition_arn: str
    family: str
    revision: int | None
    last_status: str
    stop_code: str | None = None
    stopped_reason: str | None = None
    group: str | None = None
    started_by: str | None = None
    capacity_provider: str | None = None
    launch_type: str | None = None
    containers: tuple[Container, ...] = ()
    overrides: dict[str, Any] = Field(default_factory=dict)
    subnets: tuple[str, ...] = ()  # from the task's ENI attachment (awsvpc), if any
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    version: int | None = None
    cpu: str | None = None
    memory: str | None = None
    enable_execute_command: bool = False

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def service(self) -> str | None:
        """The service name for a service's task (group ``service:NAME``), else None."""
        if self.group and self.group.startswith("service:") and len(self.group) > len("service:"):
            return self.group[len("service:"):]
        return None

    @property
    def standalone(self) -> bool:
        """A task started with RunTask/StartTask (group ``family:NAME`` or a custom group), not by a service."""
        if self.service is not None:
            return False
        return not (self.started_by or "").startswith("ecs-svc/")

    @property
    def failed_at(self) -> datetime:
        """When the task stopped (the failure's own time, not the event's arrival)."""
        return self.stopped_at or self.time

    @property
    def ran_seconds(self) -> float:
        """How long the task ran (0 if it never started)."""
        if self.started_at is None or self.stopped_at is None:
            return 0.0
        return max(0.0, (self.stopped_at - self.started_at).total_seconds())

    @property
    def event_key(self) -> str:
        """Duplicates of one state change carry the same task ARN and ``detail.version``."""
        return f"task:{self.task_arn}:{self.version if self.version is not None else self.event_id}"


class ServiceAction(BaseModel):
    """An "ECS Service Action" event (placement failures and friends)."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    event_id: str
    account: str | None = None
    region: str | None = None
    time: datetime
    cluster: str
    cluster_arn: str
    service: str
    event_name: str
    event_type: str | None = None
    reason: str | None = None
    capacity_providers: tuple[str, ...] = ()  # names, from capacityProviderArns

    @property
    def event_key(self) -> str:
        """Service-action events carry no version: the EventBridge id identifies a delivery's event."""
        return f"svc-action:{self.event_id}"


def arn_name(arn: str, kind: str) -> str:
    """The resource name of an ECS ARN of ``kind`` (cluster, service, task, ...); a bare name passes through."""
    match = _ARN.match(arn)
    if match is None:
        if arn.startswith("arn:"):
            raise InvalidEvent(f"not an ECS {kind} ARN: {arn[:200]}")
        return arn
    if match.group("kind") != kind:
        raise InvalidEvent(f"expected an ECS {kind} ARN, got a {match.group('kind')} ARN")
    return match.group("rest").rsplit("/", 1)[-1]


def split_task_definition(arn: str) -> tuple[str, int | None]:
    """(family, revision) of a task definition ARN or ``family[:revision]``; revision None if absent."""
    name = arn_name(arn, "task-definition")
    family, _, revision = name.partition(":")
    if not family:
        raise InvalidEvent(f"task definition without a family: {arn[:200]}")
    return family, int(revision) if revision.isdigit() else None


def _required_time(value: str, field: str) -> datetime:
    moment = aware_time(value)
    if moment is None:
        raise InvalidEvent(f"{field}: not a timestamp with a time zone: {value[:40]!r}")
    return moment


def _optional_time(value: str | None, field: str) -> datetime | None:
    """An absent time is None (not every stop has one); a present one must carry its zone. A naive time
    would be compared with an aware now (TypeError), and reading it as missing would count a long run as
    a short one: refused, like the event's own ``time``."""
    return None if value is None or value == "" else _required_time(value, field)


def parse_task_event(event: dict[str, Any]) -> TaskStop:
    try:
        raw = RawTaskEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(first_error(exc)) from None
    detail = raw.detail
    family, revision = split_task_definition(detail.taskDefinitionArn)
    event_time = _required_time(raw.time, "time")
    subnets = tuple(
        d.get("value") for a in detail.attachments or [] if a.get("type") == "eni"
        for d in a.get("details") or [] if isinstance(d, dict) and d.get("name") == "subnetId" and d.get("value")
    )
    return TaskStop(
        event_id=raw.id, account=raw.account or None, region=raw.region or None, time=event_time,
        cluster=arn_name(detail.clusterArn, "cluster"), cluster_arn=detail.clusterArn,
        task_arn=detail.taskArn, task_definition_arn=detail.taskDefinitionArn, family=family, revision=revision,
        last_status=detail.lastStatus, stop_code=detail.stopCode or None, stopped_reason=detail.stoppedReason,
        group=detail.group, started_by=detail.startedBy, capacity_provider=detail.capacityProviderName or None,
        launch_type=detail.launchType or None,
        containers=tuple(Container(name=c.name, exit_code=c.exitCode, reason=c.reason)
                         for c in detail.containers or []),
        overrides=detail.overrides or {}, subnets=tuple(s for s in subnets if isinstance(s, str)),
        started_at=_optional_time(detail.startedAt, "detail.startedAt"),
        stopped_at=_optional_time(detail.stoppedAt or detail.executionStoppedAt,
                                  "detail.stoppedAt" if detail.stoppedAt else "detail.executionStoppedAt"),
        version=detail.version, cpu=detail.cpu, memory=detail.memory,
        enable_execute_command=bool(detail.enableExecuteCommand),
    )


def parse_service_action(event: dict[str, Any]) -> ServiceAction:
    try:
        raw = RawServiceActionEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(first_error(exc)) from None
    if not raw.resources:
        raise InvalidEvent("resources: a service action event names its service in resources[0]")
    event_time = _required_time(raw.time, "time")
    providers = tuple(arn_name(a, "capacity-provider") for a in raw.detail.capacityProviderArns)
    return ServiceAction(
        event_id=raw.id, account=raw.account or None, region=raw.region or None, time=event_time,
        cluster=arn_name(raw.detail.clusterArn, "cluster"),
        cluster_arn=raw.detail.clusterArn, service=arn_name(raw.resources[0], "service"),
        event_name=raw.detail.eventName, event_type=raw.detail.eventType, reason=raw.detail.reason,
        capacity_providers=providers,
    )


def parse_healer_event(event: Any) -> TaskStop | ServiceAction:
    """Either healer event; anything else raises InvalidEvent with a one-line reason."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"event is a {type(event).__name__}, not an object")
    kind = event.get("detail-type")
    if kind == TASK_STATE_CHANGE:
        return parse_task_event(event)
    if kind == SERVICE_ACTION:
        return parse_service_action(event)
    raise InvalidEvent(f"detail-type {str(kind)[:80]!r} is neither {TASK_STATE_CHANGE!r} nor {SERVICE_ACTION!r}")
