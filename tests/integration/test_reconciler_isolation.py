"""Issue 11, findings 1 and 5 on moto: one failing service neither stops the reconciler's run nor hides.

prod/a-broken and prod/web both have a scaling alarm in ALARM; UpdateService fails for a-broken only (it is
listed first, so it is decided first). The run must still scale web, still run every later pass (the Spot
hold of web ends), audit a-broken as failed:*, count ActionFailed, and end with the error. A paused
service and a service whose mode is off write no audit record every minute.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autopilot.aws.clients import client
from autopilot.models.healing_state import HealingState, SpotHold, SpotState
from autopilot.models.policy import ServicePolicy, service_key
from autopilot.models.state import ServiceState
from tests.conftest import load_handler
from tests.proofs.support import use_ecs

ON_DEMAND = [{"capacityProvider": "FARGATE", "weight": 1}]
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def policy(service: str, mode: str = "enforce") -> ServicePolicy:
    return ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": service},
        "spec": {"mode": mode, "scaling": {"minTasks": 1, "maxTasks": 10, "scaleOutCooldownSeconds": 60, "rules": [
            {"alarm": f"{service}-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 2}]}]}}})


class BrokenFor:
    """Moto's ECS, but every UpdateService of one service is refused (as IAM or a bad request would)."""

    def __init__(self, inner: Any, broken: str) -> None:
        self.inner, self.broken = inner, broken

    def describe_services(self, cluster: str, services: list[str]) -> Any:
        return self.inner.describe_services(cluster, services)

    def _refuse(self, service: str) -> None:
        if service == self.broken:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateService")

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self._refuse(service)
        self.inner.set_desired_count(cluster, service, desired)

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        self._refuse(service)
        self.inner.update_service(cluster, service, **changes)

    def run_task(self, request: dict[str, Any]) -> Any:
        return self.inner.run_task(request)


@pytest.fixture
def estate(deps: Any) -> Any:
    ecs, cw = client("ecs"), client("cloudwatch")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    for name in ("a-broken", "web", "paused", "switched-off"):
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition="web", desiredCount=4)
        cw.put_metric_alarm(AlarmName=f"{name}-cpu-high", MetricName="CPUUtilization", Namespace="AWS/ECS",
                            Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=70.0,
                            ComparisonOperator="GreaterThanThreshold")
        cw.set_alarm_state(AlarmName=f"{name}-cpu-high", StateValue="ALARM", StateReason="test",
                           StateReasonData=json.dumps({"recentDatapoints": [90.0], "threshold": 70.0}))
        deps.store.put_policy(policy(name, mode="off" if name == "switched-off" else "enforce"), deps.clock())
    ecs.update_service(cluster="prod", service="web", capacityProviderStrategy=ON_DEMAND)
    now = deps.clock()
    hold = SpotHold(saved_strategy=SPOT, applied_strategy=ON_DEMAND, since=now - timedelta(hours=1),
                    until=now - timedelta(seconds=1))
    deps.store.save_state(service_key("prod", "web"),
                          ServiceState(healing=HealingState(spot=SpotState(hold=hold))), 0)
    deps.store.save_state(service_key("prod", "paused"), ServiceState(paused=True, paused_reason="incident"), 0)
    use_ecs(deps, BrokenFor(deps.ecs, "a-broken"))
    return deps


