"""Standalone restarts end to end against moto: healer -> restart queue -> RestarterFunction -> RunTask,
redeliveries, launch failures with back-off, give-up, partial batch failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.decide.restarts import MIN_RETRY_SECONDS
from autopilot.models.healing_state import RestartMessage
from autopilot.models.policy import TaskPolicy, family_key
from tests.conftest import load_handler, sample, variant

ARN = "arn:aws:ecs:us-east-1:123456789012"


@pytest.fixture
def batch(deps) -> dict[str, Any]:
    """Cluster batch with nightly-etl:3 (awsvpc, Fargate) and a TaskPolicy using the default VPC's network."""
    ecs, ec2 = client("ecs"), client("ec2")
    ecs.create_cluster(clusterName="batch")
    for _ in range(3):
        arn = ecs.register_task_definition(
            family="nightly-etl", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "nightly-etl", "image": "etl", "memory": 512}])["taskDefinition"][
            "taskDefinitionArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    policy = TaskPolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "TaskPolicy", "metadata": {"cluster": "batch", "family": "nightly-etl"},
        "spec": {"restart": {"maxRestarts": 2, "initialBackoffSeconds": 0, "maxBackoffSeconds": 0,
                             "resetAfterSeconds": 600},
                 "network": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}})
    deps.store.put_policy(policy, deps.clock())
    return {"arn": arn, "subnet": subnet, "group": group}


@pytest.fixture
def healer():
    return load_handler("healer")


@pytest.fixture
def restarter():
    return load_handler("restarter")


