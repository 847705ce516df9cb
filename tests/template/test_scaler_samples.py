"""events/scaler-*.json: each sample means what its name says, through ScalerFunction's handler on moto.

The samples are the published CloudWatch samples with fields changed (alarm names, datapoints,
thresholds, dimensions), in both forms: EventBridge (scaler-*.json) and the direct alarm-action payload
(scaler-direct-*.json, for `sam local invoke -e` or an alarm whose action is the function).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.events import parse_alarm_event
from autopilot.models.policy import ServicePolicy
from tests.conftest import load_handler, sample

pytestmark = pytest.mark.template

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCALER_SAMPLES = sorted(p.name for p in EVENTS.glob("scaler-*.json"))

POLICIES: list[dict[str, Any]] = [
    {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
     "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "scaleOutCooldownSeconds": 60, "rules": [
         {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                             {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2}]},
         {"alarm": "web-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]},
         {"alarm": "launch-day", "exactCapacity": 20},
     ]}}},
    {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "worker"},
     "spec": {"scaling": {"minTasks": 1, "maxTasks": 50, "rules": [
         {"alarm": "jobs-backlog-high", "targetValue": 100}]}}},
]

# sample -> (service, desired count after one delivery on a fresh stack (web 4, worker 4), outcome)
EXPECTED: dict[str, tuple[str, int, str]] = {
    "scaler-alarm-high.json": ("web", 6, "scale-out"),  # breach 25 -> 30% of 4 = 1.2 -> 1, min magnitude 2
    "scaler-alarm-low.json": ("web", 3, "scale-in"),
    "scaler-ok.json": ("web", 4, "ignored:ok"),
    "scaler-insufficient-data.json": ("web", 4, "ignored:insufficient_data"),
    "scaler-unmanaged-alarm.json": ("web", 4, "ignored:unknown-alarm"),
    "scaler-anomaly-detection.json": ("web", 4, "ignored:unknown-alarm"),
    "scaler-metric-math.json": ("worker", 10, "scale-out"),  # ceil(4 x 250 / 100)
    "scaler-composite.json": ("web", 20, "scale-out"),  # exactCapacity
    "scaler-direct-metric-alarm.json": ("web", 6, "scale-out"),
    "scaler-direct-metric-math.json": ("worker", 10, "scale-out"),
    "scaler-direct-composite.json": ("web", 20, "scale-out"),
}
SAME_TRANSITION = [("scaler-alarm-high.json", "scaler-direct-metric-alarm.json"),
                   ("scaler-metric-math.json", "scaler-direct-metric-math.json"),
                   ("scaler-composite.json", "scaler-direct-composite.json")]


def test_every_scaler_sample_has_an_expectation() -> None:
    assert SCALER_SAMPLES == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_every_sample_is_json_for_sam_local_invoke(name: str) -> None:
    assert isinstance(json.loads((EVENTS / name).read_text(encoding="utf-8")), dict)


@pytest.mark.parametrize(("eventbridge", "direct"), SAME_TRANSITION)
def test_both_forms_describe_the_same_transition(eventbridge: str, direct: str) -> None:
    a, b = parse_alarm_event(sample(eventbridge)), parse_alarm_event(sample(direct))
    assert (a.form, b.form) == ("eventbridge", "alarm-action")
    assert (a.alarm_name, a.state, a.datapoint, a.threshold) == (b.alarm_name, b.state, b.datapoint, b.threshold)


@pytest.fixture
def estate(deps: Any) -> Any:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    for service in ("web", "worker"):
        ecs.create_service(cluster="prod", serviceName=service, taskDefinition="web", desiredCount=4)
    for policy in POLICIES:
        deps.store.put_policy(ServicePolicy.model_validate(policy), deps.clock())
    return deps


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_through_the_handler(estate: Any, lambda_context: Any, name: str) -> None:
    service, desired, outcome = EXPECTED[name]
    app = load_handler("scaler")
    result = app.lambda_handler(sample(name), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == [outcome], result
    described = client("ecs").describe_services(cluster="prod", services=[service])["services"][0]
    assert described["desiredCount"] == desired