def desired(service: str) -> int:
    return int(client("ecs").describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


def strategy(service: str) -> list[dict[str, Any]]:
    found = client("ecs").describe_services(cluster="prod", services=[service])["services"][0]
    return [{k: v for k, v in s.items() if k in ("capacityProvider", "weight")}
            for s in found.get("capacityProviderStrategy") or []]


def history(deps: Any, service: str) -> list[str]:
    return [h.outcome for h in deps.store.history(cluster="prod", service=service, now=deps.clock(), limit=1000)]


def test_one_failing_service_does_not_stop_the_run(estate: Any, lambda_context: Any, capsys: Any) -> None:
    reconciler = load_handler("reconciler")
    capsys.readouterr()
    with pytest.raises(ClientError, match="AccessDenied"):  # the run ends with the error, after the others
        reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    assert desired("web") == 6, "the second service in ALARM was scaled"
    assert strategy("web") == SPOT, "the later pass (Spot hold restore) still ran"
    assert desired("a-broken") == 4
    assert history(estate, "a-broken") == ["failed:scale-out"]
    assert "ActionFailed" in capsys.readouterr().out, "the failure is counted (EMF), the alarm sees it"
    state = estate.store.load_state(service_key("prod", "a-broken")).state
    assert state.scaling.scale_out_until is None, "the failed action consumed no cooldown"


def test_the_next_run_acts_on_the_failing_service_again_not_on_the_others(estate: Any, lambda_context: Any) -> None:
    reconciler = load_handler("reconciler")
    with pytest.raises(ClientError):
        reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    estate.clock.advance(30)  # within web's cooldown: web is not scaled again; a-broken is retried
    with pytest.raises(ClientError):
        reconciler.lambda_handler({"id": "tick-2"}, lambda_context)
    assert desired("web") == 6
    assert history(estate, "a-broken") == ["failed:scale-out", "failed:scale-out"]


def test_several_failing_services_end_the_run_with_one_error_naming_them(estate: Any, lambda_context: Any) -> None:
    from autopilot.usecases.runner import PartialFailure

    use_ecs(estate, BrokenFor(BrokenFor(estate.ecs.inner, "web"), "a-broken"))
    with pytest.raises(PartialFailure, match=r"\d+ failed: SVC#prod#a-broken \(.*SVC#prod#web \("):
        load_handler("reconciler").lambda_handler({"id": "tick-1"}, lambda_context)


def test_paused_and_switched_off_services_write_no_audit_record_every_minute(estate: Any, lambda_context: Any) -> None:
    use_ecs(estate, estate.ecs.inner)  # nothing fails here
    reconciler = load_handler("reconciler")
    for tick in range(3):
        estate.clock.advance(60)
        reconciler.lambda_handler({"id": f"tick-{tick}"}, lambda_context)
    assert history(estate, "paused") == []
    assert history(estate, "switched-off") == []
    assert desired("paused") == 4 and desired("switched-off") == 4


def test_the_global_kill_switch_writes_no_audit_record_every_minute(estate: Any, lambda_context: Any) -> None:
    estate.settings.mode = "off"
    load_handler("reconciler").lambda_handler({"id": "tick-1"}, lambda_context)
    for service in ("a-broken", "web", "paused", "switched-off"):
        assert history(estate, service) == [], service
    assert desired("web") == 4 and strategy("web") == ON_DEMAND


class UnreadableCluster(BrokenFor):
    """Moto's ECS, but DescribeServices in one cluster keeps failing (throttled beyond botocore's retries)."""

    def __init__(self, inner: Any, cluster: str) -> None:
        super().__init__(inner, broken="")
        self.cluster = cluster

    def describe_services(self, cluster: str, services: list[str]) -> Any:
        if cluster == self.cluster:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeServices")
        return self.inner.describe_services(cluster, services)


def test_a_failed_describe_batch_costs_only_its_own_services(estate: Any, lambda_context: Any, capsys: Any) -> None:
    """One cluster's DescribeServices failing must not keep the other clusters' services from being decided:
    its services are audited failed:describe, counted, and the run ends with the error after the others."""
    ecs, cw = client("ecs"), client("cloudwatch")
    ecs.create_cluster(clusterName="batch")
    ecs.create_service(cluster="batch", serviceName="etl", taskDefinition="web", desiredCount=4)
    cw.put_metric_alarm(AlarmName="etl-cpu-high", MetricName="CPUUtilization", Namespace="AWS/ECS",
                        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=70.0,
                        ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="etl-cpu-high", StateValue="ALARM", StateReason="test",
                       StateReasonData=json.dumps({"recentDatapoints": [90.0], "threshold": 70.0}))
    etl = policy("etl").model_dump(mode="json", exclude_none=True)
    etl["metadata"]["cluster"] = "batch"
    estate.store.put_policy(ServicePolicy.model_validate(etl), estate.clock())
    estate.store.delete_policy(service_key("prod", "a-broken"))
    use_ecs(estate, UnreadableCluster(estate.ecs.inner, "batch"))
    reconciler = load_handler("reconciler")
    capsys.readouterr()
    with pytest.raises(ClientError, match="Throttling"):  # the run ends with the error, after the others
        reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    assert desired("web") == 6, "the service in ALARM in the readable cluster was scaled"
    assert strategy("web") == SPOT, "the later passes still ran"
    etl_history = [h.outcome for h in estate.store.history(cluster="batch", service="etl", now=estate.clock())]
    assert etl_history == ["failed:describe"]
    assert int(ecs.describe_services(cluster="batch", services=["etl"])["services"][0]["desiredCount"]) == 4
    assert "ActionFailed" in capsys.readouterr().out
