"""Faults: throttling, HTTP 500/503 and read timeouts injected into each AWS call of each path, on the wire.

The injector (``support.Faults``) answers a chosen request in botocore's ``before-send`` step, before it
leaves for AWS (the moto server), so botocore's own standard retry mode (``autopilot.aws.clients``:
max_attempts 5, i.e. 5 retries) sees exactly what it would see from AWS; only its sleeps are removed.
Each path is proven in one chain, for two pairings of fault kinds (each kind both exhausts the retries
and is retried):

1. the call fails on all 6 attempts (the first and 5 retries): the handler raises (Lambda retries the
   event, then dead-letters it), nothing reached AWS after the failing call, and the state table is
   exactly as before (no cooldown, counter, LKG, lineage or idempotency record consumed) but for the
   audit line of the failure;
2. Lambda's retry of the same event, with the call failing twice more: botocore retries, the action is
   done exactly once, and partial progress of the failed attempt is resumed, not repeated;
3. a later duplicate of the event changes nothing.

Plus the answers that get lost after AWS applied the request (the write happened, the response timed
out), and a notification that fails after its action was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from autopilot.aws.clients import RETRY_CONFIG, client
from tests.conftest import sample, variant
from tests.proofs.support import (
    ALWAYS,
    ETL,
    WEB,
    healer_world,
    invoke,
    outcomes,
    restarter_sample,
    restarter_world,
    rollout_world,
    scaler_world,
    state_of,
    table_snapshot,
    td,
)

# botocore's ``max_attempts`` counts retries: 5 retries, so 6 attempts in all ("reached max retries: 5").
ATTEMPTS = int(RETRY_CONFIG.retries["max_attempts"]) + 1  # type: ignore[index]
PAIRS = [("throttle", "503"), ("timeout", "500")]  # (exhausts the retries, fails twice on the retry)
RAISED = (ClientError, ReadTimeoutError)
Body = Callable[[dict[str, Any]], bool]


def claim(body: dict[str, Any]) -> bool:
    """The conditional PutItem of a service's state (the claim made before any AWS mutation)."""
    return body.get("Item", {}).get("SK", {}).get("S") == "STATE" and "ConditionExpression" in body


def state_transaction(body: dict[str, Any]) -> bool:
    """A state write with its audit line in one TransactWriteItems (a non-mutating decision that counts)."""
    items = body.get("TransactItems") or [{}]
    return items[0].get("Put", {}).get("Item", {}).get("SK", {}).get("S") == "STATE"


