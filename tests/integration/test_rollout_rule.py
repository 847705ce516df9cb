"""RolloutFunction's rule and IAM as the template builds them, checked with moto's EventBridge pattern engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot_tools.localstack import rule_patterns
from tests.conftest import EVENTS, published, variant

DEPLOYMENT_EVENTS = sorted(p.name for p in EVENTS.glob("rollout-*.json"))


@pytest.fixture
def pattern(stack: Any) -> str:
    (raw,) = rule_patterns(stack.template)["RolloutFunction"]
    resolved = stack.resolve_all(raw)
    assert isinstance(resolved, str)  # a JSON string: one wildcard per managed cluster
    return resolved


@pytest.fixture
def deliver(pattern: str):
    """put_events through a real pattern engine; returns a function telling whether the rule matched."""
    events, sqs = client("events"), client("sqs")
    url = sqs.create_queue(QueueName="rollout-rule-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="rollout-probe", EventPattern=pattern)
    events.put_targets(Rule="rollout-probe", Targets=[{"Id": "q", "Arn": arn}])

    def matched(event: dict[str, Any]) -> bool:
        events.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                    "Detail": json.dumps(event["detail"]), "Resources": event.get("resources", [])}])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return bool(got)

    return matched


def test_pattern_has_one_wildcard_per_managed_cluster(pattern):
    assert json.loads(pattern) == {
        "source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"],
        "account": ["123456789012"], "region": ["us-east-1"],
        "resources": [{"wildcard": "arn:*:ecs:*:*:service/prod/*"}, {"wildcard": "arn:*:ecs:*:*:service/batch/*"}]}


@pytest.mark.parametrize("name", DEPLOYMENT_EVENTS)
def test_every_rollout_sample_matches(deliver, name):
    assert deliver(json.loads((EVENTS / name).read_text()))


@pytest.mark.parametrize(("arn", "expected"), [
    ("arn:aws:ecs:us-east-1:123456789012:service/batch/etl", True),
    ("arn:aws:ecs:us-east-1:123456789012:service/other/web", False),
    ("arn:aws:ecs:us-east-1:123456789012:service/prod-eu/web", False),  # a prefix of a managed name is not it
    ("arn:aws:ecs:us-east-1:123456789012:service/web", False),  # old format: no cluster, cannot be managed
])
def test_only_managed_clusters_match(deliver, arn, expected):
    event = published("ecs-deployment-state-change-completed.json")
    assert deliver(variant(event, **{"resources.0": arn})) is expected


@pytest.mark.parametrize("name", ["ecs-task-state-change-running-fargate-2025.json",
                                  "ecs-service-action-service-steady-state.json",
                                  "cloudwatch-alarm-state-change-single-metric.json"])
def test_other_events_do_not_match(deliver, name):
    event = published(name)
    event["resources"] = ["arn:aws:ecs:us-east-1:123456789012:service/prod/web"]
    assert not deliver(event)


def test_rollout_iam_is_exactly_what_it_calls(stack):
    props = stack.template["Resources"]["RolloutFunction"]["Properties"]
    statements = next(p["Statement"] for p in props["Policies"] if isinstance(p, dict) and "Statement" in p)
    actions = sorted(a for s in statements for a in s["Action"])
    assert actions == ["ecs:DescribeServices", "ecs:UpdateService"]
    update = next(s for s in statements if s["Action"] == ["ecs:UpdateService"])
    assert stack.resolve(update["Resource"]) == ["arn:*:ecs:*:*:service/prod/*", "arn:*:ecs:*:*:service/batch/*"]
    assert set(update["Condition"]["StringEquals"]) == {"aws:ResourceAccount", "aws:RequestedRegion"}


def test_derive_revision_policy_limits_pass_role(stack):
    doc = stack.template["Resources"]["DeriveRevisionPolicy"]["Properties"]["PolicyDocument"]
    (conditional,) = [s for s in doc["Statement"] if "Fn::If" in s]
    condition, statement, otherwise = conditional["Fn::If"]
    assert condition == "HasPassRoleArns" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    tag = next(s for s in doc["Statement"] if isinstance(s, dict) and s.get("Action") == ["ecs:TagResource"])
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
