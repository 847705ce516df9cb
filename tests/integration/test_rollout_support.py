"""Helpers for the rollout integration tests (no tests here): moto services, events, call counting, fakes.

moto does not model deployments (update_service creates no new PRIMARY deployment, no circuit
breaker). Where a test needs that, ``DeployingEcs`` sits behind the same EcsPort the executor uses:
every call still reaches moto (so moto's service really changes), only the ``deployments[]`` that
DescribeServices reports are simulated.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from autopilot.aws.clients import client
from autopilot.aws.ecs import Ecs
from autopilot.execute import Executor, derive_revision_handler
from autopilot.models.policy import ServicePolicy
from autopilot.ports import Deployment, RunTaskResult, ServiceView
from tests.conftest import published, variant

CLUSTER, SERVICE = "prod", "web"
SERVICE_ARN = f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}"
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"

SAMPLES = {
    "in-progress": "ecs-deployment-state-change-in-progress-initial.json",
    "rollback": "ecs-deployment-state-change-in-progress-rollback.json",
    "completed": "ecs-deployment-state-change-completed.json",
    "failed": "ecs-deployment-state-change-failed-circuit-breaker.json",
}


def td(n: int) -> str:
    return TD.format(n)


def policy(**rollout: Any) -> ServicePolicy:
    spec: dict[str, Any] = {"rollout": {"rollbackAlarms": ["web-5xx-high"], "recycleAlarms": ["web-memory-leak"],
                                        "bakeSeconds": 1800, **rollout}}
    return ServicePolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                                         "metadata": {"cluster": CLUSTER, "service": SERVICE}, "spec": spec})


def make_service(revision: int = 1, revisions: int = 3) -> None:
    """Cluster prod, task definitions web:1..N (a Fargate-like shape), service web on ``revision``."""
    ecs = client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    for i in range(1, revisions + 1):
        ecs.register_task_definition(
            family="web", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            executionRoleArn="arn:aws:iam::123456789012:role/web-execution",
            containerDefinitions=[{"name": "web", "image": f"nginx:1.{i}", "memory": 512, "essential": True}],
            tags=[{"key": "team", "value": "web"}])
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=f"web:{revision}", desiredCount=2)


def recreate_service(revision: int) -> None:
    """A real new moto deployment of ``revision`` (moto's update_service would not create one)."""
    ecs = client("ecs")
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=0)
    ecs.delete_service(cluster=CLUSTER, service=SERVICE, force=True)
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=f"web:{revision}", desiredCount=2)


def moto_service() -> dict[str, Any]:
    return client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]


def primary() -> tuple[str, datetime]:
    """The id and createdAt of moto's PRIMARY deployment."""
    deployment = next(d for d in moto_service()["deployments"] if d["status"] == "PRIMARY")
    return deployment["id"], deployment["createdAt"].astimezone(UTC)


def running_revision() -> str:
    return str(moto_service()["taskDefinition"]).rsplit("/", 1)[-1]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def deployment_event(kind: str, deployment_id: str, updated_at: datetime, *, event_id: str | None = None,
                     service_arn: str = SERVICE_ARN, **changes: Any) -> dict[str, Any]:
    """A published deployment sample with the service, deployment, time and id changed."""
    return variant(published(SAMPLES[kind]), **{
        "id": event_id or f"{kind}-{deployment_id}-{iso(updated_at)}", "resources.0": service_arn,
        "region": "us-east-1", "account": "123456789012", "detail.deploymentId": deployment_id,
        "detail.updatedAt": iso(updated_at), **changes})


class EcsCalls:
    """Counts the ECS API calls made through the cached boto3 client (what actually reached 'AWS')."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        client("ecs").meta.events.register("before-call.ecs", self._count)
        # RegisterTaskDefinition goes through ECS's single-attempt client (autopilot.aws.taskdefs)
        client("ecs", single_attempt=True).meta.events.register("before-call.ecs", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def count(self, name: str) -> int:
        return self.calls.count(name)

    def reset(self) -> None:
        self.calls.clear()


def throttling(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


class FlakyEcs:
    """The real (moto) Ecs adapter, but UpdateService fails with ThrottlingException the first ``fail`` times."""

    def __init__(self, inner: Any, fail: int = 1) -> None:
        self.inner = inner
        self.failures_left = fail
        self.updates: list[dict[str, Any]] = []

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]:
        return self.inner.describe_services(cluster, services)  # type: ignore[no-any-return]

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self.inner.set_desired_count(cluster, service, desired)

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise throttling("UpdateService")
        self.inner.update_service(cluster, service, **changes)
        self.updates.append(changes)

    def run_task(self, request: dict[str, Any]) -> RunTaskResult:
        return self.inner.run_task(request)  # type: ignore[no-any-return]


class DeployingEcs:
    """Moto for every call, plus the deployments ECS would create: UpdateService(taskDefinition) or
    forceNewDeployment starts a new PRIMARY deployment; the previous one becomes ACTIVE."""

    def __init__(self, clock: Any) -> None:
        self.inner = Ecs()
        self.clock = clock
        self.deployments: list[Deployment] = []
        self.counter = 0
        self.circuit_breaker_rollback = False

    def start(self, task_definition: str, at: datetime | None = None, rollout_state: str = "IN_PROGRESS") -> str:
        self.counter += 1
        moment = (at or self.clock()).isoformat()
        self.deployments = [replace(d, status="ACTIVE") for d in self.deployments]
        deployment = Deployment(id=f"ecs-svc/{self.counter:019d}", status="PRIMARY", task_definition=task_definition,
                                rollout_state=rollout_state, created_at=moment, updated_at=moment)
        self.deployments.insert(0, deployment)
        return deployment.id

    def finish(self, deployment_id: str, state: str = "COMPLETED") -> None:
        self.deployments = [replace(d, rollout_state=state) if d.id == deployment_id else d
                            for d in self.deployments]

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]:
        views = self.inner.describe_services(cluster, services)
        return {name: replace(view, deployments=list(self.deployments),
                              circuit_breaker_rollback=self.circuit_breaker_rollback)
                for name, view in views.items()}

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self.inner.set_desired_count(cluster, service, desired)

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        self.inner.update_service(cluster, service, **changes)
        if "taskDefinition" in changes:
            self.start(str(changes["taskDefinition"]))
        elif changes.get("forceNewDeployment"):
            self.start(self.deployments[0].task_definition if self.deployments else "")

    def run_task(self, request: dict[str, Any]) -> RunTaskResult:
        return self.inner.run_task(request)


def use_ecs(deps: Any, ecs: Any) -> Any:
    """Point the dependencies (and a fresh executor) at ``ecs``; returns ``ecs``."""
    executor = Executor(ecs, deps.notifier, deps.executor.restart_queue)
    if deps.taskdefs is not None:
        executor.register("derive-revision", derive_revision_handler(ecs, deps.taskdefs, ledger=deps.store))
    deps.ecs = ecs
    deps.executor = executor
    return ecs


def wall_clock(clock: Any) -> datetime:
    """Set the test clock to now: moto stamps deployments with the real time."""
    clock.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return clock.now  # type: ignore[no-any-return]
