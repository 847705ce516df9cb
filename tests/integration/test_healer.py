"""HealerFunction against moto: every path from a STOPPED task event (project samples and variants) to the
AWS calls, the state, the audit trail and the notifications."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy, TaskPolicy, service_key
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState
from tests.conftest import load_handler, sample, variant

ARN = "arn:aws:ecs:us-east-1:123456789012"
WEB = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
       "spec": {"healing": {"crashLoop": {"failures": 3, "windowSeconds": 600, "action": "rollback"},
                            "oom": {"growPercent": 25, "maxMemoryMiB": 4096},
                            "spotFallback": {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800,
                                             "onDemandProvider": "FARGATE"}},
                "rollout": {"rollbackOnImagePullFailure": True}}}
STRATEGY = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]


def register(family: str = "web", memory: int = 512, cpu: str = "256", task_memory: str = "1024") -> str:
    return client("ecs").register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu=cpu, memory=task_memory,
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": memory},
                              {"name": "aws-otel-collector", "image": "otel", "memoryReservation": 128}],
        tags=[{"key": "team", "value": "payments"}])["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def web(deps) -> dict[str, Any]:
    """prod/web on revision 2 (LKG revision 1), desired 10, with a capacity provider strategy and a policy."""
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.create_cluster(clusterName="batch")
    rev1, rev2 = register(), register()
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=rev2, desiredCount=10)
    ecs.update_service(cluster="prod", service="web", capacityProviderStrategy=STRATEGY)
    deps.store.put_policy(ServicePolicy.model_validate(WEB), deps.clock())
    deps.store.save_state(service_key("prod", "web"), ServiceState(rollout=RolloutState(lkg=rev1)), 0)
    return {"rev1": rev1, "rev2": rev2}


@pytest.fixture
def healer():
    return load_handler("healer")


def stop_event(name: str, n: int, task_definition: str, **changes: Any) -> dict[str, Any]:
    task = f"{ARN}:task/prod/{n:032x}"
    return variant(sample(name), **{"id": f"evt-{name}-{n}", "resources": [task], "detail.taskArn": task,
                                    "detail.taskDefinitionArn": task_definition,
                                    "detail.stoppedAt": "2026-11-26T11:59:30Z", **changes})


def running(service: str = "web") -> dict[str, Any]:
    return client("ecs").describe_services(cluster="prod", services=[service])["services"][0]


def history(deps, service: str = "web") -> list[Any]:
    return deps.store.history(cluster="prod", service=service, now=deps.clock())


def test_a_crash_loop_rolls_back_to_lkg_once(web, deps, healer, lambda_context, topic_messages):
    results = [healer.lambda_handler(stop_event("healer-crash.json", n, web["rev2"]), lambda_context)
               for n in range(3)]
    assert [r["outcomes"][0]["outcome"] for r in results] == ["counted", "counted", "rollback"]
    assert running()["taskDefinition"] == web["rev1"]
    state = deps.store.load_state(service_key("prod", "web")).state
    assert state.rollout.is_bad(web["rev2"])
    rollback = next(h for h in history(deps) if h.outcome == "rollback")
    assert rollback.calls == ["ecs:UpdateService", "sns:Publish"] and rollback.source == "healer"
    messages = topic_messages()
    assert len(messages) == 1 and "Rolled back prod/web" in messages[0]
    # more failures of the bad revision: nothing more, and no AWS call
    more = healer.lambda_handler(stop_event("healer-crash.json", 9, web["rev2"]), lambda_context)
    assert more["outcomes"][0]["outcome"] == "skipped:revision-bad"
    assert topic_messages() == []


def test_redelivered_events_count_once(web, deps, healer, lambda_context):
    event = stop_event("healer-crash.json", 1, web["rev2"])
    outcomes = [healer.lambda_handler(event, lambda_context)["outcomes"][0]["outcome"] for _ in range(3)]
    assert outcomes == ["counted", "skipped:duplicate", "skipped:duplicate"]
    newer = variant(event, **{"detail.version": 8, "id": "another-delivery"})  # a later state change of the task
    assert healer.lambda_handler(newer, lambda_context)["outcomes"][0]["outcome"] == "skipped:not-counted"
    healer.lambda_handler(stop_event("healer-crash.json", 2, web["rev2"]), lambda_context)
    assert running()["taskDefinition"] == web["rev2"]  # two distinct failures: below the threshold


def test_failures_of_an_old_revision_do_not_roll_back_the_new_one(web, deps, healer, lambda_context):
    for n in range(3):
        result = healer.lambda_handler(stop_event("healer-crash.json", n, web["rev1"]), lambda_context)
    assert result["outcomes"][0]["outcome"] == "skipped:not-current-revision"
    assert running()["taskDefinition"] == web["rev2"]


def test_an_image_pull_failure_rolls_back_at_once(web, deps, healer, lambda_context):
    result = healer.lambda_handler(stop_event("healer-image-pull.json", 1, web["rev2"]), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback"
    assert running()["taskDefinition"] == web["rev1"]


@pytest.mark.parametrize("name", ["healer-normal-scale-in.json", "healer-normal-user-stop.json",
                                  "healer-normal-sigterm-143.json", "healer-unknown-stop-code.json",
                                  "healer-no-containers.json", "healer-long-reason.json", "healer-infrastructure.json"])
def test_normal_and_unknown_stops_are_audited_and_change_nothing(web, deps, healer, lambda_context, name):
    before = deps.store.load_state(service_key("prod", "web"))
    result = healer.lambda_handler(stop_event(name, 1, web["rev2"]), lambda_context)
    assert result["outcomes"][0]["outcome"].startswith("ignored:")
    assert deps.store.load_state(service_key("prod", "web")) == before
    assert [h.outcome for h in history(deps)] == [result["outcomes"][0]["outcome"]]


def test_an_oom_derives_one_bigger_revision_and_rolls_the_service_to_it(web, deps, healer, lambda_context,
                                                                         topic_messages):
    results = [healer.lambda_handler(stop_event("healer-oom.json", n, web["rev2"]), lambda_context)
               for n in range(10)]
    assert [r["outcomes"][0]["outcome"] for r in results].count("oom-right-size") == 1
    ecs = client("ecs")
    arns = ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    assert len(arns) == 3  # revisions 1, 2 and the one derived
    derived = ecs.describe_task_definition(taskDefinition="web:3", include=["TAGS"])
    td = derived["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("256", "2048")  # 1024 + 25 % = 1280 -> next Fargate size
    assert next(c for c in td["containerDefinitions"] if c["name"] == "web")["memory"] == 640
    tags = {t["key"]: t["value"] for t in derived["tags"]}
    assert tags["team"] == "payments" and tags["autopilot:derivation-id"].startswith("oom-")
    assert running()["taskDefinition"].endswith("web:3")
    assert running()["desiredCount"] == 10
    assert sum("Derived a new revision" in m for m in topic_messages()) == 1


def test_oom_at_the_cap_notifies_once(deps, healer, lambda_context, topic_messages):
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    full = register(memory=3968, cpu="512", task_memory="4096")
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=full, desiredCount=2)
    deps.store.put_policy(ServicePolicy.model_validate(WEB), deps.clock())
    outcomes = [healer.lambda_handler(stop_event("healer-oom.json", n, full), lambda_context)["outcomes"][0]["outcome"]
                for n in range(2)]
    assert outcomes[0] == "oom:at-cap"
    assert len(ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]) == 1
    messages = topic_messages()
    assert len(messages) == 1 and "cannot grow" in messages[0]


def test_spot_fallback_then_the_reconciler_restores_the_strategy(web, deps, healer, lambda_context, clock):
    first = healer.lambda_handler(stop_event("healer-spot-interruption.json", 1, web["rev2"]), lambda_context)
    assert first["outcomes"][0]["outcome"] == "counted"
    placement = variant(sample("healer-placement-failure-spot.json"), time="2026-11-26T11:59:50Z")
    second = healer.lambda_handler(placement, lambda_context)
    assert second["outcomes"][0]["outcome"] == "spot-fallback"
    service = running()
    assert service["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
    assert service["desiredCount"] == 10
    reconciler = load_handler("reconciler")
    clock.advance(1799)
    reconciler.lambda_handler({"id": "tick-1"}, lambda_context)
    assert running()["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
    clock.advance(1)
    result = reconciler.lambda_handler({"id": "tick-2"}, lambda_context)
    assert any(o["outcome"] == "spot-restore" for o in result["outcomes"])
    service = running()
    assert sorted(service["capacityProviderStrategy"], key=lambda s: s["capacityProvider"]) == STRATEGY
    assert service["desiredCount"] == 10
    assert deps.store.load_state(service_key("prod", "web")).state.healing.spot.hold is None
    clock.advance(60)
    again = reconciler.lambda_handler({"id": "tick-3"}, lambda_context)
    assert not any(o["outcome"].startswith("spot") for o in again["outcomes"])


def test_a_placement_failure_on_ec2_is_ignored(web, deps, healer, lambda_context):
    result = healer.lambda_handler(sample("healer-placement-failure-ec2-cpu.json"), lambda_context)
    assert result["outcomes"][0]["outcome"] == "ignored:not-spot"


def test_unmanaged_clusters_services_and_families_are_audited_only(web, deps, healer, lambda_context):
    other = variant(sample("healer-crash.json"), **{"detail.clusterArn": f"{ARN}:cluster/staging"})
    assert healer.lambda_handler(other, lambda_context)["outcomes"][0]["outcome"] == "ignored:unmanaged-cluster"
    unmanaged = variant(sample("healer-crash.json"), **{"detail.group": "service:api"})
    assert healer.lambda_handler(unmanaged, lambda_context)["outcomes"][0]["outcome"] == "ignored:no-policy"
    standalone = sample("healer-standalone-crash.json")
    assert healer.lambda_handler(standalone, lambda_context)["outcomes"][0]["outcome"] == "ignored:no-policy"


@pytest.mark.parametrize("bad", [
    {"detail-type": "ECS Task State Change", "source": "aws.ecs"},
    {"not": "an event"},
    "a string",
])
def test_invalid_events_are_rejected_without_any_call(deps, healer, lambda_context, bad):
    result = healer.lambda_handler(bad, lambda_context)
    assert result["status"] == "rejected"
    assert [h.outcome for h in deps.store.history(now=deps.clock())] == ["rejected:invalid-event"]


def test_dry_run_decides_and_announces_but_changes_nothing(web, deps, healer, lambda_context, topic_messages):
    policy = json.loads(json.dumps(WEB))
    policy["spec"]["mode"] = "dry-run"
    deps.store.put_policy(ServicePolicy.model_validate(policy), deps.clock())
    result = healer.lambda_handler(stop_event("healer-image-pull.json", 1, web["rev2"]), lambda_context)
    assert result["outcomes"][0]["outcome"] == "rollback"
    assert running()["taskDefinition"] == web["rev2"]
    assert any("[dry-run]" in m for m in topic_messages())


def test_the_published_stopped_sample_is_audited_as_a_normal_stop(deps, healer, lambda_context):
    from tests.conftest import in_account, published

    event = published("ecs-task-state-change-stopped-user-initiated-ec2-service.json")
    assert healer.lambda_handler(event, lambda_context)["outcomes"][0]["outcome"] == "ignored:foreign-account"
    result = healer.lambda_handler(in_account(event), lambda_context)
    assert result["outcomes"][0]["outcome"] == "ignored:unmanaged-cluster"  # cluster Features is not managed


def test_a_standalone_failure_is_queued_on_the_restart_queue(deps, healer, lambda_context, stack):
    client("ecs").create_cluster(clusterName="batch")
    deps.store.put_policy(TaskPolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "TaskPolicy", "metadata": {"cluster": "batch", "family": "nightly-etl"},
        "spec": {"restart": {"maxRestarts": 2, "initialBackoffSeconds": 10, "maxBackoffSeconds": 60}}}), deps.clock())
    result = healer.lambda_handler(sample("healer-standalone-crash.json"), lambda_context)
    assert result["outcomes"][0]["outcome"] == "restart-queued"
    sqs = client("sqs")
    url = stack.ref("RestartQueue")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # DelaySeconds 10: not visible yet
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None


@pytest.mark.parametrize("field", ["time", "detail.startedAt", "detail.stoppedAt"])
def test_a_task_event_whose_times_carry_no_zone_is_a_clear_rejection(web, deps, healer, lambda_context, capsys,
                                                                     field):
    """Issue 11, finding 7: a naive timestamp is rejected (rejected:invalid-event, counted, no mutation), never a
    TypeError from comparing it with an aware now, nor silently read as missing."""
    event = stop_event("healer-crash.json", 1, web["rev2"])
    node: Any = event
    *path, last = field.split(".")
    for part in path:
        node = node[part]
    node[last] = "2026-11-26T11:59:30.123"  # no Z, no offset
    before = deps.store.load_state(service_key("prod", "web"))
    capsys.readouterr()
    result = healer.lambda_handler(event, lambda_context)
    assert result["status"] == "rejected" and result["reason"].startswith(f"{field}: not a timestamp with a time zone")
    assert [h.outcome for h in deps.store.history(now=deps.clock())] == ["rejected:invalid-event"]
    assert '"InvalidEvent"' in capsys.readouterr().out
    assert deps.store.load_state(service_key("prod", "web")) == before
    assert running()["taskDefinition"] == web["rev2"]
