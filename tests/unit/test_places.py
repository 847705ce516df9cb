"""Places (issue 13): keys, the admission check, policies naming their place, events carrying theirs, and
a policy declared in CloudFormation typed back from the strings CloudFormation makes of it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from autopilot.models.audit import AuditEntry
from autopilot.models.cfn_properties import typed
from autopilot.models.deployment_events import parse_deployment_event
from autopilot.models.events import parse_alarm_event
from autopilot.models.place import (
    Place,
    Registration,
    admitted,
    elsewhere,
    key_prefix,
    partition_of,
    place_of,
    split_target,
)
from autopilot.models.policy import ServicePolicy, TaskPolicy, family_key, placed, service_key
from autopilot.models.policy_document import DocumentError, check_document, summary
from autopilot.models.task_events import parse_healer_event
from autopilot.settings import Settings
from autopilot.usecases.places import idempotency_scope
from autopilot_tools.cli.render import target_of
from autopilot_tools.demo.organisation import stringly
from tests.conftest import in_account, published, sample, variant

ROOT = Path(__file__).resolve().parents[2]
HOME = Place("123456789012", "us-east-1")
MEMBER = Place("111111111111", "eu-west-1")


# ------------------------------------------------------------------------------------------- keys
def test_the_hubs_own_keys_are_the_keys_of_before_places() -> None:
    """Stored state of a single-account deployment stays valid after the upgrade: no migration."""
    assert service_key("prod", "web") == service_key("prod", "web", None) == "SVC#prod#web"
    assert family_key("batch", "etl") == "TASK#batch#etl"
    assert service_key("prod", "web", MEMBER) == "SVC#111111111111#eu-west-1#prod#web"
    assert family_key("batch", "etl", MEMBER) == "TASK#111111111111#eu-west-1#batch#etl"
    assert key_prefix("AUDIT", None) == "AUDIT#" and key_prefix("AUDIT", MEMBER) == "AUDIT#111111111111#eu-west-1#"


names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
accounts = st.from_regex(r"\d{12}", fullmatch=True)
regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "il-central-1"])


@given(cluster=names, name=names, account=accounts, region=regions, kind=st.sampled_from(["SVC", "TASK"]))
def test_a_key_names_its_place_and_target_unambiguously(cluster: str, name: str, account: str, region: str,
                                                        kind: str) -> None:
    key_of = service_key if kind == "SVC" else family_key
    place = Place(account, region)
    assert place.valid
    assert split_target(key_of(cluster, name, place)) == (place, cluster, name)
    assert split_target(key_of(cluster, name)) == (None, cluster, name)
    assert key_of(cluster, name, place) != key_of(cluster, name)


@pytest.mark.parametrize(("account", "region", "expected"), [
    (None, None, None),
    ("123456789012", None, None),
    (None, "us-east-1", None),
    ("123456789012", "us-east-1", None),
    ("111111111111", None, Place("111111111111", "us-east-1")),
    (None, "eu-west-1", Place("123456789012", "eu-west-1")),
    ("111111111111", "eu-west-1", MEMBER),
])
def test_a_place_leaves_out_what_is_the_hubs_own(account: str | None, region: str | None,
                                                 expected: Place | None) -> None:
    assert elsewhere(place_of(account, region, HOME), HOME) == expected


@pytest.mark.parametrize(("place", "members", "named", "expected"), [
    (HOME, (), False, True),  # single account: the hub's own place only (finding 9)
    (Place(HOME.account, "eu-west-1"), (), False, False),  # the hub's account, another region
    (Place("999999999999", HOME.region), (), False, False),  # another account, the hub's region
    (MEMBER, (MEMBER,), False, True),  # a registered member
    (MEMBER, (Place(MEMBER.account, "us-east-1"),), False, False),  # a member, an unregistered region
    (MEMBER, (), True, True),  # a place a policy names
])
def test_admission(place: Place, members: tuple[Place, ...], named: bool, expected: bool) -> None:
    asked: list[Place] = []

    def names(where: Place) -> bool:
        asked.append(where)
        return named

    assert admitted(place, HOME, members, names) is expected
    if place == HOME or place in members:
        assert asked == [], "the hub's own and members' events never cost a read"


def test_the_registry_lists_members_and_the_roles_the_hub_assumes() -> None:
    registry = Registration(accounts=("111111111111", "222222222222"), regions=("us-east-1", "eu-west-1"))
    assert len(registry.members(HOME)) == 4
    assert Registration(accounts=("111111111111",)).members(HOME) == {Place("111111111111", "us-east-1")}
    assert registry.role_arn(MEMBER) == "arn:aws:iam::111111111111:role/ecs-autopilot-member-eu-west-1"
    assert Registration(role_name="hub-b").role_arn(Place("111111111111", "cn-north-1")) == \
        "arn:aws-cn:iam::111111111111:role/hub-b-cn-north-1"
    assert [partition_of(r) for r in ("us-gov-west-1", "cn-northwest-1", "eu-west-1")] == [
        "aws-us-gov", "aws-cn", "aws"]


def test_settings_know_the_hubs_own_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    settings = Settings.from_env({"AUTOPILOT_TABLE": "t", "AUTOPILOT_HOME_ACCOUNT": "123456789012"})
    assert settings.home == Place("123456789012", "eu-central-1")
    assert Settings.from_env({"AUTOPILOT_TABLE": "t"}).home is None  # unknown: every event counts as home
    with pytest.raises(RuntimeError, match="AUTOPILOT_HOME_ACCOUNT"):
        Settings.from_env({"AUTOPILOT_TABLE": "t", "AUTOPILOT_HOME_ACCOUNT": "12345"})


# ------------------------------------------------------------------------------------------- policies
def policy(**metadata: Any) -> ServicePolicy:
    return ServicePolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                                         "metadata": {"cluster": "prod", "service": "web", **metadata}, "spec": {}})


@pytest.mark.parametrize(("metadata", "key"), [
    ({}, "SVC#prod#web"),
    ({"account": "123456789012"}, "SVC#prod#web"),
    ({"account": "123456789012", "region": "us-east-1"}, "SVC#prod#web"),
    ({"region": "eu-west-1"}, "SVC#123456789012#eu-west-1#prod#web"),
    ({"account": "111111111111"}, "SVC#111111111111#us-east-1#prod#web"),
    ({"account": "111111111111", "region": "eu-west-1"}, "SVC#111111111111#eu-west-1#prod#web"),
])
def test_a_policy_is_stored_under_its_place(metadata: dict[str, str], key: str) -> None:
    stored = placed(policy(**metadata), HOME)
    assert stored.key == key
    assert placed(stored, HOME) == stored, "placing twice changes nothing"
    document = stored.model_dump_json(exclude_none=True)
    assert ('"account"' in document) is (key != "SVC#prod#web"), "the hub's own place is stored as no place"


def test_a_task_policy_has_a_place_too() -> None:
    task = TaskPolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "TaskPolicy",
                                      "metadata": {"cluster": "batch", "family": "etl", "account": "111111111111"},
                                      "spec": {}})
    assert placed(task, HOME).key == "TASK#111111111111#us-east-1#batch#etl"


@pytest.mark.parametrize(("metadata", "reason"), [
    ({"account": 123456789012}, "must be a string"),  # YAML would drop an account id's leading zeros
    ({"account": "12345"}, 'must be a 12-digit AWS account id in quotes, such as "123456789012"'),
    ({"region": "Europe"}, 'must be an AWS region such as "eu-west-1"'),
])
def test_a_place_must_be_a_real_account_and_region(metadata: dict[str, Any], reason: str) -> None:
    document = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                "metadata": {"cluster": "prod", "service": "web", **metadata}, "spec": {}}
    found, errors = check_document(document)
    assert found is None and len(errors) == 1 and errors[0].reason.startswith(reason), errors


def test_audit_entries_say_where() -> None:
    entry = AuditEntry(at=datetime(2026, 11, 26, tzinfo=UTC), target="SVC#111111111111#eu-west-1#prod#web",
                       event_id="e", source="scaler", trigger="t", outcome="scale-out", reason="r")
    assert entry.cluster_service == ("prod", "web") and entry.target_place == MEMBER
    foreign = entry.model_copy(update={"target": "-", "place": "999999999999/us-east-1"})
    assert foreign.cluster_service == ("-", "-") and foreign.target_place == Place("999999999999", "us-east-1")
    assert target_of("SVC#111111111111#eu-west-1#prod#web") == "prod/web @ 111111111111/eu-west-1"
    assert target_of("TASK#111111111111#eu-west-1#batch#etl") == "batch/etl (task) @ 111111111111/eu-west-1"
    assert target_of("SVC#prod#web") == "prod/web"


# ------------------------------------------------------------------------------------------- events
def test_every_event_carries_its_place() -> None:
    alarm = parse_alarm_event(in_account(sample("scaler-alarm-high.json"), "111111111111", "eu-west-1"))
    assert (alarm.account, alarm.region) == ("111111111111", "eu-west-1")
    direct = published("cloudwatch-alarm-lambda-action-payload-metric-alarm.json")
    parsed = parse_alarm_event(direct)
    assert (parsed.account, parsed.region) == (direct["accountId"], direct["region"])
    no_fields = {k: v for k, v in direct.items() if k not in ("accountId", "region")}
    from_arn = parse_alarm_event(no_fields)  # the alarm's ARN says it too
    assert (from_arn.account, from_arn.region) == tuple(direct["alarmArn"].split(":")[4:2:-1])
    task = parse_healer_event(variant(sample("healer-crash.json"), account="111111111111", region="eu-west-1"))
    assert (task.account, task.region) == ("111111111111", "eu-west-1")
    action = parse_healer_event(published("ecs-service-action-service-task-placement-failure-fargate-spot.json"))
    assert action.account and action.region
    deployment = parse_deployment_event(sample("rollout-completed.json"))
    assert (deployment.account, deployment.region) == ("123456789012", "us-east-1")


@pytest.mark.parametrize(("event", "scope"), [
    ({"account": "123456789012", "region": "us-east-1"}, ""),
    ({"account": "111111111111", "region": "eu-west-1"}, "#111111111111#eu-west-1"),
    ({"accountId": "111111111111", "region": "us-east-1"}, "#111111111111#us-east-1"),
    ({"detail": {}}, ""),
    ("not a dict", ""),
])
def test_idempotency_records_are_per_place_and_the_hubs_own_keep_theirs(event: Any, scope: str) -> None:
    assert idempotency_scope(event, HOME) == scope
    assert idempotency_scope(event, None) == ""


# ------------------------------------------------------------------------------------------- CloudFormation
def _documents() -> list[dict[str, Any]]:
    found = []
    for name in ("policies.yaml", "organisation.yaml"):
        found += [d for d in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if d]
    return found


@pytest.mark.parametrize("document", _documents(), ids=lambda d: f"{d['metadata']['cluster']}/"
                         f"{d['metadata'].get('service') or d['metadata'].get('family')}")
def test_a_policy_survives_cloudformations_strings(document: dict[str, Any]) -> None:
    """Every number and boolean of a policy turned to a string, as CloudFormation does, types back to the same."""
    original, errors = check_document(document)
    assert original is not None, errors
    strings = stringly(copy.deepcopy(document))
    assert strings != document
    again, errors = check_document(typed(strings))
    assert errors == [] and again == original


@pytest.mark.parametrize(("field", "value", "expected"), [
    (("spec", "scaling", "minTasks"), "2", 2),
    (("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "-1", -1),
    (("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "30%", "30%"),
    (("spec", "scaling", "rules", 0, "steps", 0, "lowerBound"), "0.5", 0.5),
    (("spec", "rollout", "rollbackOnDeploymentFailure"), "false", False),
    (("spec", "rollout", "rollbackAlarms", 0), "123", "123"),  # an alarm name stays a string
    (("metadata", "account"), "012345678901", "012345678901"),  # an account id stays a string, zeros and all
    (("spec", "scaling", "minTasks"), "two", "two"),  # what does not read as its type is left to the check
    (("spec", "scaling", "minTasks"), "2.5", "2.5"),
    (("spec", "scaling", "rules", 0, "steps", 0, "lowerBound"), "nan", "nan"),
])
def test_strings_are_typed_by_what_the_field_is(field: tuple[Any, ...], value: str, expected: Any) -> None:
    document = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                "metadata": {"cluster": "prod", "service": "web", "account": "111111111111"},
                "spec": {"scaling": {"minTasks": "1", "maxTasks": "5",
                                     "rules": [{"alarm": "a", "steps": [{"lowerBound": "0", "adjustment": "1"}]}]},
                         "rollout": {"rollbackAlarms": ["b"]}}}
    node: Any = document
    for part in field[:-1]:
        node = node[part]
    node[field[-1]] = value
    node = typed(document)
    for part in field:
        node = node[part]
    assert node == expected and type(node) is type(expected)


def test_a_target_tracking_metric_is_an_alarm_name_or_a_mapping() -> None:
    rule = {"targetTracking": {"metric": {"namespace": "AWS/ECS", "name": "CPU", "period": "60",
                                          "dimensions": {"ServiceName": "100"}}, "targetValue": "50"}}
    typed_rule = typed({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                        "metadata": {"cluster": "p", "service": "s"},
                        "spec": {"scaling": {"minTasks": "1", "maxTasks": "2", "rules": [rule]}}})
    tracked = typed_rule["spec"]["scaling"]["rules"][0]["targetTracking"]
    assert tracked["metric"] == {"namespace": "AWS/ECS", "name": "CPU", "period": 60,
                                 "dimensions": {"ServiceName": "100"}}  # a dimension value stays a string
    assert tracked["targetValue"] == 50


def test_the_reason_fits_a_cloudformation_status() -> None:
    errors = [DocumentError(f"spec.scaling.rules[{i}].alarm", "required field is missing") for i in range(20)]
    text = summary(errors, 240)
    assert len(text) <= 240 and text.startswith("spec.scaling.rules[0].alarm: required field is missing; ")
    assert text.endswith("more: autopilot validate lists them all)")
    assert summary(errors[:1]) == "spec.scaling.rules[0].alarm: required field is missing"
    assert len(summary([DocumentError("x", "y" * 1000)], 100)) <= 100
