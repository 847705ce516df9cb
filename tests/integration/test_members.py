"""A hub acting in member accounts and regions (issue 13), on moto with several accounts.

moto takes an STS AssumeRole of any role ARN as a switch to that role's account: the member clients the
functions build (autopilot.aws.clients) then really act in the member's account, which these tests read back
through the same kind of client. Every handler runs as Lambda would run it; the AWS calls they make as a
member's role are recorded for the IAM coverage check against templates/member-account.yaml.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autopilot.aws import clients
from autopilot.aws.clients import MemberAccess, client
from autopilot.models.place import Place, Registration
from autopilot.models.policy import ServicePolicy, TaskPolicy, family_key, placed, service_key
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState
from autopilot.usecases.reconcile import PlacesFailed
from tests.conftest import load_handler, sample, variant

HOME = Place("123456789012", "us-east-1")
A = Place("111111111111", "us-east-1")  # a registered member, in the hub's region
B = Place("222222222222", "eu-west-1")  # a registered member, in another region
C = Place("333333333333", "eu-west-1")  # not registered: admitted only by a policy naming it
FOREIGN = "999999999999"
REGISTRY = Registration(accounts=(A.account, B.account), regions=("us-east-1", "eu-west-1"))

SCALING = {"minTasks": 1, "maxTasks": 20, "scaleOutCooldownSeconds": 60,
           "rules": [{"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 2}]}]}


def policy(place: Place | None, **spec: Any) -> ServicePolicy:
    metadata: dict[str, Any] = {"cluster": "prod", "service": "web"}
    if place is not None:
        metadata |= {"account": place.account, "region": place.region}
    document = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": metadata,
                "spec": spec or {"scaling": SCALING}}
    return placed(ServicePolicy.model_validate(document), HOME)


def at(place: Place, service: str) -> Any:
    """A client of the test acting in ``place`` (the member role, assumed by the test itself: the functions'
    member sessions then assume it on their own, and the IAM coverage check sees each function do it)."""
    import boto3

    found = _test_clients.get((place, service))
    if found is None:
        credentials = boto3.client("sts", region_name=HOME.region).assume_role(
            RoleArn=REGISTRY.role_arn(place), RoleSessionName="test")["Credentials"]
        found = boto3.client(service, region_name=place.region, aws_access_key_id=credentials["AccessKeyId"],
                             aws_secret_access_key=credentials["SecretAccessKey"],
                             aws_session_token=credentials["SessionToken"])
        _test_clients[(place, service)] = found
    return found


_test_clients: dict[tuple[Place, str], Any] = {}


@pytest.fixture(autouse=True)
def _fresh_test_clients() -> Any:
    _test_clients.clear()
    yield
    _test_clients.clear()


def estate(place: Place, desired: int = 2) -> dict[str, str]:
    """prod/web on revision 2 (revision 1 was good) in ``place``."""
    ecs = ecs_at(place)
    ecs.create_cluster(clusterName="prod")
    revisions = [ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])[
        "taskDefinition"]["taskDefinitionArn"] for _ in range(2)]
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=revisions[1], desiredCount=desired)
    return {"rev1": revisions[0], "rev2": revisions[1]}


def ecs_at(place: Place) -> Any:
    return client("ecs") if place == HOME else at(place, "ecs")


def web(place: Place) -> dict[str, Any]:
    return ecs_at(place).describe_services(cluster="prod", services=["web"])["services"][0]


def alarm_event(place: Place | str, event_id: str, name: str = "web-cpu-high") -> dict[str, Any]:
    account, region = (place.account, place.region) if isinstance(place, Place) else (place, "us-east-1")
    return variant(sample("scaler-alarm-high.json"), **{
        "id": event_id, "account": account, "region": region, "detail.alarmName": name,
        "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"]})


@pytest.fixture
def hub(deps) -> Any:
    deps.store.put_registration(REGISTRY, deps.clock())
    return deps


@pytest.fixture
def scaler():
    return load_handler("scaler")


@pytest.fixture
def healer():
    return load_handler("healer")


def outcome(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["target"], o["outcome"]) for o in result["outcomes"]]


# ------------------------------------------------------------------------------------------- the scaler
def test_a_members_alarm_scales_the_members_service_only(hub, scaler, lambda_context):
    for place in (HOME, A, B):
        estate(place)
        hub.store.put_policy(policy(None if place == HOME else place), hub.clock())
    result = scaler.lambda_handler(alarm_event(B, "b-1"), lambda_context)
    assert outcome(result) == [(service_key("prod", "web", B), "scale-out")]
    assert [web(p)["desiredCount"] for p in (HOME, A, B)] == [2, 2, 4]
    entry = hub.store.history(cluster="prod", service="web", place=B, now=hub.clock())[0]
    assert entry.calls == ["ecs:UpdateService", "sns:Publish"] and entry.place == str(B)
    # the hub's own event: its own service, its own key, exactly as before places existed
    result = scaler.lambda_handler(alarm_event(HOME, "home-1"), lambda_context)
    assert outcome(result) == [("SVC#prod#web", "scale-out")]
    assert [web(p)["desiredCount"] for p in (HOME, A, B)] == [4, 2, 4]


def test_the_same_transition_in_two_accounts_is_two_events(hub, scaler, lambda_context):
    """Idempotency records are per place: equal alarm names and timestamps in two accounts both act."""
    for place in (A, B):
        estate(place)
        hub.store.put_policy(policy(place), hub.clock())
    results = {place: scaler.lambda_handler(alarm_event(place, "same-id"), lambda_context) for place in (A, B)}
    for place, result in results.items():
        assert outcome(result) == [(service_key("prod", "web", place), "scale-out")]
    assert [web(p)["desiredCount"] for p in (A, B)] == [4, 4]
    again = scaler.lambda_handler(alarm_event(A, "same-id"), lambda_context)  # a redelivery: A's stored result
    assert again == results[A] and web(A)["desiredCount"] == 4


def test_a_foreign_accounts_alarm_never_acts(hub, scaler, lambda_context):
    estate(HOME)
    hub.store.put_policy(policy(None), hub.clock())
    sessions = dict(clients._member_sessions)
    for event in (alarm_event(FOREIGN, "f-1"),
                  alarm_event(Place(HOME.account, "ap-south-1"), "f-2"),  # the hub's account, another region
                  alarm_event(Place(A.account, "ap-south-1"), "f-3")):  # a member's account, an unregistered region
        result = scaler.lambda_handler(event, lambda_context)
        assert outcome(result) == [("-", "ignored:foreign-account")], event["account"]
    assert web(HOME)["desiredCount"] == 2
    assert clients._member_sessions == sessions, "no role was assumed for a foreign event"
    entries = hub.store.history(now=hub.clock())
    assert {e.outcome for e in entries} == {"ignored:foreign-account"}
    assert {e.place for e in entries} == {f"{FOREIGN}/us-east-1", f"{HOME.account}/ap-south-1",
                                          f"{A.account}/ap-south-1"}


def test_the_direct_alarm_action_payload_names_its_place_too(hub, scaler, lambda_context):
    estate(HOME)
    hub.store.put_policy(policy(None), hub.clock())
    direct = sample("scaler-direct-metric-alarm.json")
    foreign = variant(direct, **{"accountId": FOREIGN,
                                 "alarmArn": direct["alarmArn"].replace(direct["accountId"], FOREIGN)})
    result = scaler.lambda_handler(foreign, lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["ignored:foreign-account"]


def test_a_place_no_member_registers_is_admitted_by_a_policy_naming_it(hub, scaler, lambda_context):
    estate(C)
    hub.store.put_policy(policy(C), hub.clock())
    result = scaler.lambda_handler(alarm_event(C, "c-1"), lambda_context)
    assert outcome(result) == [(service_key("prod", "web", C), "scale-out")]
    assert web(C)["desiredCount"] == 4


def test_an_admitted_members_alarm_no_policy_names_there_is_unknown(hub, scaler, lambda_context):
    estate(HOME)
    hub.store.put_policy(policy(None), hub.clock())  # the hub's own policy names the same alarm
    result = scaler.lambda_handler(alarm_event(A, "a-1"), lambda_context)
    assert outcome(result) == [("-", "ignored:unknown-alarm")]
    assert web(HOME)["desiredCount"] == 2


# ------------------------------------------------------------------------------------------- the healer
def test_a_crash_loop_in_a_member_rolls_back_there(hub, healer, lambda_context):
    revisions = estate(B, desired=6)
    healing = {"healing": {"crashLoop": {"failures": 3, "windowSeconds": 600, "action": "rollback"}}}
    hub.store.put_policy(policy(B, **healing), hub.clock())
    key = service_key("prod", "web", B)
    hub.store.save_state(key, ServiceState(rollout=RolloutState(lkg=revisions["rev1"])), 0)
    arn = f"arn:aws:ecs:{B.region}:{B.account}"
    outcomes = []
    for n in range(3):
        task = f"{arn}:task/prod/{n:032x}"
        event = variant(sample("healer-crash.json"), **{
            "id": f"crash-{n}", "account": B.account, "region": B.region, "resources": [task],
            "detail.taskArn": task, "detail.clusterArn": f"{arn}:cluster/prod",
            "detail.taskDefinitionArn": revisions["rev2"], "detail.stoppedAt": "2026-11-26T11:59:30Z"})
        outcomes.append(healer.lambda_handler(event, lambda_context)["outcomes"][0]["outcome"])
    assert outcomes == ["counted", "counted", "rollback"]
    assert web(B)["taskDefinition"] == revisions["rev1"]
    assert hub.store.load_state(key).state.rollout.is_bad(revisions["rev2"])


def test_a_members_cluster_is_not_checked_against_the_hubs_managed_clusters(hub, healer, lambda_context):
    """ManagedClusters names the hub's own clusters; a member's stack forwards its own clusters' events."""
    estate(A)
    hub.store.put_policy(policy(A, healing={"crashLoop": {"failures": 3}}), hub.clock())
    arn = f"arn:aws:ecs:{A.region}:{A.account}"
    event = variant(sample("healer-crash.json"), **{
        "account": A.account, "detail.clusterArn": f"{arn}:cluster/payments", "detail.group": "service:web"})
    result = healer.lambda_handler(event, lambda_context)
    assert result["outcomes"][0]["outcome"] == "ignored:no-policy"  # looked up in the member place, not refused
    home = healer.lambda_handler(variant(event, **{"account": HOME.account}), lambda_context)
    assert home["outcomes"][0]["outcome"] == "ignored:unmanaged-cluster"


