"""Every events/ sample reaches exactly its own function, through the template's real rule patterns.

Each function's EventBridge rule patterns are read from template.yaml (autopilot_tools.localstack.rule_patterns),
intrinsics resolved for ManagedClusters=prod,batch, and installed as rules on moto's EventBridge with
one SQS queue per function as target. Each sample is put on the bus and we read which queues got it:
moto's pattern engine decides, not a matcher written here.

Files map to functions by prefix: ``scaler-`` -> ScalerFunction, ``rollout-`` -> RolloutFunction,
``healer-`` -> HealerFunction. Payloads for direct invocation (``scaler-direct-`` = the CloudWatch
alarm-action payload, ``restarter-`` = SQS batches, ``reconciler-`` = schedule payloads) are not
EventBridge events: put on the bus as they are, no rule may match them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autopilot_tools.localstack import load_template, rule_patterns
from tests.conftest import published, variant
from tests.template.iam_policies import ResolvingStack

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-east-1"
MANAGED = {"ManagedClusters": "prod,batch"}
BY_PREFIX = {"scaler-": "ScalerFunction", "rollout-": "RolloutFunction", "healer-": "HealerFunction"}
DIRECT_PREFIXES = ("scaler-direct-", "restarter-", "reconciler-", "policy-resource-")


def function_for(name: str) -> str | None:
    """The function a sample file is for (None: a direct-invocation payload no rule may match)."""
    if name.startswith(DIRECT_PREFIXES):
        return None
    for prefix, function in BY_PREFIX.items():
        if name.startswith(prefix):
            return function
    raise AssertionError(f"events/{name}: unknown prefix; name it scaler-/rollout-/healer-/scaler-direct-/"
                         "restarter-/reconciler- (or teach this test the new function)")


def resolved_patterns(parameters: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    template = load_template()
    stack = ResolvingStack.for_template(template["Resources"], parameters, template.get("Parameters", {}),
                                        template.get("Conditions", {}))
    out: dict[str, list[dict[str, Any]]] = {}
    for function, patterns in rule_patterns(template).items():
        for pattern in patterns:
            value = stack.resolve_all(pattern)
            out.setdefault(function, []).append(json.loads(value) if isinstance(value, str) else value)
    return out


class Bus:
    """moto EventBridge with the template's rules, one SQS queue per function as target."""

    def __init__(self, patterns: dict[str, list[dict[str, Any]]]) -> None:
        self.events = boto3.client("events", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queues: dict[str, str] = {}
        for function, function_patterns in patterns.items():
            url = self.sqs.create_queue(QueueName=f"route-{function}")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.queues[function] = url
            for index, pattern in enumerate(function_patterns):
                rule = f"{function}-{index}"
                self.events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
                self.events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])

    def deliver(self, event: dict[str, Any]) -> set[str]:
        """Put ``event`` on the bus; the functions whose rules matched it."""
        entry: dict[str, Any] = {
            "Source": str(event.get("source") or "direct.invocation"),
            "DetailType": str(event.get("detail-type") or "Direct Invocation Payload"),
            "Detail": json.dumps(event["detail"] if "detail-type" in event else event),
            "Resources": list(event.get("resources") or []),
        }
        if isinstance(event.get("time"), str) and event["time"].endswith("Z"):
            entry["Time"] = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        result = self.events.put_events(Entries=[entry])
        assert result["FailedEntryCount"] == 0, result
        reached: set[str] = set()
        for function, url in self.queues.items():
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if messages:
                reached.add(function)
        return reached


@pytest.fixture(scope="module")
def bus() -> Iterator[Bus]:
    with mock_aws():
        yield Bus(resolved_patterns(MANAGED))


SAMPLES = sorted(p.name for p in EVENTS.glob("*.json"))


def test_there_are_samples_for_every_routed_function() -> None:
    routed = set(resolved_patterns(MANAGED))
    covered = {function_for(name) for name in SAMPLES} - {None}
    assert routed <= covered, f"functions with rules but no events/ samples: {sorted(routed - covered)}"
    assert "ScalerFunction" in routed


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_reaches_exactly_its_function(bus: Bus, name: str) -> None:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8-sig"))
    expected = function_for(name)
    if isinstance(event, list) or "Records" in event:  # an SQS batch or similar: never an EventBridge event
        assert expected is None, f"{name} is not an EventBridge event"
        return
    assert bus.deliver(event) == ({expected} if expected else set()), name


# ------------------------------------------------------------------------------------ negative cases
def _in_cluster(event: dict[str, Any], cluster: str) -> dict[str, Any]:
    """A published ECS sample moved into ``cluster`` of the test account and region."""
    changes: dict[str, Any] = {"account": "123456789012", "region": REGION}
    if "clusterArn" in event.get("detail", {}):
        changes["detail.clusterArn"] = f"arn:aws:ecs:{REGION}:123456789012:cluster/{cluster}"
    resources = [r.replace(r.split(":")[4], "123456789012", 1) for r in event.get("resources", [])]
    for kind in ("service", "task"):
        resources = [f"arn:aws:ecs:{REGION}:123456789012:{kind}/{cluster}/{r.split('/')[-1]}"
                     if f":{kind}/" in r else r for r in resources]
    changes["resources"] = resources
    return variant(event, **changes)


