"""Standalone restarts (pure): back-off schedule, give-up, reset, lineages, the restarter's claim bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot.decide.classify import classify
from autopilot.decide.restarts import (
    MIN_RETRY_SECONDS,
    STALE_CLAIM_SECONDS,
    backoff_seconds,
    clean_overrides,
    client_token,
    decide_launch_failed,
    decide_run,
    decide_started,
    decide_task_stop,
    lineage_of,
    run_task_request,
)
from autopilot.models.actions import EnqueueRestart, Notify, RunTask
from autopilot.models.healing_state import RestartMessage, RestartState
from autopilot.models.policy import Restart, TaskPolicy
from autopilot.models.task_events import parse_task_event
from tests.conftest import sample, variant

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NETWORK = {"subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"], "assignPublicIp": "DISABLED"}


def policy(network: dict[str, Any] | None = NETWORK, **restart: Any) -> TaskPolicy:
    spec: dict[str, Any] = {"restart": {"maxRestarts": 5, "initialBackoffSeconds": 10, "maxBackoffSeconds": 300,
                                        "resetAfterSeconds": 600, **restart}}
    if network is not None:
        spec["network"] = network
    return TaskPolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "TaskPolicy",
                                      "metadata": {"cluster": "batch", "family": "nightly-etl"}, "spec": spec})


def task(n: int = 19, *, started_by: str | None = None, name: str = "healer-standalone-crash.json",
         ran: int = 115, **changes: Any):
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/batch/{n:032x}"
    stopped = NOW - timedelta(seconds=5)
    fields = {"detail.taskArn": arn, "detail.stoppedAt": stopped.isoformat(),
              "detail.startedAt": (stopped - timedelta(seconds=ran)).isoformat(), **changes}
    if started_by is not None:
        fields["detail.startedBy"] = started_by
    return parse_task_event(variant(sample(name), **fields))


def stop(t, pol: TaskPolicy, state: RestartState, now: datetime = NOW):
    return decide_task_stop(task=t, cls=classify(t), policy=pol, state=state, now=now)


# --------------------------------------------------------------------------- back-off schedule

@pytest.mark.parametrize(("initial", "maximum", "expected"), [
    (10, 300, [10, 20, 40, 80, 160, 300, 300, 300]),
    (1, 5, [1, 2, 4, 5, 5, 5, 5, 5]),
    (0, 300, [0, 0, 0, 0, 0, 0, 0, 0]),
    (300, 300, [300] * 8),
    (600, 86400, [600, 1200, 2400, 4800, 9600, 19200, 38400, 76800]),
])
def test_backoff_doubles_to_the_maximum(initial, maximum, expected):
    restart = Restart(initialBackoffSeconds=initial, maxBackoffSeconds=maximum)
    assert [backoff_seconds(n, restart) for n in range(1, 9)] == expected


@given(initial=st.integers(0, 86400), extra=st.integers(0, 86400), n=st.integers(1, 10_000))
def test_backoff_is_monotonic_and_bounded(initial, extra, n):
    restart = Restart(initialBackoffSeconds=initial, maxBackoffSeconds=min(initial + extra, 86400))
    assert initial <= backoff_seconds(n, restart) or initial > restart.maxBackoffSeconds
    assert backoff_seconds(n, restart) <= restart.maxBackoffSeconds
    assert backoff_seconds(n, restart) <= backoff_seconds(n + 1, restart)


# --------------------------------------------------------------------------- healer side

def test_a_failed_standalone_task_is_queued_with_the_first_back_off():
    decision, state = stop(task(), policy(), RestartState())
    assert decision.outcome == "restart-queued"
    (action,) = decision.actions
    assert isinstance(action, EnqueueRestart) and action.delay_seconds == 10
    message = RestartMessage.model_validate(action.message)
    request = message.request
    assert message.sequence == 1 and message.restarts == 1 and message.not_before == NOW + timedelta(seconds=10)
    assert request["taskDefinition"].endswith("task-definition/nightly-etl:3") and request["cluster"] == "batch"
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert "launchType" not in request
    assert request["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"], "assignPublicIp": "DISABLED"}}
    assert request["startedBy"] == f"autopilot/{19:032x}"
    assert {"key": "autopilot:lineage", "value": task().task_arn} in request["tags"]
    assert request["clientToken"] == client_token("batch", "nightly-etl", f"{19:032x}", 1)
    assert state.lineages[f"{19:032x}"].restarts == 1


def test_the_whole_lineage_backs_off_then_gives_up():
    pol, state = policy(maxRestarts=3), RestartState()
    delays = []
    current = task(100)
    for attempt in range(1, 5):
        decision, state = stop(current, pol, state)
        if attempt <= 3:
            (action,) = decision.actions
            delays.append(action.delay_seconds)
            message = RestartMessage.model_validate(action.message)
            current = task(100 + attempt, started_by=message.request["startedBy"])  # the re-run, failing again
        else:
            assert decision.outcome == "gave-up"
            (note,) = decision.actions
            assert isinstance(note, Notify) and "Gave up" in note.subject
    assert delays == [10, 20, 40]
    decision, _ = stop(task(200, started_by=f"autopilot/{100:032x}"), pol, state)
    assert decision.outcome == "skipped:gave-up" and not decision.actions


def test_a_long_run_resets_the_count():
    pol, state = policy(maxRestarts=2), RestartState()
    lineage = f"autopilot/{300:032x}"
    _, state = stop(task(300), pol, state)
    _, state = stop(task(301, started_by=lineage), pol, state)
    decision, state = stop(task(302, started_by=lineage, ran=600), pol, state)  # ran resetAfterSeconds
    assert decision.outcome == "restart-queued" and decision.actions[0].delay_seconds == 10
    assert "count reset" in decision.reason
    assert state.lineages[f"{300:032x}"].restarts == 1 and state.lineages[f"{300:032x}"].sequence == 3


def test_zero_reset_after_never_resets():
    pol, state = policy(maxRestarts=1, resetAfterSeconds=0), RestartState()
    _, state = stop(task(400), pol, state)
    decision, _ = stop(task(401, started_by=f"autopilot/{400:032x}", ran=10_000), pol, state)
    assert decision.outcome == "gave-up"


def test_max_restarts_zero_gives_up_at_once():
    decision, _ = stop(task(), policy(maxRestarts=0), RestartState())
    assert decision.outcome == "gave-up"


def test_a_stop_is_handled_once():
    pol, state = policy(), RestartState()
    _, state = stop(task(), pol, state)
    decision, again = stop(task(), pol, state)
    assert decision.outcome == "skipped:duplicate-task" and again == state


@pytest.mark.parametrize("name", ["healer-normal-standalone-exit-0.json"])
def test_a_finished_run_ends_its_lineage_and_an_unrelated_success_is_ignored(name):
    pol, state = policy(), RestartState()
    decision, same = stop(task(500, name=name), pol, state)
    assert decision.outcome == "ignored:normal" and same == state
    _, state = stop(task(501), pol, state)
    decision, state = stop(task(502, name=name, started_by=f"autopilot/{501:032x}"), pol, state)
    assert decision.outcome == "lineage-done" and state.lineages[f"{501:032x}"].status == "done"


def test_unknown_stops_are_not_rerun():
    t = task(600, name="healer-unknown-stop-code.json")
    decision, _ = stop(t, policy(), RestartState())
    assert decision.outcome == "ignored:unknown" and not decision.actions


@pytest.mark.parametrize("name", ["healer-standalone-oom.json", "healer-spot-interruption.json",
                                  "healer-image-pull.json", "healer-infrastructure.json"])
def test_failures_spot_and_infrastructure_stops_are_rerun(name):
    t = task(700, name=name, **{"detail.group": "family:nightly-etl"})
    decision, _ = stop(t, policy(), RestartState())
    assert decision.outcome == "restart-queued"


def test_launch_type_and_capacity_provider_are_kept():
    t = task(800, **{"detail.capacityProviderName": None})
    request, _ = run_task_request(t, policy(), lineage="l", first_task=t.task_arn, sequence=1)
    assert request["launchType"] == "FARGATE" and "capacityProviderStrategy" not in request
    spot = task(801, **{"detail.capacityProviderName": "FARGATE_SPOT"})
    request, _ = run_task_request(spot, policy(), lineage="l", first_task=spot.task_arn, sequence=1)
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_without_a_policy_network_the_tasks_subnets_are_used_and_noted():
    t = task(900)
    request, note = run_task_request(t, policy(network=None), lineage="l", first_task=t.task_arn, sequence=1)
    assert request["networkConfiguration"] == {"awsvpcConfiguration": {"subnets": ["subnet-0d0eab1bb38d5ca64"]}}
    assert note and "default security group" in note


def test_overrides_from_the_event_without_no_ops_or_injected_sidecars():
    overrides = {"containerOverrides": [
        {"name": "etl", "command": ["run", "--day", "2026-11-25"]}, {"name": "sidecar"},
        {"name": "aws-guardduty-agent-nm40lC", "memory": 128, "environment": [{"name": "A", "value": "b"}]}],
        "taskRoleArn": "arn:aws:iam::123456789012:role/etl", "inferenceAcceleratorOverrides": []}
    assert clean_overrides(overrides) == {"containerOverrides": [{"name": "etl", "command": ["run", "--day",
                                                                                              "2026-11-25"]}],
                                          "taskRoleArn": "arn:aws:iam::123456789012:role/etl"}


def test_lineage_of():
    assert lineage_of(task(started_by="autopilot/abc-123")) == "abc-123"
    assert lineage_of(task(started_by="events-rule/nightly")) is None
    assert lineage_of(task(started_by="autopilot/bad id!")) is None


# --------------------------------------------------------------------------- restarter side

def queued(pol: TaskPolicy | None = None) -> tuple[RestartMessage, RestartState]:
    decision, state = stop(task(), pol or policy(), RestartState())
    return RestartMessage.model_validate(decision.actions[0].message), state


def test_a_due_message_is_claimed_and_run_once():
    message, state = queued()
    later = NOW + timedelta(seconds=10)
    decision, state = decide_run(message=message, policy=policy(), state=state, now=later)
    assert decision.outcome == "restart-run"
    (action,) = decision.actions
    assert isinstance(action, RunTask) and action.request == message.request
    decision, _ = decide_run(message=message, policy=policy(), state=state, now=later + timedelta(seconds=1))
    assert decision.outcome == "skipped:in-flight" and not decision.actions
    _, state = decide_started(message=message, state=state, now=later)
    decision, _ = decide_run(message=message, policy=policy(), state=state, now=later + timedelta(hours=1))
    assert decision.outcome == "skipped:duplicate" and not decision.actions


def test_a_claim_whose_invocation_died_is_retried_with_the_same_token():
    message, state = queued()
    later = NOW + timedelta(seconds=10)
    _, state = decide_run(message=message, policy=policy(), state=state, now=later)
    decision, _ = decide_run(message=message, policy=policy(), state=state,
                             now=later + timedelta(seconds=STALE_CLAIM_SECONDS))
    assert decision.outcome == "restart-run" and decision.actions[0].request["clientToken"] == \
        message.request["clientToken"]


def test_a_message_not_yet_due_is_queued_again_for_the_rest():
    message, state = queued(policy(initialBackoffSeconds=3600, maxBackoffSeconds=7200))
    decision, same = decide_run(message=message, policy=policy(), state=state, now=NOW + timedelta(seconds=900))
    assert decision.outcome == "restart-requeued" and same == state
    (action,) = decision.actions
    assert isinstance(action, EnqueueRestart) and action.delay_seconds == 2700 and action.requeue


def test_a_failed_launch_is_retried_with_the_back_off_and_then_gives_up():
    pol = policy(maxRestarts=2)
    message, state = queued(pol)
    decision, state = decide_launch_failed(message=message, error="RESOURCE:FARGATE", policy=pol, state=state,
                                           now=NOW + timedelta(seconds=10))
    assert decision.outcome == "restart-queued"
    (action,) = decision.actions
    assert action.delay_seconds == 20
    retry = RestartMessage.model_validate(action.message)
    assert retry.sequence == 2 and retry.restarts == 2
    assert retry.request["clientToken"] != message.request["clientToken"]
    decision, state = decide_launch_failed(message=retry, error="ThrottlingException", policy=pol, state=state,
                                           now=NOW + timedelta(seconds=40))
    assert decision.outcome == "gave-up"
    decision, _ = decide_run(message=retry, policy=pol, state=state, now=NOW + timedelta(seconds=50))
    assert decision.outcome == "skipped:gave-up"


def test_a_failed_launch_never_retries_in_a_tight_loop():
    pol = policy(initialBackoffSeconds=0, maxBackoffSeconds=0)
    message, state = queued(pol)
    decision, _ = decide_launch_failed(message=message, error="RESOURCE:FARGATE", policy=pol, state=state, now=NOW)
    assert decision.actions[0].delay_seconds == MIN_RETRY_SECONDS


def test_a_failed_launch_reported_twice_counts_once():
    message, state = queued()
    _, state = decide_launch_failed(message=message, error="x", policy=policy(), state=state, now=NOW)
    decision, same = decide_launch_failed(message=message, error="x", policy=policy(), state=state, now=NOW)
    assert decision.outcome == "skipped:duplicate" and same == state


# --------------------------------------------------------------------------- the queue's 900 s limit

@pytest.mark.parametrize(("wanted", "sent"), [(-5, 0), (0, 0), (10, 10), (900, 900), (901, 900), (86400, 900)])
def test_sqs_delay_is_at_most_900_seconds(wanted, sent):
    from autopilot.aws.restart_queue import SqsRestartQueue

    class Stub:
        def __init__(self) -> None:
            self.kwargs: dict[str, Any] = {}

        def send_message(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    stub = Stub()
    SqsRestartQueue("https://sqs.us-east-1.amazonaws.com/123456789012/q", stub).send({"a": 1}, wanted, "l#1")
    assert stub.kwargs["DelaySeconds"] == sent and stub.kwargs["MessageBody"] == '{"a": 1}'


def test_a_long_back_off_is_carried_forward_until_due():
    """A 3600 s back-off: sent with 900 s, then re-queued 900, 900 and 900 s more, then run."""
    pol = policy(initialBackoffSeconds=3600, maxBackoffSeconds=3600)
    message, state = queued(pol)
    now, hops = NOW, []
    from autopilot.aws.restart_queue import sqs_delay

    wait = sqs_delay(3600)
    for _ in range(10):
        now += timedelta(seconds=wait)
        decision, state = decide_run(message=message, policy=pol, state=state, now=now)
        if decision.outcome != "restart-requeued":
            break
        wait = sqs_delay(decision.actions[0].delay_seconds)
        hops.append(wait)
    assert hops == [900, 900, 900] and decision.outcome == "restart-run" and now == NOW + timedelta(seconds=3600)