def desired(service: str = "web") -> int:
    return int(client("ecs").describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


def running() -> str:
    return str(client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"])


def reached(served: Any) -> dict[str, int]:
    """The mutating requests that reached AWS since the last ``served.faults.sent.clear()``."""
    return {k: v for k, v in served.faults.sent.items()
            if not k.startswith("dynamodb:") and not k.split(":")[1].startswith(("Describe", "List", "Get"))}


@dataclass
class Chain:
    """The mutating requests that reached AWS in each step of a chain, and the retry's result."""

    failed: dict[str, int]  # step 1: the invocation whose call failed 6 times
    retried: dict[str, int]  # step 2: Lambda's retry of the event
    duplicate: dict[str, int]  # step 3: a later duplicate
    result: Any


def chain(served: Any, function: str, event: Any, service: str, operation: str, exhaust: str, transient: str,
          when: Body | None = None, failed_outcome: str | None = None, attempts: int = ATTEMPTS) -> Chain:
    """Steps 1 to 3 of the module docstring (checking step 1 here); the caller checks what reached AWS."""
    deps, faults = served.deps, served.faults
    before = table_snapshot(deps)
    faults.fail(service, operation, exhaust, times=ALWAYS, when=when)
    faults.sent.clear()
    with pytest.raises(RAISED) as raised:
        invoke(function, event)
    if exhaust == "timeout":
        assert isinstance(raised.value, ReadTimeoutError)
    assert faults.injected[f"{service}:{operation}:{exhaust}"] == attempts, "botocore tried 6 times"
    assert table_snapshot(deps) == before, "a failed action consumes nothing"
    if failed_outcome:
        assert failed_outcome in outcomes(deps), "the failure is audited"
    failed = reached(served)
    faults.clear()
    faults.fail(service, operation, transient, times=2, when=when)
    faults.sent.clear()
    result = invoke(function, event)  # Lambda's retry of the same event
    assert faults.injected[f"{service}:{operation}:{transient}"] == 2
    retried = reached(served)
    faults.sent.clear()
    invoke(function, event)  # a duplicate, later
    return Chain(failed=failed, retried=retried, duplicate=reached(served), result=result)


# ---------------------------------------------------------------------------------------- scaler
@pytest.mark.parametrize(("exhaust", "transient"), PAIRS)
def test_scaler_update_service(served: Any, exhaust: str, transient: str) -> None:
    scaler_world(served.deps)
    steps = chain(served, "scaler", sample("scaler-alarm-high.json"), "ecs", "UpdateService", exhaust, transient,
                  failed_outcome="failed:scale-out")
    assert steps.failed == {}
    assert steps.retried == {"ecs:UpdateService": 1, "sns:Publish": 1}
    assert steps.duplicate == {}
    assert desired() == 6
    assert outcomes(served.deps, "prod", "web").count("scale-out") == 1


@pytest.mark.parametrize(("exhaust", "transient"), [("timeout", "throttle")])
def test_scaler_claim(served: Any, exhaust: str, transient: str) -> None:
    """The claim (conditional PutItem) fails: nothing was done, nothing is consumed."""
    scaler_world(served.deps)
    steps = chain(served, "scaler", sample("scaler-alarm-high.json"), "dynamodb", "PutItem", exhaust, transient,
                  when=claim)
    assert steps.failed == {}
    assert steps.retried == {"ecs:UpdateService": 1, "sns:Publish": 1}
    assert steps.duplicate == {}
    assert desired() == 6


# ---------------------------------------------------------------------------------------- rollout
@pytest.mark.parametrize(("exhaust", "transient"), PAIRS)
def test_rollout_rollback_update_service(served: Any, exhaust: str, transient: str) -> None:
    rollout_world(served.deps)
    steps = chain(served, "rollout", sample("rollout-failed-circuit-breaker.json"), "ecs", "UpdateService", exhaust,
                  transient, failed_outcome="failed:rollback")
    assert steps.failed == {}
    assert steps.retried == {"ecs:UpdateService": 1, "sns:Publish": 1}
    assert steps.duplicate == {}
    assert running() == td("web", 1)
    rollout = state_of(served.deps, WEB).rollout
    assert rollout.lkg == td("web", 1) and len(rollout.rollbacks) == 1


# ---------------------------------------------------------------------------------------- healer
def oom_event(world: dict[str, Any]) -> dict[str, Any]:
    return variant(sample("healer-oom.json"), **{"detail.taskDefinitionArn": world["web"][6]})


@pytest.mark.parametrize(("operation", "exhaust", "transient"), [
    ("DescribeTaskDefinition", "throttle", "500"),
    ("RegisterTaskDefinition", "503", "timeout"),
    ("UpdateService", "timeout", "throttle"),
])
def test_healer_oom_right_sizing(served: Any, operation: str, exhaust: str, transient: str) -> None:
    """Each call of derive-revision; a failed UpdateService after RegisterTaskDefinition is resumed: the
    retry finds the revision the failed attempt registered and registers nothing new. RegisterTaskDefinition
    makes one attempt per call (aws/taskdefs.py: no blind retry of a call without an idempotency token): its
    own loop makes REGISTER_ATTEMPTS, looking the revision up after each unknown outcome."""
    from autopilot.aws.taskdefs import REGISTER_ATTEMPTS

    world = healer_world(served.deps)
    steps = chain(served, "healer", oom_event(world), "ecs", operation, exhaust, transient, failed_outcome=(
        None if operation == "DescribeTaskDefinition" else "failed:oom-right-size"),
        attempts=REGISTER_ATTEMPTS if operation == "RegisterTaskDefinition" else ATTEMPTS)
    partial = {"ecs:RegisterTaskDefinition": 1} if operation == "UpdateService" else {}
    assert steps.failed == partial
    registered_again = {} if operation == "UpdateService" else {"ecs:RegisterTaskDefinition": 1}
    assert steps.retried == {**registered_again, "ecs:UpdateService": 1, "sns:Publish": 1}
    assert steps.duplicate == {}
    assert running() == td("web", 8)
    assert len(client("ecs").list_task_definitions(familyPrefix="web")["taskDefinitionArns"]) == 8


@pytest.mark.parametrize(("exhaust", "transient"), [("500", "timeout")])
def test_healer_counting_a_crash(served: Any, exhaust: str, transient: str) -> None:
    """A failure below the threshold is counted in one transaction (state + audit): it fails, nothing is
    counted; the retry counts it once; the duplicate does not count it again."""
    healer_world(served.deps)
    steps = chain(served, "healer", sample("healer-crash.json"), "dynamodb", "TransactWriteItems", exhaust,
                  transient, when=state_transaction)
    window = state_of(served.deps, WEB).healing.crash["web:7"]
    assert [m.key for m in window.failures] == ["00000000000000000000000000000005"]
    assert steps.failed == steps.retried == steps.duplicate == {}


# ---------------------------------------------------------------------------------------- restarter
def due(served: Any) -> dict[str, Any]:
    net = restarter_world(served.deps)
    return restarter_sample("restarter-restart-due.json", net["subnet"], net["group"])


def tasks() -> list[str]:
    return list(client("ecs").list_tasks(cluster="batch")["taskArns"])


def test_restarter_run_task_timeouts(served: Any) -> None:
    """RunTask times out 5 times: the record fails (SQS redelivers it; after maxReceiveCount, the DLQ), the
    attempt's claim is released; the redelivery starts the task once (same clientToken)."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    event = due(served)
    before = table_snapshot(served.deps)
    served.faults.fail("ecs", "RunTask", "timeout", times=ALWAYS)
    with pytest.raises(BatchProcessingError):  # every record of the batch failed: Powertools raises
        invoke("restarter", event)
    assert served.faults.injected["ecs:RunTask:timeout"] == ATTEMPTS
    assert table_snapshot(served.deps) == before
    served.faults.clear()
    served.faults.fail("ecs", "RunTask", "503", times=2)
    served.faults.sent.clear()
    assert invoke("restarter", event) == {"batchItemFailures": []}
    assert served.faults.sent["ecs:RunTask"] == 1 and len(tasks()) == 1
    served.faults.sent.clear()
    invoke("restarter", event)
    assert reached(served) == {} and len(tasks()) == 1


def test_restarter_run_task_throttled_to_the_end(served: Any) -> None:
    """A RunTask throttled beyond botocore's retries is AWS's trouble, not the task's: the record fails (SQS
    redelivers it after the visibility timeout, dead-letters it after five receives), no restart is counted
    and nothing is queued; the redelivery then starts the task once."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    event = due(served)
    before = state_of(served.deps, ETL).restarts
    served.faults.fail("ecs", "RunTask", "throttle", times=ATTEMPTS)
    with pytest.raises(BatchProcessingError):
        invoke("restarter", event)
    assert served.faults.sent["ecs:RunTask"] == 0 and tasks() == []
    assert state_of(served.deps, ETL).restarts == before
    attributes = client("sqs").get_queue_attributes(QueueUrl=served.stack.ref("RestartQueue"),
                                                    AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "0"
    assert invoke("restarter", event) == {"batchItemFailures": []}
    assert len(tasks()) == 1


# ---------------------------------------------------------------------------------------- lost answers
def test_a_claim_whose_answer_was_lost_still_acts_once(served: Any) -> None:
    """DynamoDB applied the claim but the answer timed out; botocore's retry of the conditional PutItem then
    fails its condition (the version moved: ours). The invocation must recognise its own claim and act,
    not take it for a concurrent one (that would skip the event as a duplicate and lose the scale-out)."""
    scaler_world(served.deps)
    served.faults.fail("dynamodb", "PutItem", "lost", times=1, when=claim)
    result = invoke("scaler", sample("scaler-alarm-high.json"))
    assert served.faults.injected["dynamodb:PutItem:lost"] == 1
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"]
    assert desired() == 6


def test_a_restart_claim_whose_answer_was_lost_still_starts_the_task(served: Any) -> None:
    event = due(served)
    served.faults.fail("dynamodb", "PutItem", "lost", times=1, when=claim)
    assert invoke("restarter", event) == {"batchItemFailures": []}
    assert len(tasks()) == 1


def test_a_lost_register_answer_registers_no_twin(served: Any) -> None:
    """RegisterTaskDefinition takes no idempotency token. AWS registered the derived revision but the answer
    was lost: botocore's retry used to register an identical twin (issue 11, finding 8). It makes one
    attempt per call now; after an unknown outcome the revision is looked up by its derivation tag first,
    found, recorded in the ledger, and the service is rolled to it."""
    world = healer_world(served.deps)
    served.faults.fail("ecs", "RegisterTaskDefinition", "lost", times=1)
    result = invoke("healer", oom_event(world))
    assert [o["outcome"] for o in result["outcomes"]] == ["oom-right-size"]
    assert served.faults.injected["ecs:RegisterTaskDefinition:lost"] == 1
    assert len(client("ecs").list_task_definitions(familyPrefix="web")["taskDefinitionArns"]) == 8
    assert running() == td("web", 8)
    assert served.deps.store.find_derivation(state_of(served.deps, WEB).healing.oom["web:7"].derivation_id) \
        == td("web", 8)


# ---------------------------------------------------------------------------------------- notifications
@pytest.mark.parametrize("kind", ["throttle", "timeout"])
def test_a_failed_notification_neither_undoes_nor_repeats_the_action(served: Any, kind: str) -> None:
    """SNS Publish fails after the scale-out was done: the action stands (its claim is kept), the failure is
    audited and counted (NotificationFailed), and no retry of the event scales out a second time."""
    scaler_world(served.deps)
    event = sample("scaler-alarm-high.json")
    served.faults.fail("sns", "Publish", kind, times=ALWAYS)
    result = invoke("scaler", event)
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"]
    assert served.faults.injected[f"sns:Publish:{kind}"] == ATTEMPTS
    assert desired() == 6
    entry = next(h for h in served.deps.store.history(now=served.deps.clock()) if h.outcome == "scale-out")
    assert entry.calls[0] == "ecs:UpdateService" and entry.calls[1].startswith("sns:Publish failed")
    state = state_of(served.deps, WEB)
    assert state.scaling.scale_out_until is not None  # the cooldown of the action that was done
    served.faults.clear()
    served.faults.sent.clear()
    invoke("scaler", event)
    invoke("scaler", variant(event, id="another-delivery-of-the-same-transition"))
    assert reached(served) == {} and desired() == 6


def test_a_transient_notification_failure_is_retried_by_botocore(served: Any) -> None:
    scaler_world(served.deps)
    served.faults.fail("sns", "Publish", "500", times=2)
    invoke("scaler", sample("scaler-alarm-high.json"))
    assert served.faults.sent["sns:Publish"] == 1 and desired() == 6
    entry = next(h for h in served.deps.store.history(now=served.deps.clock()) if h.outcome == "scale-out")
    assert entry.calls == ["ecs:UpdateService", "sns:Publish"]
