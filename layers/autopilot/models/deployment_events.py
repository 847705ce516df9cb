"""EventBridge "ECS Deployment State Change" events, parsed into a typed ``DeploymentChange``.

Shape (aws-facts section 1; samples in tests/fixtures/aws-events/ecs-deployment-state-change-*):
``resources[0]`` is the service ARN, ``detail.{eventType, eventName, deploymentId, updatedAt, reason}``.
The event does not name the task definition: DescribeServices does.

Unknown ``eventName`` values parse fine (ECS adds names over time): the use case audits them as
ignored. Malformed events raise ``InvalidEvent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autopilot.models.events import InvalidEvent
from autopilot.models.validation import first_error

IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"
COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
FAILED = "SERVICE_DEPLOYMENT_FAILED"
KNOWN_EVENT_NAMES = (IN_PROGRESS, COMPLETED, FAILED)

ECS_ROLLBACK_REASON = "ECS deployment circuit breaker: rolling back"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class DeploymentDetail(_Loose):
    eventType: str | None = None
    eventName: str = Field(min_length=1, max_length=255)
    deploymentId: str = Field(min_length=1, max_length=255)
    updatedAt: str = Field(min_length=1)
    reason: str | None = None


class DeploymentStateChangeEvent(_Loose):
    id: str = Field(min_length=1)
    detail_type: Literal["ECS Deployment State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    account: str | None = None
    region: str | None = None
    time: str | None = None
    resources: list[str] = Field(min_length=1)
    detail: DeploymentDetail


class ServiceRef(BaseModel):
    """Cluster and service named by a service ARN. ``cluster`` is None for the old ARN format."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    arn: str
    cluster: str | None
    service: str


def parse_service_arn(arn: str) -> ServiceRef:
    """``arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE`` (or the old ``service/SERVICE``)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "ecs" or not parts[5].startswith("service/"):
        raise InvalidEvent(f"resources[0] is not an ECS service ARN: {arn[:200]!r}")
    names = parts[5].split("/")[1:]
    if len(names) == 2 and all(names):
        return ServiceRef(arn=arn, cluster=names[0], service=names[1])
    if len(names) == 1 and names[0]:
        return ServiceRef(arn=arn, cluster=None, service=names[0])
    raise InvalidEvent(f"resources[0] is not an ECS service ARN: {arn[:200]!r}")


class DeploymentChange(BaseModel):
    """One deployment state change, with the times it carries parsed."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    event_id: str
    event_name: str
    event_type: str | None
    deployment_id: str
    updated_at: datetime
    reason: str | None
    service: ServiceRef
    account: str | None = None  # the envelope's (usecases.places decides whether it may act here)
    region: str | None = None

    @property
    def known(self) -> bool:
        return self.event_name in KNOWN_EVENT_NAMES

    @property
    def ecs_rollback(self) -> bool:
        """An IN_PROGRESS that is ECS's own circuit-breaker rollback (record it, do not fight it)."""
        return (self.reason or "").startswith(ECS_ROLLBACK_REASON)

    @property
    def event_key(self) -> str:
        """Identifies the state change itself, so redeliveries under another event id dedupe too."""
        return f"deployment:{self.deployment_id}:{self.event_name}:{self.updated_at.isoformat()}"


def parse_deployment_event(event: object) -> DeploymentChange:
    """Parse the EventBridge event; anything else raises InvalidEvent with a one-line reason."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"event is a {type(event).__name__}, not an object")
    try:
        parsed = DeploymentStateChangeEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(first_error(exc)) from None
    try:
        updated_at = datetime.fromisoformat(parsed.detail.updatedAt)
    except ValueError:
        raise InvalidEvent(f"detail.updatedAt is not a timestamp: {parsed.detail.updatedAt[:60]!r}") from None
    if updated_at.tzinfo is None:
        raise InvalidEvent("detail.updatedAt has no time zone")
    return DeploymentChange(
        event_id=parsed.id,
        event_name=parsed.detail.eventName,
        event_type=parsed.detail.eventType,
        deployment_id=parsed.detail.deploymentId,
        updated_at=updated_at,
        reason=(parsed.detail.reason or None) and parsed.detail.reason[:1024],
        service=parse_service_arn(parsed.resources[0]),
        account=parsed.account or None,
        region=parsed.region or None,
    )