# ------------------------------------------------------------------------------------------- rollout, restarts
def test_a_failed_deployment_in_a_member_rolls_back_there(hub, lambda_context):
    revisions = estate(A)
    key = service_key("prod", "web", A)
    hub.store.put_policy(policy(A, rollout={"rollbackOnDeploymentFailure": True}), hub.clock())
    hub.store.save_state(key, ServiceState(rollout=RolloutState(lkg=revisions["rev1"])), 0)
    event = variant(sample("rollout-failed-circuit-breaker.json"), **{
        "account": A.account, "region": A.region, "detail.deploymentId": web(A)["deployments"][0]["id"],
        "resources": [f"arn:aws:ecs:{A.region}:{A.account}:service/prod/web"]})
    result = load_handler("rollout").lambda_handler(event, lambda_context)
    assert result["outcomes"][0]["target"] == key
    assert web(A)["taskDefinition"] == revisions["rev1"], result


def test_a_members_standalone_task_is_rerun_in_the_member(hub, healer, lambda_context, stack):
    ecs, ec2 = at(B, "ecs"), at(B, "ec2")
    ecs.create_cluster(clusterName="batch")
    ecs.register_task_definition(family="nightly-etl", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512",
                                 containerDefinitions=[{"name": "nightly-etl", "image": "etl", "memory": 512}])
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    task_policy = placed(TaskPolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "TaskPolicy",
        "metadata": {"cluster": "batch", "family": "nightly-etl", "account": B.account, "region": B.region},
        "spec": {"restart": {"maxRestarts": 2, "initialBackoffSeconds": 0, "maxBackoffSeconds": 0},
                 "network": {"subnets": [subnet], "securityGroups": [group]}}}), HOME)
    hub.store.put_policy(task_policy, hub.clock())
    arn = f"arn:aws:ecs:{B.region}:{B.account}"
    task = f"{arn}:task/batch/{7:032x}"
    event = variant(sample("healer-standalone-crash.json"), **{
        "account": B.account, "region": B.region, "resources": [task], "detail.taskArn": task,
        "detail.clusterArn": f"{arn}:cluster/batch",
        "detail.taskDefinitionArn": f"{arn}:task-definition/nightly-etl:1"})
    assert healer.lambda_handler(event, lambda_context)["outcomes"][0]["outcome"] == "restart-queued"
    sqs, url = client("sqs"), stack.ref("RestartQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    base = sample("restarter-restart-due.json")["Records"][0]
    records = [{**base, "body": m["Body"], "messageId": m["MessageId"]} for m in messages]
    response = load_handler("restarter").lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": []}
    assert len(ecs.list_tasks(cluster="batch")["taskArns"]) == 1, "the re-run started in the member's cluster"
    assert client("ecs").list_clusters()["clusterArns"] == [], "nothing ran in the hub's account"
    lineages = hub.store.load_state(family_key("batch", "nightly-etl", B)).state.restarts.lineages
    assert len(lineages) == 1


# ------------------------------------------------------------------------------------------- the reconciler
def _alarm(place: Place, name: str = "web-cpu-high") -> None:
    cloudwatch = client("cloudwatch") if place == HOME else at(place, "cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/ECS",
                                Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=70.0,
                                ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test",
                               StateReasonData='{"recentDatapoints": [80.0], "threshold": 70.0}')


def test_the_reconciler_acts_in_every_place_with_its_own_alarms(hub, lambda_context):
    for place in (HOME, A, B):
        estate(place)
        hub.store.put_policy(policy(None if place == HOME else place), hub.clock())
    _alarm(A)  # only A's alarm is in ALARM: the hub's and B's alarms of the same name do not exist
    result = load_handler("reconciler").lambda_handler({"id": "tick-1"}, lambda_context)
    assert [(o["target"], o["outcome"]) for o in result["outcomes"]] == [
        (service_key("prod", "web", A), "scale-out")]
    assert [web(p)["desiredCount"] for p in (HOME, A, B)] == [2, 4, 2]


def test_one_member_that_cannot_be_reached_delays_no_other(hub, lambda_context, monkeypatch):
    """A's calls wait until B has acted; sequentially (A first) that could never happen, so B acting proves
    the places ran side by side. A's AssumeRole is then denied: the invocation fails once every other place
    was reconciled, naming A."""
    for place in (HOME, A, B):
        estate(place)
        hub.store.put_policy(policy(None if place == HOME else place), hub.clock())
        _alarm(place)
    b_acted = threading.Event()
    a_role = REGISTRY.role_arn(A)
    waited_in_vain: list[bool] = []

    def before_assume(params: dict[str, Any], **_: Any) -> None:
        if params.get("RoleArn") == a_role:
            waited_in_vain.append(not b_acted.wait(timeout=30))  # only a failing run waits that long
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    def after_update(params: dict[str, Any], **_: Any) -> None:
        if params.get("service") == "web" and params.get("desiredCount") == 4:
            b_acted.set()

    clients.reset_clients()
    base = clients._base()._session
    base.register("provide-client-params.sts.AssumeRole", before_assume)
    try:
        client("ecs", B, MemberAccess(role_arn=REGISTRY.role_arn(B))).meta.events.register(
            "provide-client-params.ecs.UpdateService", after_update)
        with pytest.raises(PlacesFailed) as failed:
            load_handler("reconciler").lambda_handler({"id": "tick-2"}, lambda_context)
    finally:
        base.unregister("provide-client-params.sts.AssumeRole", before_assume)
    assert waited_in_vain == [False], "B did not act while A was stuck: the places ran one after another"
    assert str(A) in str(failed.value) and "1 of 3 places" in str(failed.value)
    assert [web(p)["desiredCount"] for p in (HOME, B)] == [4, 4]
    scaled = {e.target for e in hub.store.history(now=hub.clock()) if e.outcome == "scale-out"}
    assert scaled == {"SVC#prod#web", service_key("prod", "web", B)}


def test_a_deployment_without_members_reads_no_registry_for_its_own_events(deps, scaler, lambda_context):
    """Single-account use stays as it was: the hub's own events never read the member registry."""
    estate(HOME)
    deps.store.put_policy(policy(None), deps.clock())
    reads: list[str] = []
    client("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.GetItem",
        lambda params, **_: reads.append(params["Key"]["PK"]["S"]))
    scaler.lambda_handler(alarm_event(HOME, "home-only"), lambda_context)
    assert "HUB" not in reads and web(HOME)["desiredCount"] == 4


# ------------------------------------------------------------------------------------------- issues 11 and 13 together
def _fleet(place: Place, services: list[str]) -> None:
    """``services`` in prod of ``place``, each at 20 tasks where its policy allows at most 10 (drifted)."""
    ecs = ecs_at(place)
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="app", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}])
    for service in services:
        ecs.create_service(cluster="prod", serviceName=service, taskDefinition="app", desiredCount=20)


