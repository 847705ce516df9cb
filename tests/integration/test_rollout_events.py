"""RolloutFunction end to end on moto: every deployment event, rollbacks, bad input, duplicates, faults."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from autopilot.aws.ecs import Ecs
from autopilot.models.policy import service_key
from tests.conftest import load_handler, sample, variant
from tests.integration.test_rollout_support import (
    CLUSTER,
    SERVICE,
    DeployingEcs,
    EcsCalls,
    FlakyEcs,
    deployment_event,
    make_service,
    policy,
    primary,
    recreate_service,
    running_revision,
    td,
    use_ecs,
    wall_clock,
)

KEY = service_key(CLUSTER, SERVICE)


@pytest.fixture
def rollout(deps):
    return load_handler("rollout")


@pytest.fixture
def managed(deps, clock):
    """prod/web on web:1 (a real moto deployment), managed with the default rollout policy."""
    wall_clock(clock)
    make_service(1)
    deps.store.put_policy(policy(), deps.clock())
    return deps


def state(deps):
    return deps.store.load_state(KEY).state.rollout


def outcomes(deps) -> list[str]:
    return [h.outcome for h in deps.store.history(cluster=CLUSTER, service=SERVICE, now=deps.clock())]


def reach_lkg(rollout, deps, lambda_context) -> str:
    """IN_PROGRESS and COMPLETED of moto's current deployment (web:1): it becomes LKG."""
    dep, created = primary()
    rollout.lambda_handler(deployment_event("in-progress", dep, created), lambda_context)
    deps.clock.advance(90)
    rollout.lambda_handler(deployment_event("completed", dep, created + timedelta(seconds=90)), lambda_context)
    deps.clock.advance(1)
    assert state(deps).lkg == td(1)
    return dep


# ---------------------------------------------------------------------------- each event, moto only


def test_in_progress_records_the_deployment_from_describe_services(managed, rollout, lambda_context):
    dep, created = primary()
    result = rollout.lambda_handler(deployment_event("in-progress", dep, created + timedelta(seconds=2)),
                                    lambda_context)
    assert result["outcomes"][0]["outcome"] == "recorded:in-progress"
    record = state(managed).deployment(dep)
    assert record.task_definition == td(1) and record.started_at == created  # the deployment's own createdAt
    assert state(managed).current_deployment.id == dep


def test_completed_makes_lkg(managed, rollout, lambda_context):
    reach_lkg(rollout, managed, lambda_context)
    assert outcomes(managed)[0] == "recorded:lkg"


