"""Self-monitoring in template.yaml: who watches ecs-autopilot.

- every function has an Errors and a Throttles alarm (AWS/Lambda, FunctionName = the function);
- dead letters alarm at once; a restart queue nobody consumes alarms;
- the functions' own metrics (InvalidEvent, NotificationFailed) alarm on exactly the namespace, metric
  name and dimensions the code emits: captured here from the EMF a rejected event and a failed
  notification really print (an alarm on a dimension set the code does not emit never fires);
- every alarm notifies the topic (firing and recovering), and can: the topic is encrypted with a customer
  managed key whose policy lets this stack's alarms (names ``${AWS::StackName}-...``) use it. CloudWatch
  cannot publish to a topic under the AWS managed key alias/aws/sns.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import sample
from tests.proofs.support import invoke, scaler_world, template

TEMPLATE = template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = sorted(k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
ALARMS = {k: r["Properties"] for k, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
TOPIC = {"Ref": "NotificationTopic"}


def alarms_on(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [a for a in ALARMS.values() if a.get("Namespace") == namespace and a.get("MetricName") == metric]


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_errors_and_throttles_alarms(function: str, metric: str) -> None:
    found = [a for a in alarms_on("AWS/Lambda", metric)
             if a.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": function}}]]
    assert len(found) == 1, f"{function}: one {metric} alarm"
    (alarm,) = found
    assert alarm["Statistic"] == "Sum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


def test_dead_letters_alarm_at_once() -> None:
    dlq = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    (alarm,) = [a for a in alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible") if a["Dimensions"] == dlq]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Period"]) == (0, 1, 60)
    assert alarm["Statistic"] == "Maximum"


def test_a_restart_queue_nobody_consumes_alarms() -> None:
    queue = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RestartQueue", "QueueName"]}}]
    (alarm,) = [a for a in alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage") if a["Dimensions"] == queue]
    assert alarm["Threshold"] > 900, "messages are delayed (and re-queued) up to 900 s: only older means stuck"


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_and_treats_no_data_as_fine(name: str) -> None:
    alarm = ALARMS[name]
    assert TOPIC in alarm["AlarmActions"] and TOPIC in alarm["OKActions"]
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), "the key policy names this prefix"


def test_the_topic_key_lets_this_stacks_alarms_and_the_functions_publish() -> None:
    topic = RESOURCES["NotificationTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "NotificationKey"}, "not alias/aws/sns: CloudWatch cannot use it"
    key = RESOURCES["NotificationKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (grant,) = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-*")
    publishers = [f for f in FUNCTIONS if any("SNSPublishMessagePolicy" in p for p in
                                              RESOURCES[f]["Properties"]["Policies"] if isinstance(p, dict))]
    assert len(publishers) >= 5, publishers  # the policy resource function notifies nobody: it may not publish
    for function in publishers:
        assert {"Ref": "NotificationKeyUsePolicy"} in RESOURCES[function]["Properties"]["Policies"], function


# ------------------------------------------------------------------------------------------- EMF
def emitted(stdout: str, metric: str) -> list[tuple[str, dict[str, str]]]:
    """(namespace, dimensions) of every EMF document in ``stdout`` carrying ``metric``."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == metric for m in directive["Metrics"]):
                for dimension_set in directive["Dimensions"]:
                    found.append((directive["Namespace"], {d: doc[d] for d in dimension_set}))
    return found


def alarm_dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def assert_alarm_matches(metric: str, stdout: str) -> None:
    emissions = emitted(stdout, metric)
    assert emissions, f"the code emitted no {metric} metric"
    (alarm,) = [a for a in ALARMS.values() if a.get("MetricName") == metric]
    assert (alarm["Namespace"], alarm_dimensions(alarm)) in emissions, (alarm, emissions)


def test_the_invalid_event_alarm_watches_what_a_rejected_event_emits(deps: Any, capsys: Any) -> None:
    capsys.readouterr()
    result = invoke("scaler", {"detail-type": "CloudWatch Alarm State Change", "detail": "garbage"})
    assert result["status"] == "rejected"
    assert_alarm_matches("InvalidEvent", capsys.readouterr().out)


def test_the_notification_alarm_watches_what_a_failed_notification_emits(deps: Any, capsys: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    scaler_world(deps)

    def unavailable(*_: Any, **__: Any) -> None:
        raise ConnectionError("SNS unreachable")

    monkeypatch.setattr(deps.notifier, "publish", unavailable)
    capsys.readouterr()
    result = invoke("scaler", sample("scaler-alarm-high.json"))
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"]
    assert_alarm_matches("NotificationFailed", capsys.readouterr().out)


def test_the_action_failed_alarm_watches_what_a_failed_action_emits(deps: Any, capsys: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: ActionFailed is emitted on every failure path, and alarmed on exactly what is emitted: here an
    UpdateService refused after botocore's retries (the event fails and is retried)."""
    from botocore.exceptions import ClientError

    scaler_world(deps)

    def refused(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateService")

    monkeypatch.setattr(deps.ecs, "set_desired_count", refused)
    capsys.readouterr()
    with pytest.raises(ClientError):
        invoke("scaler", sample("scaler-alarm-high.json"))
    out = capsys.readouterr().out
    assert_alarm_matches("ActionFailed", out)
    assert sum(doc.count('"ActionFailed":[1') + doc.count('"ActionFailed":1') for doc in out.splitlines()
               if doc.startswith('{"_aws"')) == 1, "counted once, not again by the use case's entry point"


def test_a_failure_before_any_decision_is_counted_too(deps: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table cannot be read (no decision was reached): the invocation fails (Lambda retries it) and the failure
    is counted as ActionFailed all the same."""
    scaler_world(deps)

    def unreachable(*_: Any, **__: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(deps.store, "policies_for_alarm", unreachable)
    capsys.readouterr()
    with pytest.raises(ConnectionError):
        invoke("scaler", sample("scaler-alarm-high.json"))
    assert_alarm_matches("ActionFailed", capsys.readouterr().out)
