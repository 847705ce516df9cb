"""The small interfaces decisions' outcomes are executed through.

``autopilot.aws`` implements them with boto3; tests and the demo may pass fakes of the same shape.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Deployment(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ServiceView(BaseModel):
    """What DescribeServices says about a service, reduced to what decisions use."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    cluster: str
    service: str
    arn: str | None = None
    status: str = "ACTIVE"
    desired_count: int
    running_count: int = 0
    task_definition: str
    launch_type: str | None = None
    capacity_provider_strategy: list[dict[str, Any]] = Field(default_factory=list)
    deployments: list[Deployment] = Field(default_factory=list)
    circuit_breaker_rollback: bool = False


class AlarmView(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    name: str
    state: str
    state_reason_data: str | None = None
    state_updated: str | None = None
    threshold: float | None = None
    metric_query: list[dict[str, Any]] = Field(default_factory=list)  # GetMetricData queries for the alarm's metric


class RunTaskResult(BaseModel):
    """RunTask's answer: the tasks started and the ``failures[]`` (capacity, placement) it reported."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    task_arns: list[str] = Field(default_factory=list)
    failures: list[dict[str, Any]] = Field(default_factory=list)


class EcsPort(Protocol):
    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]: ...
    def set_desired_count(self, cluster: str, service: str, desired: int) -> None: ...
    def update_service(self, cluster: str, service: str, **changes: Any) -> None: ...
    def run_task(self, request: dict[str, Any]) -> RunTaskResult: ...


class AlarmsPort(Protocol):
    def describe_alarms(self, names: list[str]) -> dict[str, AlarmView]: ...
    def latest_values(self, alarms: list[AlarmView]) -> dict[str, float]: ...


class NotifierPort(Protocol):
    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None: ...


class RestartQueuePort(Protocol):
    def send(self, body: dict[str, Any], delay_seconds: int, dedup_id: str) -> None: ...


class DescribedTaskDefinition(BaseModel):
    """DescribeTaskDefinition's answer with include=['TAGS']: the task definition as AWS returned it."""
    model_config = ConfigDict(defer_build=True)

    task_definition: dict[str, Any]
    tags: list[dict[str, str]] = Field(default_factory=list)


class DerivedLookup(BaseModel):
    """Result of looking for an already-registered derived revision (and what the look-up cost)."""
    model_config = ConfigDict(defer_build=True)

    arn: str | None
    describe_calls: int = 0


class TaskDefinitionsPort(Protocol):
    def describe(self, task_definition: str) -> DescribedTaskDefinition: ...
    def register(self, request: dict[str, Any]) -> str: ...
    def find_derived(self, family: str, derivation_id: str, newer_than: int | None) -> DerivedLookup: ...
