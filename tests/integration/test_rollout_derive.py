"""Derived revisions on moto: describe with tags -> derive -> register with tags -> UpdateService; retries reuse."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.aws.taskdefs import TaskDefinitions
from autopilot.decide.taskdef import READ_ONLY_FIELDS, TAG_DERIVATION_ID, TAG_DERIVED_FROM, tag_map
from autopilot.models.actions import Decision, DeriveRevision
from autopilot.models.policy import service_key
from autopilot.models.state import ServiceState, Snapshot
from autopilot.usecases.runner import Context, act
from tests.integration.test_rollout_support import CLUSTER, SERVICE, EcsCalls, FlakyEcs, running_revision, use_ecs

KEY = service_key(CLUSTER, SERVICE)
FAMILY = "web"

# What moto stores faithfully of a realistic Fargate task definition (moto drops a few fields, e.g.
# enableFaultInjection; the pure round-trip tests cover every field).
BASE: dict[str, Any] = {
    "family": FAMILY,
    "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-execution",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "512",
    "memory": "1024",
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "ephemeralStorage": {"sizeInGiB": 30},
    "volumes": [{"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-0123", "rootDirectory": "/data",
                                                              "transitEncryption": "ENABLED"}}],
    "containerDefinitions": [
        {"name": "app", "image": "nginx:1.27", "cpu": 384, "memory": 768, "memoryReservation": 512, "essential": True,
         "secrets": [{"name": "DB_PASSWORD",
                      "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}],
         "environment": [{"name": "MODE", "value": "prod"}],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data", "readOnly": False}],
         "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]},
        {"name": "sidecar", "image": "envoyproxy/envoy:v1.31", "cpu": 128, "memory": 256, "essential": True},
    ],
}


@pytest.fixture
def service(deps):
    ecs = client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    arn = ecs.register_task_definition(**BASE, tags=[{"key": "team", "value": "web"}])["taskDefinition"][
        "taskDefinitionArn"]
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=arn, desiredCount=2)
    return arn


def oom_action(base: str, derivation_id: str = "oom:web:1:app") -> DeriveRevision:
    return DeriveRevision(cluster=CLUSTER, service=SERVICE, base_task_definition=base, container_memory={"app": 1024},
                          task_memory=2048, derivation_id=derivation_id,
                          reason="container app was OOM-killed; memory +25% (rounded to a Fargate size)")


def derive(deps: Any, action: DeriveRevision, mode: str = "enforce"):
    """What the healer does: one decision through the runner (claim, execute, audit)."""
    ctx = Context(store=deps.store, executor=deps.executor, now=deps.clock(), global_mode=mode, source="healer",
                  event_id="evt-oom")

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        return Decision(outcome="oom-resize", reason=action.reason, actions=(action,)), snap.state

    return act(ctx, key=KEY, policy_mode="enforce", trigger="OOM", event_key=None, decide=decide)


def revisions() -> list[str]:
    return client("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]


def test_derived_revision_keeps_every_field_and_rolls_the_service(deps, service):
    calls = EcsCalls()
    entry = derive(deps, oom_action(service))
    assert entry.calls == ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:RegisterTaskDefinition",
                           "ecs:UpdateService", "sns:Publish"]
    assert calls.calls == ["DescribeTaskDefinition", "ListTaskDefinitions", "RegisterTaskDefinition", "UpdateService"]
    assert running_revision() == "web:2"
    base = client("ecs").describe_task_definition(taskDefinition="web:1", include=["TAGS"])
    new = client("ecs").describe_task_definition(taskDefinition="web:2", include=["TAGS"])
    old_td, new_td = base["taskDefinition"], new["taskDefinition"]
    for field in set(old_td) - READ_ONLY_FIELDS - {"containerDefinitions", "memory"}:
        assert new_td[field] == old_td[field], field
    assert new_td["memory"] == "2048"
    app_old, side_old = old_td["containerDefinitions"]
    app_new, side_new = new_td["containerDefinitions"]
    assert side_new == side_old
    assert {k: v for k, v in app_new.items() if k not in ("memory", "memoryReservation")} == \
        {k: v for k, v in app_old.items() if k not in ("memory", "memoryReservation")}
    assert (app_new["memory"], app_new["memoryReservation"]) == (1024, 683)  # 512 x 1024/768, rounded up
    tags = tag_map(new["tags"])
    assert tags["team"] == "web" and tags[TAG_DERIVED_FROM] == service and tags[TAG_DERIVATION_ID] == "oom:web:1:app"


def test_update_service_fails_once_the_retry_reuses_the_registered_revision(deps, service):
    flaky = use_ecs(deps, FlakyEcs(deps.ecs, fail=1))
    with pytest.raises(Exception, match="ThrottlingException"):
        derive(deps, oom_action(service))
    assert len(revisions()) == 2 and running_revision() == "web:1"  # registered, service not moved yet
    calls = EcsCalls()
    entry = derive(deps, oom_action(service))  # the event's retry: the same decision, the same derivation id
    assert "ecs:RegisterTaskDefinition" not in entry.calls
    assert calls.count("RegisterTaskDefinition") == 0
    assert len(revisions()) == 2 and running_revision() == "web:2"
    assert flaky.updates == [{"taskDefinition": revisions()[-1]}]


def test_another_derivation_registers_another_revision(deps, service):
    derive(deps, oom_action(service))
    derive(deps, oom_action(service, derivation_id="oom:web:1:other"))
    assert len(revisions()) == 3


def test_dry_run_registers_nothing(deps, service):
    calls = EcsCalls()
    entry = derive(deps, oom_action(service), mode="dry-run")
    assert entry.calls[:3] == ["dry-run:ecs:DescribeTaskDefinition", "dry-run:ecs:RegisterTaskDefinition",
                               "dry-run:ecs:UpdateService"]
    assert calls.calls == [] and len(revisions()) == 1


def test_find_derived_looks_only_at_revisions_newer_than_the_base(deps, service):
    taskdefs = TaskDefinitions()
    calls = EcsCalls()
    found = taskdefs.find_derived(FAMILY, "oom:web:1:app", newer_than=1)
    assert found.arn is None and found.describe_calls == 0 and calls.calls == ["ListTaskDefinitions"]
    derive(deps, oom_action(service))
    client("ecs").register_task_definition(**BASE)  # someone registers web:3 afterwards
    calls.reset()
    found = taskdefs.find_derived(FAMILY, "oom:web:1:app", newer_than=1)
    assert found.arn is not None and found.arn.endswith(":2") and found.describe_calls == 1  # oldest first
    assert calls.calls == ["ListTaskDefinitions", "DescribeTaskDefinition"]


# ------------------------------------------------------------------ issue 11, finding 8: never a twin
def register_more(n: int, family: str = FAMILY) -> None:
    """A deploy pipeline keeps registering revisions of the family meanwhile."""
    for _ in range(n):
        client("ecs").register_task_definition(**{**BASE, "family": family})


@pytest.mark.parametrize("ledger", [True, False], ids=["recorded", "answer-lost"])
def test_a_retry_after_many_new_revisions_reuses_its_own_revision(deps, service, ledger):
    """The step fails after registering (UpdateService throttled); the family then gets 120 new revisions
    (more than a ListTaskDefinitions page, far more than the few newest the lookup used to check); the
    retry reuses its own revision: from the ledger, or (when it was never recorded: the register answer
    itself was lost) from the tag lookup over every revision newer than the base."""
    use_ecs(deps, FlakyEcs(deps.ecs, fail=1))
    with pytest.raises(Exception, match="ThrottlingException"):
        derive(deps, oom_action(service))
    (ours,) = [a for a in revisions() if a.endswith(":2")]
    if ledger:
        assert deps.store.find_derivation("oom:web:1:app") == ours
    else:
        from autopilot.store.table import _derivation_pk

        client("dynamodb").delete_item(TableName=deps.store.name,
                                       Key={"PK": {"S": _derivation_pk("oom:web:1:app")}, "SK": {"S": "DERIVATION"}})
    register_more(120)
    register_more(3, family="web-api")  # familyPrefix "web" lists these too: never ours
    calls = EcsCalls()
    entry = derive(deps, oom_action(service))  # the event's retry
    made = list(calls.calls)
    assert made.count("RegisterTaskDefinition") == 0 and "ecs:RegisterTaskDefinition" not in entry.calls
    assert running_revision() == "web:2"
    assert len([a for a in revisions() if "/web:" in a]) == 122
    if ledger:
        assert made == ["UpdateService"], "the ledger answered: no List, no Describe"
    else:
        assert "ListTaskDefinitions" in made  # pagination: tests/unit/test_taskdef_lookup.py (moto answers one page)
        assert deps.store.find_derivation("oom:web:1:app") == ours, "recorded once found"


def test_a_throttled_register_is_retried_and_an_unknown_outcome_is_looked_up_first(deps, service):
    """RegisterTaskDefinition goes through a client without botocore's retries: a throttled attempt (not
    registered) is simply retried; a timed-out one (maybe registered) is looked up before the next one."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    from autopilot.aws.taskdefs import TaskDefinitions

    real = client("ecs")
    outcomes = iter(["throttle", "lost"])
    registered: list[str] = []

    class OneAttempt:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def register_task_definition(self, **kwargs: Any) -> Any:
            step = next(outcomes, "ok")
            if step == "throttle":
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, "RegisterTaskDefinition")
            answer = real.register_task_definition(**kwargs)
            registered.append(answer["taskDefinition"]["taskDefinitionArn"])
            if step == "lost":
                raise ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com/")
            return answer

    slept: list[float] = []
    taskdefs = TaskDefinitions(register_client=OneAttempt(), sleep=slept.append)
    request = {**BASE, "tags": [{"key": TAG_DERIVATION_ID, "value": "d-1"}]}
    found = taskdefs.register_derived(request, FAMILY, "d-1", newer_than=1)
    assert registered == [found.arn] and found.arn.endswith(":2") and not found.registered
    assert len(slept) == 1, "a jittered pause after the throttled attempt; the lost one was found, not repeated"
