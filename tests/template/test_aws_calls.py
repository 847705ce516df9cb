"""The AWS call recorder (tests/aws_calls.py) that the IAM coverage check and the benchmarks rely on."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.aws.clients import client
from tests.aws_calls import RECORDER, as_function, iam_rows
from tests.conftest import load_handler, sample

pytestmark = pytest.mark.template

ECS = "arn:aws:ecs:us-east-1:123456789012"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("ecs", "UpdateService", {"cluster": "prod", "service": "web", "desiredCount": 3},
     [("ecs:UpdateService", f"{ECS}:service/prod/web", {"ecs:cluster": f"{ECS}:cluster/prod"})]),
    ("ecs", "UpdateService", {"cluster": f"{ECS}:cluster/prod", "service": "web"},
     [("ecs:UpdateService", f"{ECS}:service/prod/web", {"ecs:cluster": f"{ECS}:cluster/prod"})]),
    ("ecs", "RunTask", {"cluster": "batch", "taskDefinition": "etl:3", "tags": [{"key": "k", "value": "v"}],
                        "overrides": {"taskRoleArn": "arn:aws:iam::123456789012:role/etl"}},
     [("ecs:RunTask", f"{ECS}:task-definition/etl:3", {"ecs:cluster": f"{ECS}:cluster/batch"}),
      ("ecs:TagResource", f"{ECS}:task/batch/*",
       {"ecs:cluster": f"{ECS}:cluster/batch", "ecs:CreateAction": "RunTask"}),
      ("iam:PassRole", "arn:aws:iam::123456789012:role/etl", {"iam:PassedToService": "ecs-tasks.amazonaws.com"})]),
    ("ecs", "RegisterTaskDefinition", {"family": "web", "executionRoleArn": "arn:aws:iam::123456789012:role/x"},
     [("ecs:RegisterTaskDefinition", "*", {}),
      ("iam:PassRole", "arn:aws:iam::123456789012:role/x", {"iam:PassedToService": "ecs-tasks.amazonaws.com"})]),
    ("dynamodb", "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t"}}, {"Update": {"TableName": "t"}},
                                                          {"ConditionCheck": {"TableName": "t"}}]},
     [("dynamodb:PutItem", TABLE, {}), ("dynamodb:UpdateItem", TABLE, {}), ("dynamodb:ConditionCheckItem", TABLE, {})]),
    ("dynamodb", "Query", {"TableName": "t", "IndexName": "GSI1"}, [("dynamodb:Query", f"{TABLE}/index/GSI1", {})]),
    ("dynamodb", "BatchGetItem", {"RequestItems": {"t": {}}}, [("dynamodb:BatchGetItem", TABLE, {})]),
    ("sqs", "SendMessageBatch", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"},
     [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", {})]),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"},
     [("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", {})]),
    ("cloudwatch", "GetMetricData", {}, [("cloudwatch:GetMetricData", "*", {})]),
    ("cloudwatch", "DescribeAlarms", {"AlarmNames": ["a"]}, [("cloudwatch:DescribeAlarms", None, {})]),
])
def test_iam_rows(service: str, operation: str, params: dict[str, Any], expected: list[Any]) -> None:
    assert iam_rows(service, operation, params, "us-east-1") == expected


def test_only_calls_under_a_handler_are_attributed(deps: Any, lambda_context: Any) -> None:
    with RECORDER.capture(isolate=True) as calls:
        client("ecs").create_cluster(clusterName="prod")  # the test's own set-up: nobody's
        load_handler("scaler").lambda_handler(sample("scaler-unmanaged-alarm.json"), lambda_context)
    assert {c.function for c in calls} == {"ScalerFunction"}
    by_origin = {(c.origin, c.action) for c in calls}
    assert ("state", "dynamodb:Query") in by_origin  # the alarm index lookup
    assert ("audit", "dynamodb:PutItem") in by_origin  # "ignored: unknown alarm" is audited
    assert ("idempotency", "dynamodb:PutItem") in by_origin  # Powertools' own client is recorded too
    assert not any(c.action.startswith("ecs:") for c in calls)


def test_explicit_attribution(deps: Any) -> None:
    with RECORDER.capture(isolate=True) as calls, as_function("ReconcilerFunction"):
        client("ecs").list_clusters()
    assert [(c.function, c.action, c.resource) for c in calls] == [("ReconcilerFunction", "ecs:ListClusters", "*")]