def test_alarm_event_reaches_only_the_scaler(bus: Bus) -> None:
    for sample in ("cloudwatch-alarm-state-change-single-metric.json", "cloudwatch-alarm-state-change-metric-math.json",
                   "cloudwatch-alarm-state-change-composite-with-suppressor.json",
                   "cloudwatch-alarm-state-change-anomaly-detection.json"):
        assert bus.deliver(published(sample)) == {"ScalerFunction"}, sample


def test_running_task_reaches_no_function(bus: Bus) -> None:
    running = _in_cluster(published("ecs-task-state-change-running-fargate-2025.json"), "prod")
    assert running["detail"]["lastStatus"] == "RUNNING"
    assert bus.deliver(running) == set()
    stopped = variant(running, **{"detail.lastStatus": "STOPPED", "detail.desiredStatus": "STOPPED"})
    expected = {"HealerFunction"} if "HealerFunction" in resolved_patterns(MANAGED) else set()
    assert bus.deliver(stopped) == expected  # the control: only lastStatus made the difference


def test_unmanaged_cluster_reaches_no_function(bus: Bus) -> None:
    for sample in ("ecs-task-state-change-running-fargate-2025.json",
                   "ecs-service-action-service-task-placement-failure-fargate-spot.json",
                   "ecs-deployment-state-change-failed-circuit-breaker.json"):
        event = _in_cluster(published(sample), "someone-elses")
        if event["detail-type"] == "ECS Task State Change":
            event = variant(event, **{"detail.lastStatus": "STOPPED", "detail.desiredStatus": "STOPPED"})
        assert bus.deliver(event) == set(), sample


def test_deployment_event_of_a_managed_cluster_reaches_only_rollout(bus: Bus) -> None:
    if "RolloutFunction" not in resolved_patterns(MANAGED):
        pytest.fail("RolloutFunction has no EventBridge rule in template.yaml")
    for sample in ("ecs-deployment-state-change-completed.json",
                   "ecs-deployment-state-change-failed-circuit-breaker.json",
                   "ecs-deployment-state-change-in-progress-initial.json"):
        assert bus.deliver(_in_cluster(published(sample), "batch")) == {"RolloutFunction"}, sample


def test_service_actions_other_than_placement_failures_reach_no_function(bus: Bus) -> None:
    for sample in ("ecs-service-action-service-steady-state.json",
                   "ecs-service-action-capacity-provider-steady-state.json",
                   "ecs-service-action-service-task-start-impaired.json"):
        assert bus.deliver(_in_cluster(published(sample), "prod")) == set(), sample


def test_container_instance_events_reach_no_function(bus: Bus) -> None:
    assert bus.deliver(_in_cluster(published("ecs-container-instance-state-change.json"), "prod")) == set()


def test_direct_alarm_action_payloads_reach_no_function(bus: Bus) -> None:
    for sample in ("cloudwatch-alarm-lambda-action-payload-metric-alarm.json",
                   "cloudwatch-alarm-lambda-action-payload-composite-alarm.json"):
        assert bus.deliver(published(sample)) == set(), sample


# ------------------------------------------------------------------------------------ other accounts (issue 11)
def _matches(function: str, event: dict[str, Any]) -> bool:
    """moto's own pattern engine on the event as EventBridge delivers it (put_events cannot set another account:
    moto stamps the caller's)."""
    from moto.events.models import EventPattern

    return any(EventPattern.load(json.dumps(p)).matches_event(event)  # type: ignore[arg-type]
               for p in resolved_patterns(MANAGED)[function])


@pytest.mark.parametrize(("function", "event"), [
    ("ScalerFunction", published("cloudwatch-alarm-state-change-single-metric.json")),
    ("RolloutFunction", _in_cluster(published("ecs-deployment-state-change-failed-circuit-breaker.json"), "prod")),
    ("HealerFunction", variant(_in_cluster(published("ecs-task-state-change-running-fargate-2025.json"), "prod"),
                               **{"detail.lastStatus": "STOPPED"})),
], ids=["alarm", "deployment", "task"])
def test_events_from_another_account_or_region_match_no_rule(function: str, event: dict[str, Any]) -> None:
    """A dev account's alarm (or ECS event) forwarded to this bus must not reach the function: every rule
    filters on this account and region, like the code does (autopilot.settings.admits)."""
    ours = variant(event, account="123456789012", region=REGION)
    assert _matches(function, ours), "the control: this account's event matches"
    assert not _matches(function, variant(ours, account="210987654321"))
    assert not _matches(function, variant(ours, region="eu-west-1"))
