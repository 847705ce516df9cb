"""EcsPort on boto3."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from autopilot.aws.clients import AwsAdapter
from autopilot.aws.errors import is_transient
from autopilot.ports import Deployment, RunTaskResult, ServiceView


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value is not None else None)


def service_view(cluster: str, raw: dict[str, Any]) -> ServiceView:
    breaker = (raw.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    return ServiceView(
        cluster=cluster,
        service=raw["serviceName"],
        arn=raw.get("serviceArn"),
        status=raw.get("status", "ACTIVE"),
        desired_count=int(raw.get("desiredCount", 0)),
        running_count=int(raw.get("runningCount", 0)),
        task_definition=raw.get("taskDefinition", ""),
        launch_type=raw.get("launchType"),
        capacity_provider_strategy=list(raw.get("capacityProviderStrategy") or []),
        deployments=[
            Deployment(
                id=d["id"], status=d.get("status", ""), task_definition=d.get("taskDefinition", ""),
                rollout_state=d.get("rolloutState"), created_at=_iso(d.get("createdAt")),
                updated_at=_iso(d.get("updatedAt")),
            )
            for d in raw.get("deployments") or []
        ],
        circuit_breaker_rollback=bool(breaker.get("enable") and breaker.get("rollback")),
    )


class Ecs(AwsAdapter):
    """The ECS calls ecs-autopilot makes. One DescribeServices per 10 services of a cluster."""

    service = "ecs"

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]:
        found: dict[str, ServiceView] = {}
        for start in range(0, len(services), 10):
            response = self.client.describe_services(cluster=cluster, services=services[start:start + 10])
            for raw in response.get("services", []):
                if raw.get("status") != "INACTIVE":
                    view = service_view(cluster, raw)
                    found[view.service] = view
        return found

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self.client.update_service(cluster=cluster, service=service, desiredCount=desired)

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        self.client.update_service(cluster=cluster, service=service, **changes)

    def run_task(self, request: dict[str, Any]) -> RunTaskResult:
        """RunTask with ``request`` as its parameters (``clientToken`` makes a retry of one attempt idempotent).

        A refused request comes back as a failure, like a capacity failure in ``failures[]``: the restarter
        counts it and retries with the back-off. Throttling and server errors that outlast botocore's
        retries are AWS's trouble, not the task's: they propagate, the message is redelivered by SQS after
        its visibility timeout (and dead-lettered after five receives), and no restart is counted.
        """
        try:
            response = self.client.run_task(**request)
        except ClientError as exc:
            if is_transient(exc.response):
                raise
            error = exc.response.get("Error", {})
            return RunTaskResult(failures=[{"reason": str(error.get("Code", "ClientError")),
                                            "detail": str(error.get("Message", ""))[:300]}])
        return RunTaskResult(task_arns=[str(t["taskArn"]) for t in response.get("tasks") or [] if t.get("taskArn")],
                             failures=list(response.get("failures") or []))