def test_failed_rolls_back_to_lkg_on_moto(managed, rollout, lambda_context, topic_messages):
    reach_lkg(rollout, managed, lambda_context)
    recreate_service(2)  # a real new moto deployment of web:2
    dep, created = primary()
    rollout.lambda_handler(deployment_event("in-progress", dep, created), lambda_context)
    managed.clock.advance(240)
    calls = EcsCalls()
    result = rollout.lambda_handler(deployment_event("failed", dep, created + timedelta(minutes=4)), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback"
    assert calls.calls == ["DescribeServices", "UpdateService"]  # one read, one rollback
    assert running_revision() == "web:1"
    rolled = state(managed)
    assert rolled.is_bad(td(2)) and rolled.lkg == td(1)
    assert rolled.rollbacks[0].failing_revision == td(2) and rolled.rollbacks[0].status == "pending"
    entry = managed.store.history(cluster=CLUSTER, service=SERVICE, now=managed.clock())[0]
    assert entry.calls == ["ecs:UpdateService", "sns:Publish"] and "web:2" in entry.reason and "web:1" in entry.reason
    (message,) = [m for m in topic_messages() if "Rolled back" in m]
    assert "web:2" in message and "web:1" in message


def test_failed_with_circuit_breaker_rollback_only_records_and_notifies(managed, rollout, lambda_context,
                                                                        topic_messages):
    reach_lkg(rollout, managed, lambda_context)
    recreate_service(2)
    from autopilot.aws.clients import client

    client("ecs").update_service(cluster=CLUSTER, service=SERVICE, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    dep, created = primary()
    calls = EcsCalls()
    result = rollout.lambda_handler(deployment_event("failed", dep, created + timedelta(minutes=4)), lambda_context)
    assert result["outcomes"][0]["outcome"] == "recorded:ecs-rolls-back"
    assert "UpdateService" not in calls.calls and running_revision() == "web:2"
    assert state(managed).is_bad(td(2))
    assert any("ECS rolls back" in m for m in topic_messages())


def test_ecs_rollback_in_progress_is_recorded(managed, rollout, lambda_context):
    dep, created = primary()
    event = deployment_event("rollback", dep, created)
    result = rollout.lambda_handler(event, lambda_context)
    assert result["outcomes"][0]["outcome"] == "recorded:ecs-rollback"
    assert state(managed).deployment(dep).ecs_rollback


def test_rollback_disabled_only_notifies(managed, rollout, lambda_context):
    managed.store.put_policy(policy(rollbackOnDeploymentFailure=False), managed.clock())
    reach_lkg(rollout, managed, lambda_context)
    recreate_service(2)
    dep, created = primary()
    result = rollout.lambda_handler(deployment_event("failed", dep, created), lambda_context)
    assert result["outcomes"][0]["outcome"] == "recorded:rollback-disabled" and running_revision() == "web:2"


def test_dry_run_decides_but_does_not_roll_back(managed, rollout, lambda_context, topic_messages):
    reach_lkg(rollout, managed, lambda_context)
    managed.store.put_policy(policy().model_copy(update={"spec": policy().spec.model_copy(
        update={"mode": "dry-run"})}), managed.clock())
    recreate_service(2)
    dep, created = primary()
    result = rollout.lambda_handler(deployment_event("failed", dep, created), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback" and running_revision() == "web:2"
    assert any(m.startswith("[dry-run]") for m in topic_messages())


@pytest.mark.parametrize(("name", "outcome"), [
    ("rollout-in-progress.json", "recorded:no-matching-deployment"),
    ("rollout-in-progress-rollback.json", "recorded:no-matching-deployment"),
    ("rollout-completed.json", "recorded:no-matching-deployment"),
    ("rollout-failed-circuit-breaker.json", "recorded:no-matching-deployment"),
    ("rollout-unknown-event-name.json", "ignored:unknown-event-name"),
])
def test_events_folder_samples(managed, rollout, lambda_context, name, outcome):
    """The events/ samples name deployment ecs-svc/123, which moto's service does not have: recorded, not guessed."""
    calls = EcsCalls()
    result = rollout.lambda_handler(sample(name), lambda_context)
    assert result["outcomes"][0]["outcome"] == outcome
    assert "UpdateService" not in calls.calls
    assert running_revision() == "web:1"


# ---------------------------------------------------------------------------- bad input, unmanaged services


@pytest.mark.parametrize("arn", [
    "arn:aws:ecs:us-east-1:123456789012:service/other/web",  # unmanaged cluster
    "arn:aws:ecs:us-east-1:123456789012:service/prod/api",  # unmanaged service
    "arn:aws:ecs:us-east-1:123456789012:service/web",  # old ARN format: no cluster
])
def test_unmanaged_or_unresolvable_services_are_ignored_without_any_aws_call(managed, rollout, lambda_context, arn):
    calls = EcsCalls()
    result = rollout.lambda_handler(sample("rollout-failed-circuit-breaker.json") | {"resources": [arn]},
                                    lambda_context)
    assert result["outcomes"][0]["outcome"] in ("ignored:unmanaged", "ignored:no-cluster-in-arn")
    assert calls.calls == []


@pytest.mark.parametrize("mutate", [
    lambda e: {k: v for k, v in e.items() if k != "detail"},
    lambda e: variant(e, **{"detail.updatedAt": "yesterday"}),
    lambda e: variant(e, **{"detail.deploymentId": ""}),
    lambda e: e | {"resources": []},
    lambda e: e | {"resources": ["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]},
    lambda e: e | {"source": "aws.ec2"},
    lambda e: ["not", "an", "object"],
])
def test_invalid_events_are_rejected_without_any_aws_call(managed, rollout, lambda_context, mutate):
    calls = EcsCalls()
    result = rollout.lambda_handler(mutate(sample("rollout-failed-circuit-breaker.json")), lambda_context)
    assert result["status"] == "rejected"
    assert calls.calls == []
    history = managed.store.history(now=managed.clock())
    assert history[0].outcome == "rejected:invalid-event"


# ---------------------------------------------------------------------------- duplicates and faults


def test_duplicate_delivery_rolls_back_once(managed, rollout, lambda_context):
    reach_lkg(rollout, managed, lambda_context)
    recreate_service(2)
    dep, created = primary()
    event = deployment_event("failed", dep, created)
    calls = EcsCalls()
    rollout.lambda_handler(event, lambda_context)
    managed.clock.advance(1)
    rollout.lambda_handler(event, lambda_context)  # same id: Powertools idempotency
    managed.clock.advance(1)
    rollout.lambda_handler(event | {"id": "another-id-same-change"}, lambda_context)  # same change: applied_events
    assert calls.count("UpdateService") == 1
    assert len(state(managed).rollbacks) == 1
    assert outcomes(managed)[0] == "skipped:duplicate"


def test_update_service_fails_once_then_the_retry_rolls_back_exactly_once(managed, rollout, lambda_context):
    reach_lkg(rollout, managed, lambda_context)
    recreate_service(2)
    flaky = use_ecs(managed, FlakyEcs(Ecs(), fail=1))
    dep, created = primary()
    event = deployment_event("failed", dep, created)
    with pytest.raises(ClientError, match="ThrottlingException"):
        rollout.lambda_handler(event, lambda_context)
    assert running_revision() == "web:2"
    assert state(managed).rollbacks == []  # the claim was released: the retry decides again
    assert outcomes(managed)[0] == "failed:rollback"
    managed.clock.advance(60)
    rollout.lambda_handler(event, lambda_context)  # Lambda's retry of the same event
    managed.clock.advance(60)
    rollout.lambda_handler(event, lambda_context)  # and a duplicate after it succeeded
    assert running_revision() == "web:1"
    assert flaky.updates == [{"taskDefinition": td(1)}]
    assert len(state(managed).rollbacks) == 1


# ---------------------------------------------------------------------------- ordering (simulated deployments)


def test_late_completed_of_an_older_deployment_does_not_move_lkg_back(managed, rollout, lambda_context):
    fake = use_ecs(managed, DeployingEcs(managed.clock))
    clock = managed.clock
    a = fake.start(td(1))
    rollout.lambda_handler(deployment_event("in-progress", a, clock()), lambda_context)
    clock.advance(300)
    fake.update_service(CLUSTER, SERVICE, taskDefinition=td(2))  # the operator deploys web:2
    b = fake.deployments[0].id
    rollout.lambda_handler(deployment_event("in-progress", b, clock()), lambda_context)
    clock.advance(120)
    fake.finish(b)
    rollout.lambda_handler(deployment_event("completed", b, clock()), lambda_context)
    assert state(managed).lkg == td(2)
    # A's COMPLETED (it had completed before B started) is delivered only now.
    clock.advance(1)
    rollout.lambda_handler(deployment_event("completed", a, clock() - timedelta(seconds=400)), lambda_context)
    assert state(managed).lkg == td(2)
    assert outcomes(managed)[0] == "recorded:completed-older"


def test_simulated_failed_deployment_rolls_back_and_the_rollback_completes(managed, rollout, lambda_context):
    fake = use_ecs(managed, DeployingEcs(managed.clock))
    clock = managed.clock
    first = fake.start(td(1))
    fake.finish(first)
    clock.advance(60)
    fake.update_service(CLUSTER, SERVICE, taskDefinition=td(2))
    bad = fake.deployments[0].id
    rollout.lambda_handler(deployment_event("in-progress", bad, clock()), lambda_context)
    clock.advance(300)
    fake.finish(bad, "FAILED")
    result = rollout.lambda_handler(deployment_event("failed", bad, clock()), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback"  # LKG web:1 known from DescribeServices (bootstrap)
    back = fake.deployments[0].id
    assert fake.deployments[0].task_definition == td(1) and running_revision() == "web:1"
    rollout.lambda_handler(deployment_event("in-progress", back, clock()), lambda_context)
    clock.advance(120)
    fake.finish(back)
    rollout.lambda_handler(deployment_event("completed", back, clock()), lambda_context)
    final = state(managed)
    assert final.lkg == td(1) and final.lkg_deployment == back and final.is_bad(td(2))
    assert json.loads(final.model_dump_json())["current_deployment"]["id"] == back