def _bounded(place: Place | None, service: str) -> ServicePolicy:
    metadata: dict[str, Any] = {"cluster": "prod", "service": service}
    if place is not None:
        metadata |= {"account": place.account, "region": place.region}
    return placed(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": metadata,
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 10,
                             "rules": [{"alarm": f"{service}-high", "exactCapacity": 5}]}}}), HOME)


def _desired(place: Place, service: str) -> int:
    return int(ecs_at(place).describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


class _Shards:
    """The reconcile queue as the scheduled run sees it: what it sent (the shards run below, one by one)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []

    def send_batch(self, messages: list[tuple[dict[str, Any], int]]) -> None:
        self.sent += messages


def test_a_sharded_run_reconciles_each_place_in_the_shards_its_entries_hash_to(hub, lambda_context):
    """Shards are of (place, policy) entries: a member's keys carry its place, so each shard holds a share of every
    place; a shard groups its entries by place again and acts in each place with that place's ports. Together the
    shards repair every service of every place exactly where it lives, and nothing twice."""
    import json

    from autopilot.usecases.shards import shard_of

    services = [f"svc-{i}" for i in range(4)]
    policies = {place: [_bounded(None if place == HOME else place, s) for s in services] for place in (HOME, A, B)}
    for place, placed_policies in policies.items():
        _fleet(place, services)
        for p in placed_policies:
            hub.store.put_policy(p, hub.clock())
    hub.settings.reconcile_shard_size = 5
    hub.shards = _Shards()
    reconciler = load_handler("reconciler")
    assert reconciler.lambda_handler({"id": "tick-s"}, lambda_context) == {
        "status": "fanned-out", "policies": 12, "shards": 3}
    repaired: set[tuple[Place, str]] = set()
    for body, _delay in hub.shards.sent:
        mine = {(place, p.metadata.service) for place, placed_policies in policies.items() for p in placed_policies
                if shard_of(p.key, 3) == body["shard"]}
        answer = reconciler.lambda_handler({"Records": [{"body": json.dumps(body)}]}, lambda_context)
        (shard,) = answer["shards"]
        assert {o["outcome"] for o in shard["outcomes"]} <= {"repair-bounds"}
        now_repaired = {(place, s) for place in (HOME, A, B) for s in services if _desired(place, s) == 10}
        assert now_repaired - repaired == mine, f"shard {body['shard']} repaired exactly its (place, service) entries"
        repaired = now_repaired
    assert len(repaired) == 12
    assert len({place for place, _ in repaired}) == 3


def test_one_failing_service_in_a_member_fails_only_itself(hub, lambda_context):
    """Per-service isolation (issue 11) inside a place (issue 13): UpdateService refused for one service of A; A's
    other service, the hub's own and B's are still repaired in the same run, the failure is audited in A's place
    and counted, and the run then fails naming A only."""
    for place in (HOME, A, B):
        _fleet(place, ["good", "bad"])
        for service in ("good", "bad"):
            hub.store.put_policy(_bounded(None if place == HOME else place, service), hub.clock())

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("service") == "bad":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
                              "UpdateService")

    client("ecs", A, MemberAccess(role_arn=REGISTRY.role_arn(A))).meta.events.register(
        "provide-client-params.ecs.UpdateService", refuse)
    with pytest.raises(PlacesFailed) as failed:
        load_handler("reconciler").lambda_handler({"id": "tick-i"}, lambda_context)
    assert "1 of 3 places" in str(failed.value) and str(A) in str(failed.value)
    assert [e.target for e in failed.value.failed] == [service_key("prod", "bad", A)]
    assert [(_desired(p, "good"), _desired(p, "bad")) for p in (HOME, A, B)] == [(10, 10), (10, 20), (10, 10)]
    entry = hub.store.history(cluster="prod", service="bad", place=A, now=hub.clock())[0]
    assert entry.outcome == "failed:repair-bounds" and entry.place == str(A) and "AccessDenied" in (entry.error or "")
