"""ReconcilerFunction's rollback retries on moto: done, overwritten (retried, bounded), superseded, failing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from autopilot.aws.clients import client
from autopilot.models.policy import service_key
from tests.conftest import load_handler
from tests.integration.test_rollout_support import (
    CLUSTER,
    SERVICE,
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
def rolled_back(deps, clock, lambda_context):
    """web:1 LKG, web:2 failed and was rolled back by the RolloutFunction at clock()."""
    wall_clock(clock)
    make_service(1)
    deps.store.put_policy(policy(), deps.clock())
    rollout = load_handler("rollout")
    dep, created = primary()
    rollout.lambda_handler(deployment_event("in-progress", dep, created), lambda_context)
    clock.advance(60)
    rollout.lambda_handler(deployment_event("completed", dep, created + timedelta(seconds=60)), lambda_context)
    clock.advance(60)
    recreate_service(2)
    dep, created = primary()
    clock.advance(60)
    result = rollout.lambda_handler(deployment_event("failed", dep, created), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback" and running_revision() == "web:1"
    return deps


@pytest.fixture
def reconciler(deps):
    return load_handler("reconciler")


def tick(deps, reconciler, lambda_context, seconds: float = 60) -> list[str]:
    deps.clock.advance(seconds)
    result = reconciler.lambda_handler({"id": f"tick-{deps.clock().isoformat()}"}, lambda_context)
    return [o["outcome"] for o in result["outcomes"]]


def overwrite(revision: int) -> None:
    """A deploy pipeline puts the service back on ``revision``."""
    client("ecs").update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"web:{revision}")


def rollbacks(deps):
    return deps.store.load_state(KEY).state.rollout.rollbacks


def test_nothing_happens_before_the_retry_is_due(rolled_back, reconciler, lambda_context):
    calls = EcsCalls()
    assert tick(rolled_back, reconciler, lambda_context, 60) == []
    assert tick(rolled_back, reconciler, lambda_context, 60) == []
    assert calls.calls == []  # a pending rollback costs no AWS call until it is due


def test_rollback_that_took_is_marked_done_and_never_checked_again(rolled_back, reconciler, lambda_context):
    assert tick(rolled_back, reconciler, lambda_context, 180) == ["recorded:rollback-done"]
    assert rollbacks(rolled_back)[0].status == "done"
    calls = EcsCalls()
    assert tick(rolled_back, reconciler, lambda_context, 600) == []
    assert calls.calls == []


def test_overwritten_rollback_is_retried_three_times_then_gives_up(rolled_back, reconciler, lambda_context,
                                                                   topic_messages):
    for attempt in range(1, 4):
        overwrite(2)
        assert tick(rolled_back, reconciler, lambda_context, 180) == ["rollback-retry"], attempt
        assert running_revision() == "web:1"
        assert rollbacks(rolled_back)[0].attempts == attempt + 1
    overwrite(2)
    assert tick(rolled_back, reconciler, lambda_context, 180) == ["gave-up:rollback"]
    assert running_revision() == "web:2"
    assert rollbacks(rolled_back)[0].status == "gave-up"
    assert any("gave up" in m for m in topic_messages())
    calls = EcsCalls()
    assert tick(rolled_back, reconciler, lambda_context, 600) == [] and calls.calls == []


def test_a_newer_deployment_supersedes_the_rollback(rolled_back, reconciler, lambda_context):
    overwrite(3)  # the team shipped a fix
    assert tick(rolled_back, reconciler, lambda_context, 180) == ["recorded:rollback-superseded"]
    assert running_revision() == "web:3"


def test_a_failing_retry_is_audited_and_tried_again_next_minute(rolled_back, reconciler, lambda_context):
    overwrite(2)
    flaky = use_ecs(rolled_back, FlakyEcs(rolled_back.ecs, fail=1))
    with pytest.raises(ClientError, match="ThrottlingException"):  # the run ends with the error (Errors alarm)
        tick(rolled_back, reconciler, lambda_context, 180)  # failed: audited, claim released
    history = rolled_back.store.history(cluster=CLUSTER, service=SERVICE, now=rolled_back.clock())
    assert history[0].outcome == "failed:rollback-retry"
    assert rollbacks(rolled_back)[0].attempts == 1
    assert tick(rolled_back, reconciler, lambda_context, 60) == ["rollback-retry"]
    assert flaky.updates == [{"taskDefinition": td(1)}] and running_revision() == "web:1"


def test_dry_run_services_are_not_retried(rolled_back, reconciler, lambda_context):
    overwrite(2)
    rolled_back.store.put_policy(policy().model_copy(update={"spec": policy().spec.model_copy(
        update={"mode": "dry-run"})}), rolled_back.clock())
    calls = EcsCalls()
    assert tick(rolled_back, reconciler, lambda_context, 180) == [] and calls.calls == []