def queued(stack) -> list[dict[str, Any]]:
    """Take every visible message off the restart queue, as SQS would hand them to Lambda."""
    sqs, url = client("sqs"), stack.ref("RestartQueue")
    records = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return records
        for m in got:
            records.append(sqs_record(m["Body"], m["MessageId"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    """A record of the project's SQS sample event with this body (the shape Lambda delivers)."""
    base = sample("restarter-restart-due.json")["Records"][0]
    return {**base, "body": body, "messageId": message_id}


def tasks() -> list[dict[str, Any]]:
    ecs = client("ecs")
    arns = ecs.list_tasks(cluster="batch")["taskArns"]
    return ecs.describe_tasks(cluster="batch", tasks=arns, include=["TAGS"])["tasks"] if arns else []


def stopped(task_arn: str, started_by: str | None, n: int) -> dict[str, Any]:
    changes = {"id": f"evt-{n}", "resources": [task_arn], "detail.taskArn": task_arn}
    if started_by:
        changes["detail.startedBy"] = started_by
    return variant(sample("healer-standalone-crash.json"), **changes)


def test_a_failed_task_is_rerun_with_its_definition_overrides_network_and_lineage(
        batch, deps, healer, restarter, lambda_context, stack):
    event = sample("healer-standalone-crash.json")
    event = variant(event, **{"detail.overrides": {"containerOverrides": [
        {"name": "nightly-etl", "command": ["etl", "--day", "2026-11-25"]}, {"name": "aws-otel-collector"}]}})
    assert healer.lambda_handler(event, lambda_context)["outcomes"][0]["outcome"] == "restart-queued"
    records = queued(stack)
    assert len(records) == 1
    response = restarter.lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": []}
    (task,) = tasks()
    first = event["detail"]["taskArn"]
    assert task["taskDefinitionArn"].endswith("nightly-etl:3")
    assert task["startedBy"] == f"autopilot/{first.rsplit('/', 1)[1]}"
    assert {"key": "autopilot:lineage", "value": first} in task["tags"]
    assert task["overrides"]["containerOverrides"] == [{"name": "nightly-etl", "command": ["etl", "--day",
                                                                                             "2026-11-25"]}]
    assert task["capacityProviderName"] == "FARGATE"
    attempts = deps.store.load_state(family_key("batch", "nightly-etl")).state.restarts.lineages[
        first.rsplit("/", 1)[1]].attempts
    assert [(a.sequence, a.status) for a in attempts] == [(1, "started")]


def test_a_redelivered_message_does_not_start_a_second_task(batch, deps, healer, restarter, lambda_context, stack):
    healer.lambda_handler(sample("healer-standalone-crash.json"), lambda_context)
    records = queued(stack)
    restarter.lambda_handler({"Records": records}, lambda_context)
    restarter.lambda_handler({"Records": records}, lambda_context)  # SQS at-least-once
    restarter.lambda_handler({"Records": records + records}, lambda_context)  # twice in one batch
    assert len(tasks()) == 1


def test_the_lineage_follows_reruns_and_gives_up_after_max_restarts(
        batch, deps, healer, restarter, lambda_context, stack, topic_messages):
    first = sample("healer-standalone-crash.json")
    lineage = first["detail"]["taskArn"].rsplit("/", 1)[1]
    healer.lambda_handler(first, lambda_context)
    for n in range(2):  # each re-run fails again
        restarter.lambda_handler({"Records": queued(stack)}, lambda_context)
        rerun = next(t for t in tasks() if t["tags"][1]["value"] == str(n + 1))
        result = healer.lambda_handler(stopped(rerun["taskArn"], rerun["startedBy"], n), lambda_context)
    assert result["outcomes"][0]["outcome"] == "gave-up"
    assert queued(stack) == []
    assert len(tasks()) == 2
    state = deps.store.load_state(family_key("batch", "nightly-etl")).state.restarts.lineages[lineage]
    assert state.status == "gave-up" and state.restarts == 2
    assert any("Gave up restarting batch/nightly-etl" in m for m in topic_messages())


def throttled(**_: Any) -> Any:
    from botocore.exceptions import ClientError

    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask")


def no_capacity(**_: Any) -> Any:
    return {"tasks": [], "failures": [{"arn": f"{ARN}:cluster/batch", "reason": "RESOURCE:FARGATE",
                                       "detail": "no Fargate capacity"}]}


@pytest.fixture
def sent(deps, monkeypatch) -> list[tuple[dict[str, Any], int]]:
    """Every (message, delay) sent to the restart queue (moto hides delayed messages for real seconds)."""
    queue = deps.executor.restart_queue
    real = queue.send
    calls: list[tuple[dict[str, Any], int]] = []

    def send(body: dict[str, Any], delay_seconds: int, dedup_id: str) -> None:
        calls.append((body, delay_seconds))
        real(body, delay_seconds, dedup_id)

    monkeypatch.setattr(queue, "send", send)
    return calls


def test_run_task_throttled_after_retries_is_redelivered_without_counting_a_restart(
        batch, deps, healer, restarter, lambda_context, stack, monkeypatch):
    """Throttling is AWS's trouble, not the task's: the record fails (SQS redelivers it after the visibility
    timeout, dead-letters it after five receives) and the lineage's count is untouched."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    healer.lambda_handler(sample("healer-standalone-crash.json"), lambda_context)
    records = queued(stack)
    key = family_key("batch", "nightly-etl")
    before = deps.store.load_state(key).state.restarts
    real = deps.ecs.client.run_task
    monkeypatch.setattr(deps.ecs.client, "run_task", throttled)
    with pytest.raises(BatchProcessingError):  # a one-record batch that failed entirely fails the invocation
        restarter.lambda_handler({"Records": records}, lambda_context)
    assert tasks() == []
    assert deps.store.load_state(key).state.restarts == before
    monkeypatch.setattr(deps.ecs.client, "run_task", real)
    assert restarter.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert len(tasks()) == 1  # the redelivery starts the task once


@pytest.mark.parametrize("fault", [no_capacity])
def test_run_task_failures_are_retried_with_the_back_off_not_in_a_loop(
        batch, deps, healer, restarter, lambda_context, stack, topic_messages, monkeypatch, sent, fault):
    healer.lambda_handler(sample("healer-standalone-crash.json"), lambda_context)
    records = queued(stack)
    monkeypatch.setattr(deps.ecs.client, "run_task", fault)  # the botocore client behind the ECS port
    response = restarter.lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": []}  # handled: retried through the queue with the back-off
    body, delay = sent[-1]
    assert delay == MIN_RETRY_SECONDS  # the policy's back-off is 0; a failed launch still waits
    attributes = client("sqs").get_queue_attributes(QueueUrl=stack.ref("RestartQueue"),
                                                    AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    message = RestartMessage.model_validate(body)
    assert message.sequence == 2 and message.restarts == 2
    outcomes = [h.outcome for h in deps.store.history(now=deps.clock())]
    assert "failed:restart-run" in outcomes and "restart-queued" in outcomes
    retry = [sqs_record(json.dumps(body), "retry-1")]
    before = len(sent)
    restarter.lambda_handler({"Records": retry}, lambda_context)  # not due yet: queued again for the rest
    assert [d for _, d in sent[before:]] == [MIN_RETRY_SECONDS]
    deps.clock.advance(MIN_RETRY_SECONDS)
    restarter.lambda_handler({"Records": retry}, lambda_context)  # due; fails again -> maxRestarts 2 reached
    assert len(sent) == before + 1
    assert tasks() == []
    assert any("Gave up restarting" in m for m in topic_messages())


def test_a_message_not_yet_due_is_queued_again(batch, deps, restarter, lambda_context, stack, topic_messages):
    body = json.loads(sample("restarter-restart-not-yet-due.json")["Records"][0]["body"])
    body["request"]["networkConfiguration"]["awsvpcConfiguration"].update(
        subnets=[batch["subnet"]], securityGroups=[batch["group"]])
    response = restarter.lambda_handler({"Records": [sqs_record(json.dumps(body), "m-1")]}, lambda_context)
    assert response == {"batchItemFailures": []}
    assert tasks() == []
    attributes = client("sqs").get_queue_attributes(QueueUrl=stack.ref("RestartQueue"),
                                                    AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert topic_messages() == []  # carrying a long back-off forward is not news


def test_the_published_sample_runs(batch, deps, restarter, lambda_context):
    event = sample("restarter-restart-due.json")
    body = json.loads(event["Records"][0]["body"])
    body["request"]["networkConfiguration"]["awsvpcConfiguration"].update(
        subnets=[batch["subnet"]], securityGroups=[batch["group"]])
    event["Records"][0]["body"] = json.dumps(body)
    assert restarter.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(tasks()) == 1


def test_only_the_failing_record_is_reported(batch, deps, restarter, lambda_context, monkeypatch):
    """An invalid body is rejected (audited, deleted); an unexpected error fails only its own record."""
    event = sample("restarter-batch-with-invalid.json")
    good = json.loads(event["Records"][0]["body"])
    good["request"]["networkConfiguration"]["awsvpcConfiguration"].update(
        subnets=[batch["subnet"]], securityGroups=[batch["group"]])
    broken = dict(good, lineage="other", first_task=f"{ARN}:task/batch/other", sequence=1,
                  request=dict(good["request"], startedBy="autopilot/other", clientToken="ap-other-1"))
    records = [sqs_record(json.dumps(good), "good"), event["Records"][1],
               sqs_record(json.dumps(broken), "broken")]
    real = deps.ecs.run_task

    def run_task(request):
        if request["startedBy"] == good["request"]["startedBy"]:
            return real(request)
        raise ConnectionError("endpoint unreachable")

    monkeypatch.setattr(deps.ecs, "run_task", run_task)
    response = restarter.lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "broken"}]}
    assert len(tasks()) == 1
    outcomes = [h.outcome for h in deps.store.history(now=deps.clock())]
    assert "rejected:invalid-event" in outcomes
    # the claim of the broken record was released: its redelivery runs it
    monkeypatch.setattr(deps.ecs, "run_task", real)
    assert restarter.lambda_handler({"Records": [records[2]]}, lambda_context) == {"batchItemFailures": []}
    assert len(tasks()) == 2


def test_a_deleted_policy_stops_restarts(batch, deps, healer, restarter, lambda_context, stack):
    healer.lambda_handler(sample("healer-standalone-crash.json"), lambda_context)
    records = queued(stack)
    deps.store.delete_policy(family_key("batch", "nightly-etl"))
    restarter.lambda_handler({"Records": records}, lambda_context)
    assert tasks() == []
    assert "ignored:no-policy" in [h.outcome for h in deps.store.history(now=deps.clock())]
