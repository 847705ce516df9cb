"""`autopilot dlq`: the three kinds of dead letter are recognised, listed and sent back where they belong."""

from __future__ import annotations

import json

from autopilot.aws.clients import client
from autopilot_tools.dlq.cli import run
from tests.conftest import published

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:ecs-autopilot-HealerFunction"


def fill(stack) -> str:
    sqs = client("sqs")
    url = stack.ref("DeadLetterQueue")
    event = published("ecs-task-state-change-stopped-user-initiated-ec2-service.json")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event), MessageAttributes={
        "RULE_ARN": {"DataType": "String", "StringValue": "arn:aws:events:us-east-1:123456789012:rule/x"},
        "TARGET_ARN": {"DataType": "String", "StringValue": FUNCTION},
        "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Lambda throttled"}})
    alarm = published("cloudwatch-alarm-state-change-single-metric.json")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
        "version": "1.0", "requestContext": {"functionArn": FUNCTION.replace("Healer", "Scaler") + ":$LATEST",
                                             "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": alarm, "responsePayload": {"errorType": "ClientError", "errorMessage": "Throttling"}}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"cluster": "batch", "family": "nightly-etl", "attempt": 2}))
    sqs.send_message(QueueUrl=url, MessageBody="not json at all")
    return url


def test_list_recognises_every_origin(stack, capsys):
    url = fill(stack)
    assert run(["list", "--queue", url, "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)
    assert sorted(letter["origin"] for letter in letters) == ["eventbridge", "lambda-async", "restart-queue", "unknown"]
    by_origin = {letter["origin"]: letter for letter in letters}
    assert by_origin["eventbridge"]["target"] == FUNCTION
    assert "Lambda throttled" in by_origin["eventbridge"]["error"]
    assert by_origin["lambda-async"]["payload"]["detail"]["alarmName"] == "ServerCpuTooHigh"
    assert by_origin["restart-queue"]["summary"] == "restart of batch/nightly-etl"


def test_redrive_sends_back_and_deletes_only_what_was_sent(stack, capsys):
    url = fill(stack)
    invoked: list[tuple[str, dict]] = []
    code = run(["redrive", "--queue", url, "--restart-queue", stack.ref("RestartQueue"), "--yes"],
               invoke=lambda arn, payload: invoked.append((arn, payload)))
    assert code == 1  # the unknown letter stays and is reported
    assert sorted(arn for arn, _ in invoked) == sorted([FUNCTION, FUNCTION.replace("Healer", "Scaler") + ":$LATEST"])
    assert {p.get("detail-type") for _, p in invoked} == {"ECS Task State Change", "CloudWatch Alarm State Change"}
    restarted = client("sqs").receive_message(QueueUrl=stack.ref("RestartQueue"))["Messages"]
    assert json.loads(restarted[0]["Body"])["family"] == "nightly-etl"
    remaining = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                  "ApproximateNumberOfMessagesNotVisible"])
    counts = remaining["Attributes"]
    assert int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 1


def test_redrive_refuses_without_yes_when_not_interactive(stack, capsys, monkeypatch):
    url = fill(stack)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert run(["redrive", "--queue", url], invoke=lambda *a: None) == 1
    assert "--yes" in capsys.readouterr().err
