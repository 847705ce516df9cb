"""ScalerFunction end to end on moto: published alarm samples -> desired count, audit, SNS."""

from __future__ import annotations

import json

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from tests.conftest import load_handler, published, variant

POLICY = {
    "apiVersion": "autopilot/v1",
    "kind": "ServicePolicy",
    "metadata": {"cluster": "prod", "service": "web"},
    "spec": {
        "scaling": {
            "minTasks": 2,
            "maxTasks": 40,
            "scaleOutCooldownSeconds": 60,
            "rules": [
                {
                    "alarm": "web-cpu-high",
                    "steps": [
                        {"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                        {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2},
                    ],
                },
                {"alarm": "web-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]},
            ],
        }
    },
}


def make_service(desired: int = 4) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=desired)


def alarm_event(
    name: str, value: float, threshold: float = 50.0, state: str = "ALARM", ts: str = "2026-11-26T12:00:00.000+0000"
):
    base = published("cloudwatch-alarm-state-change-single-metric.json")
    reason = json.loads(base["detail"]["state"]["reasonData"])
    reason.update(recentDatapoints=[value], threshold=threshold)
    return variant(
        base,
        **{
            "detail.alarmName": name,
            "detail.state.value": state,
            "detail.state.timestamp": ts,
            "detail.state.reasonData": json.dumps(reason),
            "id": f"evt-{name}-{ts}",
        },
    )


def desired() -> int:
    return client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"]


def test_scale_out_audits_and_notifies(deps, lambda_context, topic_messages):
    make_service(4)
    deps.store.put_policy(ServicePolicy.model_validate(POLICY), deps.clock())
    app = load_handler("scaler")
    result = app.lambda_handler(alarm_event("web-cpu-high", 99.5), lambda_context)
    assert result["outcomes"][0]["outcome"] == "scale-out"
    assert desired() == 6  # breach 49.5 -> 30% of 4 = 1.2 -> 1, raised to minAdjustmentMagnitude 2
    history = deps.store.history(cluster="prod", service="web", now=deps.clock())
    assert [h.outcome for h in history] == ["scale-out"]
    assert history[0].calls == ["ecs:UpdateService", "sns:Publish"]
    messages = topic_messages()
    assert len(messages) == 1 and "from 4 to 6" in messages[0]


def test_duplicate_delivery_changes_nothing(deps, lambda_context):
    make_service(4)
    deps.store.put_policy(ServicePolicy.model_validate(POLICY), deps.clock())
    app = load_handler("scaler")
    event = alarm_event("web-cpu-high", 99.5)
    app.lambda_handler(event, lambda_context)
    app.lambda_handler(event, lambda_context)
    assert desired() == 6
