"""The reconciler's fan-out on moto (usecases/shards.py): above the shard size, the scheduled run sends one
message per shard to the reconcile queue (the template's), spread over the minute; each shard reconciles its
own services; a stale shard does nothing; below the size a run is done in one invocation, as before."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from autopilot.usecases.shards import shard_of
from tests.conftest import load_handler

SERVICES = [f"svc-{i:02d}" for i in range(7)]


def policy(service: str) -> ServicePolicy:
    return ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": service},
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 10,
                             "rules": [{"alarm": f"{service}-high", "exactCapacity": 5}]}}})


@pytest.fixture
def estate(deps: Any, stack: Any) -> Any:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="app", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}])
    for service in SERVICES:
        ecs.create_service(cluster="prod", serviceName=service, taskDefinition="app", desiredCount=20)  # > maxTasks
        deps.store.put_policy(policy(service), deps.clock())
    deps.settings.reconcile_shard_size = 3
    queue = stack.ref("ReconcileShardQueue")
    deps.shards = Recording(queue)
    return deps


class Recording:
    """The SQS shard queue adapter, keeping what it sent (moto holds delayed messages back in real time)."""

    def __init__(self, queue: str) -> None:
        from autopilot.aws.shard_queue import SqsShardQueue

        self.real = SqsShardQueue(queue)
        self.sent: list[tuple[dict[str, Any], int]] = []

    def send_batch(self, messages: list[tuple[dict[str, Any], int]]) -> None:
        self.sent += messages
        self.real.send_batch(messages)


def desired(service: str) -> int:
    return int(client("ecs").describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


def received(stack: Any) -> list[dict[str, Any]]:
    sqs = client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=stack.ref("ReconcileShardQueue"), MaxNumberOfMessages=10,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        out += got


def test_the_template_gives_the_reconciler_its_queue(stack: Any) -> None:
    env = stack.function_environment(stack.template, "ReconcilerFunction")
    assert env["AUTOPILOT_RECONCILE_QUEUE_URL"] == stack.ref("ReconcileShardQueue")


def test_a_run_above_the_shard_size_fans_out_and_each_shard_does_its_part(estate: Any, stack: Any,
                                                                         lambda_context: Any) -> None:
    reconciler = load_handler("reconciler")
    answer = reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    assert answer == {"status": "fanned-out", "policies": 7, "shards": 3}
    assert [desired(s) for s in SERVICES] == [20] * 7, "the scheduled invocation itself acts on nothing"
    assert [delay for _, delay in estate.shards.sent] == [0, 16, 33], "spread over the minute"
    (now,) = received(stack)  # the others are delayed (SQS DelaySeconds)
    assert json.loads(now["Body"]) == estate.shards.sent[0][0]
    bodies = [body for body, _ in estate.shards.sent]
    assert [(b["shard"], b["of"], b["run"]) for b in bodies] == [(0, 3, "tick-1"), (1, 3, "tick-1"), (2, 3, "tick-1")]
    first = bodies[0]
    mine = [s for s in SERVICES if shard_of(f"SVC#prod#{s}", 3) == 0]
    result = reconciler.lambda_handler({"Records": [{"body": json.dumps(first)}]}, lambda_context)
    assert result["status"] == "ok"
    assert {s for s in SERVICES if desired(s) == 10} == set(mine), "shard 0 repaired exactly its services"
    for body in bodies[1:]:
        reconciler.lambda_handler({"Records": [{"body": json.dumps(body)}]}, lambda_context)
    assert [desired(s) for s in SERVICES] == [10] * 7


def test_a_stale_shard_does_nothing(estate: Any, lambda_context: Any) -> None:
    reconciler = load_handler("reconciler")
    stale = {"v": 1, "run": "tick-0", "shard": 0, "of": 1, "at": (estate.clock() - timedelta(minutes=3)).isoformat()}
    result = reconciler.lambda_handler({"Records": [{"body": json.dumps(stale)}]}, lambda_context)
    assert result["shards"][0]["status"] == "ignored" and "stale" in result["shards"][0]["reason"]
    assert [desired(s) for s in SERVICES] == [20] * 7


def test_below_the_shard_size_a_run_is_done_in_one_invocation(estate: Any, stack: Any, lambda_context: Any) -> None:
    estate.settings.reconcile_shard_size = 500
    answer = load_handler("reconciler").lambda_handler({"id": "tick-1"}, lambda_context)
    assert answer["status"] == "ok" and received(stack) == []
    assert [desired(s) for s in SERVICES] == [10] * 7


def test_shards_are_stable_and_balanced() -> None:
    keys = [f"SVC#prod-{c}#svc-{i:04d}" for c in range(5) for i in range(1000)]
    counts = [sum(1 for k in keys if shard_of(k, 10) == s) for s in range(10)]
    assert min(counts) > 400 and max(counts) < 600
    assert [shard_of(k, 10) for k in keys[:50]] == [shard_of(k, 10) for k in keys[:50]]
