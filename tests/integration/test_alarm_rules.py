"""Rollback and recycle alarms through ScalerFunction on moto (published alarm sample, variants)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from autopilot.models.policy import ServicePolicy, service_key
from tests.conftest import load_handler, published, variant
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


def alarm_event(name: str, at: datetime, state: str = "ALARM") -> dict:
    ts = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return variant(published("cloudwatch-alarm-state-change-single-metric.json"), **{
        "id": f"alarm-{name}-{state}-{ts}", "detail.alarmName": name, "detail.state.value": state,
        "detail.state.timestamp": ts})


@pytest.fixture
def handlers(deps, clock):
    wall_clock(clock)
    make_service(1)
    deps.store.put_policy(policy(bakeSeconds=600), deps.clock())
    return load_handler("scaler"), load_handler("rollout")


def lkg_then_deploy(deps, rollout, lambda_context) -> tuple[str, datetime]:
    """web:1 completes (LKG); then a real moto deployment of web:2 starts. Returns its id and createdAt."""
    dep, created = primary()
    rollout.lambda_handler(deployment_event("in-progress", dep, created), lambda_context)
    deps.clock.advance(60)
    rollout.lambda_handler(deployment_event("completed", dep, created + timedelta(seconds=60)), lambda_context)
    deps.clock.advance(60)
    recreate_service(2)
    dep, created = primary()
    rollout.lambda_handler(deployment_event("in-progress", dep, created), lambda_context)
    deps.clock.advance(60)
    return dep, created


def rollout_state(deps):
    return deps.store.load_state(KEY).state.rollout


def last_outcome(deps) -> str:
    return deps.store.history(cluster=CLUSTER, service=SERVICE, now=deps.clock())[0].outcome


def test_rollback_alarm_within_bake_rolls_back_on_moto(deps, handlers, lambda_context, topic_messages):
    scaler, rollout = handlers
    _, created = lkg_then_deploy(deps, rollout, lambda_context)
    calls = EcsCalls()
    result = scaler.lambda_handler(alarm_event("web-5xx-high", created + timedelta(seconds=120)), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["rollback"]
    assert calls.calls == ["DescribeServices", "UpdateService"]
    assert running_revision() == "web:1"
    state = rollout_state(deps)
    assert state.is_bad(td(2)) and state.lkg == td(1)
    assert any("Rolled back" in m and "web-5xx-high" in m for m in topic_messages())


def test_rollback_alarm_outside_bake_only_notifies_on_moto(deps, handlers, lambda_context, topic_messages):
    scaler, rollout = handlers
    _, created = lkg_then_deploy(deps, rollout, lambda_context)
    calls = EcsCalls()
    result = scaler.lambda_handler(alarm_event("web-5xx-high", created + timedelta(seconds=601)), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["skipped:outside-bake-window"]
    assert "UpdateService" not in calls.calls and running_revision() == "web:2"
    assert not rollout_state(deps).is_bad(td(2))
    assert any("outside the 600s bake window" in m for m in topic_messages())


def test_rollback_alarm_ok_and_insufficient_data_do_nothing(deps, handlers, lambda_context):
    scaler, rollout = handlers
    _, created = lkg_then_deploy(deps, rollout, lambda_context)
    calls = EcsCalls()
    for state in ("OK", "INSUFFICIENT_DATA"):
        result = scaler.lambda_handler(alarm_event("web-5xx-high", created + timedelta(seconds=30), state),
                                       lambda_context)
        assert result["outcomes"][0]["outcome"] == f"ignored:{state.lower()}"
    assert calls.calls == []


def test_rollback_alarm_delivered_twice_rolls_back_once(deps, handlers, lambda_context):
    scaler, rollout = handlers
    _, created = lkg_then_deploy(deps, rollout, lambda_context)
    event = alarm_event("web-5xx-high", created + timedelta(seconds=120))
    calls = EcsCalls()
    scaler.lambda_handler(event, lambda_context)
    deps.clock.advance(1)
    scaler.lambda_handler(event | {"id": "redelivered"}, lambda_context)
    assert calls.count("UpdateService") == 1  # the scaler's idempotency key is the state transition itself
    outcomes = [h.outcome for h in deps.store.history(cluster=CLUSTER, service=SERVICE, now=deps.clock())]
    assert outcomes.count("rollback") == 1


def test_rollback_alarm_then_failed_event_for_the_same_revision_rolls_back_once(deps, handlers, lambda_context):
    scaler, rollout = handlers
    dep, created = lkg_then_deploy(deps, rollout, lambda_context)
    calls = EcsCalls()
    scaler.lambda_handler(alarm_event("web-5xx-high", created + timedelta(seconds=120)), lambda_context)
    deps.clock.advance(30)
    # ECS notices too (deployment alarms, circuit breaker without rollback); the service already runs web:1.
    rollout.lambda_handler(deployment_event("failed", dep, created + timedelta(seconds=150)), lambda_context)
    assert calls.count("UpdateService") == 1
    assert last_outcome(deps) == "skipped:already-rolled-back"


def test_rollback_alarm_with_update_failing_once_rolls_back_exactly_once(deps, handlers, lambda_context):
    scaler, rollout = handlers
    _, created = lkg_then_deploy(deps, rollout, lambda_context)
    flaky = use_ecs(deps, FlakyEcs(deps.ecs, fail=1))
    event = alarm_event("web-5xx-high", created + timedelta(seconds=120))
    with pytest.raises(Exception, match="ThrottlingException"):
        scaler.lambda_handler(event, lambda_context)
    deps.clock.advance(60)
    scaler.lambda_handler(event, lambda_context)
    assert flaky.updates == [{"taskDefinition": td(1)}] and running_revision() == "web:1"
    assert len(rollout_state(deps).rollbacks) == 1


def test_rollback_alarm_with_simulated_deployments(deps, handlers, lambda_context):
    """The deployment start comes from DescribeServices when the RolloutFunction never saw the deployment."""
    scaler, _ = handlers
    fake = use_ecs(deps, DeployingEcs(deps.clock))
    first = fake.start(td(1))
    fake.finish(first)
    deps.clock.advance(3600)
    fake.update_service(CLUSTER, SERVICE, taskDefinition=td(2))
    deps.clock.advance(90)
    result = scaler.lambda_handler(alarm_event("web-5xx-high", deps.clock()), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback"
    assert fake.deployments[0].task_definition == td(1) and running_revision() == "web:1"


def test_recycle_alarm_forces_a_new_deployment_at_most_once_per_bake(deps, handlers, lambda_context):
    scaler, _ = handlers
    before, _ = primary()
    calls = EcsCalls()
    result = scaler.lambda_handler(alarm_event("web-memory-leak", deps.clock()), lambda_context)
    assert result["outcomes"][0]["outcome"] == "recycle"
    assert calls.calls == ["UpdateService"]  # no read needed
    assert primary()[0] != before  # moto renames the deployment on forceNewDeployment
    deps.clock.advance(300)
    calls.reset()
    result = scaler.lambda_handler(alarm_event("web-memory-leak", deps.clock()), lambda_context)
    assert result["outcomes"][0]["outcome"] == "skipped:recycle-cooldown" and calls.calls == []
    deps.clock.advance(301)
    result = scaler.lambda_handler(alarm_event("web-memory-leak", deps.clock()), lambda_context)
    assert result["outcomes"][0]["outcome"] == "recycle"


def test_scaling_rules_and_alarm_rules_share_one_policy(deps, handlers, lambda_context):
    scaler, _ = handlers
    doc = policy().model_dump(exclude_none=True)
    doc["spec"]["scaling"] = {"minTasks": 1, "maxTasks": 10, "rules": [
        {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 1}]}]}
    deps.store.put_policy(ServicePolicy.model_validate(doc), deps.clock())
    assert scaler.lambda_handler(alarm_event("web-cpu-high", deps.clock()), lambda_context)["outcomes"][0][
        "outcome"] == "scale-out"
    deps.clock.advance(1)
    assert scaler.lambda_handler(alarm_event("web-memory-leak", deps.clock()), lambda_context)["outcomes"][0][
        "outcome"] == "recycle"
