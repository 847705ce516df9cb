"""ReconcilerFunction against moto: alarms that stay in ALARM act again after the cooldown; drift repair."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from tests.conftest import load_handler, published

POLICY: dict[str, Any] = {
    "apiVersion": "autopilot/v1",
    "kind": "ServicePolicy",
    "metadata": {"cluster": "prod", "service": "web"},
    "spec": {
        "scaling": {
            "minTasks": 2,
            "maxTasks": 10,
            "scaleOutCooldownSeconds": 60,
            "scaleInCooldownSeconds": 120,
            "rules": [
                {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 2}]},
                {"alarm": "web-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]},
            ],
        }
    },
}


@pytest.fixture
def service(deps) -> Any:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=4)
    cw = client("cloudwatch")
    for name, op in (("web-cpu-high", "GreaterThanOrEqualToThreshold"), ("web-cpu-low", "LessThanThreshold")):
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=70.0 if "high" in name else 30.0,
            ComparisonOperator=op,
            Dimensions=[{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": "web"}],
        )
    deps.store.put_policy(ServicePolicy.model_validate(POLICY), deps.clock())
    return deps


def set_alarm(name: str, state: str, value: float, threshold: float) -> None:
    reason = {
        "version": "1.0",
        "statistic": "Average",
        "period": 60,
        "recentDatapoints": [value],
        "threshold": threshold,
    }
    client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue=state, StateReason="test", StateReasonData=json.dumps(reason)
    )


def desired() -> int:
    return client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"]


def test_alarm_staying_in_alarm_acts_again_after_cooldown(service, lambda_context):
    reconciler = load_handler("reconciler")
    set_alarm("web-cpu-high", "ALARM", 90, 70)
    reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    assert desired() == 6
    service.clock.advance(30)
    reconciler.lambda_handler({"id": "tick-2"}, lambda_context)
    assert desired() == 6  # still in the scale-out cooldown: nothing, and nothing audited
    service.clock.advance(30)
    reconciler.lambda_handler({"id": "tick-3"}, lambda_context)
    assert desired() == 8
    outcomes = [h.outcome for h in service.store.history(now=service.clock())]
    assert outcomes == ["scale-out", "scale-out"]
    service.clock.advance(60)
    reconciler.lambda_handler({"id": "tick-4"}, lambda_context)
    assert desired() == 10  # maxTasks
    service.clock.advance(60)
    result = reconciler.lambda_handler({"id": "tick-5"}, lambda_context)
    assert desired() == 10 and result["outcomes"] == []


def test_ok_alarm_is_left_alone(service, lambda_context):
    reconciler = load_handler("reconciler")
    set_alarm("web-cpu-high", "OK", 50, 70)
    set_alarm("web-cpu-low", "INSUFFICIENT_DATA", 0, 30)
    reconciler.lambda_handler({"id": "tick"}, lambda_context)
    assert desired() == 4


def test_reconciler_uses_the_latest_metric_value(service, lambda_context):
    """The reason data is frozen at the transition; the step is chosen from the metric as it is now."""
    set_alarm("web-cpu-low", "ALARM", 25, 30)
    cw = client("cloudwatch")
    cw.put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Value": 5.0,
                "Timestamp": service.clock() - timedelta(minutes=1),
                "Dimensions": [{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": "web"}],
            }
        ],
    )
    values = service.alarms.latest_values(
        list(service.alarms.describe_alarms(["web-cpu-low"]).values()), now=service.clock()
    )
    assert values == {"web-cpu-low": 5.0}


def test_drift_outside_bounds_is_repaired(service, lambda_context):
    reconciler = load_handler("reconciler")
    client("ecs").update_service(cluster="prod", service="web", desiredCount=25)
    reconciler.lambda_handler({"id": "tick"}, lambda_context)
    assert desired() == 10
    entry = service.store.history(now=service.clock())[0]
    assert entry.outcome == "repair-bounds" and "drifted above maxTasks" in entry.reason


def test_one_describe_alarms_call_per_batch(service, lambda_context, monkeypatch):
    from autopilot.usecases.reconcile import reconcile

    calls: list[int] = []
    real = service.alarms.client.describe_alarms

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["AlarmNames"]))
        return real(**kwargs)

    monkeypatch.setattr(service.alarms.client, "describe_alarms", counting)
    for i in range(3):
        policy = json.loads(json.dumps(POLICY))
        policy["metadata"]["service"] = f"svc{i}"
        policy["spec"]["scaling"]["rules"] = [{"alarm": f"alarm-{i}-{j}", "exactCapacity": 3} for j in range(50)]
        service.store.put_policy(ServicePolicy.model_validate(policy), service.clock())
    reconcile(service)
    assert calls == [100, 52]  # 152 distinct alarm names, 100 per call


def test_scaler_then_reconciler_share_the_cooldown(service, lambda_context):
    scaler, reconciler = load_handler("scaler"), load_handler("reconciler")
    set_alarm("web-cpu-high", "ALARM", 90, 70)
    event = published("cloudwatch-alarm-state-change-single-metric.json")
    event["detail"]["alarmName"] = "web-cpu-high"
    scaler.lambda_handler(event, lambda_context)
    assert desired() == 6
    service.clock.advance(20)
    reconciler.lambda_handler({"id": "tick"}, lambda_context)
    assert desired() == 6
