"""Hub and members (issue 13): templates/member-account.yaml and the hub's side of template.yaml.

- The member stack lints clean; its forwarding rules' patterns, and the hub bus rules' patterns, run through
  moto's EventBridge pattern engine with the project's event samples (moto decides, not a matcher here).
- The member role: trusted by the hub's function roles only (their path), with the external id and the
  organisation when given; allowed exactly the ECS, CloudWatch and IAM actions the hub's functions hold,
  scoped to its own account, region and managed clusters.
- The hub: the bus policy admits the listed accounts or the organisation; the functions may assume the member
  roles there and nowhere else; a deployment without members has none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autopilot_tools.localstack import load_template
from tests.conftest import sample, variant
from tests.template.iam_policies import (
    ACCOUNT,
    MEMBER_TEMPLATE,
    FunctionPolicy,
    MemberRole,
    ResolvingStack,
    action_matches,
    allows,
    expand,
    unconditioned_pass_role,
    unscoped,
)

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "111111111111"
HUB_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/ecs-autopilot-hub"
PARAMETERS = {"HubAccountId": ACCOUNT, "HubStackName": "ecs-autopilot", "HubEventBusArn": HUB_BUS,
              "ManagedClusters": "prod,batch"}
HUB_WITH_MEMBERS = {"ManagedClusters": "prod,batch", "MemberAccounts": f"{MEMBER},222222222222"}
HUB_WITH_ORGANIZATION = {"ManagedClusters": "prod,batch", "OrganizationId": "o-a1b2c3d4e5"}
HUB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecs-autopilot/ecs-autopilot/ecs-autopilot-ScalerFunctionRole-AbC123"
FUNCTIONS = ("ScalerFunction", "HealerFunction", "RolloutFunction", "RestarterFunction", "ReconcilerFunction")


def member_stack(account: str, region: str, parameters: dict[str, str] | None = None) -> tuple[dict[str, Any],
                                                                                               ResolvingStack]:
    source = load_template(MEMBER_TEMPLATE)
    return source, ResolvingStack.for_template(source["Resources"], {**PARAMETERS, **(parameters or {})},
                                               source["Parameters"], source["Conditions"],
                                               pseudo={"AWS::AccountId": account, "AWS::Region": region})


def hub_stack(parameters: dict[str, str]) -> tuple[dict[str, Any], ResolvingStack]:
    source = load_template()
    return source, ResolvingStack.for_template(source["Resources"], parameters, source["Parameters"],
                                               source["Conditions"])


# ------------------------------------------------------------------------------------ the member stack
def test_the_member_template_lints_clean() -> None:
    from cfnlint.api import lint_file

    assert [str(m) for m in lint_file(MEMBER_TEMPLATE)] == []


def test_nothing_is_forwarded_from_the_hubs_own_account_and_region() -> None:
    """The hub's default-bus rules see those events already: forwarding them too would deliver twice."""
    source, _ = member_stack(ACCOUNT, "us-east-1")
    forwarding = {k for k, r in source["Resources"].items() if r.get("Condition") == "Forwards"}
    assert {"TaskStoppedRule", "PlacementFailureRule", "DeploymentStateChangeRule", "AlarmStateChangeRule",
            "ForwardingRole"} <= forwarding
    assert "Condition" not in source["Resources"]["ExecutionRole"], "the role exists wherever the stack is"
    for account, region, forwards in ((ACCOUNT, "us-east-1", False), (ACCOUNT, "eu-west-1", True),
                                      (MEMBER, "us-east-1", True)):
        _, stack = member_stack(account, region)
        assert stack.condition("Forwards") is forwards, (account, region)


def _rule_patterns(resources: dict[str, Any], stack: ResolvingStack) -> dict[str, dict[str, Any]]:
    out = {}
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Events::Rule":
            value = stack.resolve_all(resource["Properties"]["EventPattern"])
            out[logical] = json.loads(value) if isinstance(value, str) else value
    return out


class Bus:
    """moto's EventBridge with the given rules, one SQS queue per rule as target (as in test_event_routing)."""

    def __init__(self, patterns: dict[str, dict[str, Any]], bus: str = "default") -> None:
        self.events = boto3.client("events", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.bus = bus
        if bus != "default":
            self.events.create_event_bus(Name=bus)
        self.queues: dict[str, str] = {}
        for rule, pattern in patterns.items():
            url = self.sqs.create_queue(QueueName=f"{bus}-{rule}")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.queues[rule] = url
            self.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
            self.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def deliver(self, event: dict[str, Any]) -> set[str]:
        result = self.events.put_events(Entries=[{
            "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": list(event.get("resources") or []), "EventBusName": self.bus}])
        assert result["FailedEntryCount"] == 0, result
        reached = set()
        for rule, url in self.queues.items():
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if messages:
                reached.add(rule)
        return reached


# moto puts every event in its own default account and region: the member stack's patterns are resolved as
# deployed there (the Forwards condition is about the hub's place, here another account).
EXPECTED_FORWARDING = {
    "healer-crash.json": {"TaskStoppedRule"},
    "healer-oom.json": {"TaskStoppedRule"},
    "healer-placement-failure-spot.json": {"PlacementFailureRule"},
    "rollout-failed-circuit-breaker.json": {"DeploymentStateChangeRule"},
    "rollout-completed.json": {"DeploymentStateChangeRule"},
    "scaler-alarm-high.json": {"AlarmStateChangeRule"},
    "scaler-ok.json": {"AlarmStateChangeRule"},
}


@pytest.fixture(scope="module")
def member_bus() -> Iterator[Bus]:
    source, stack = member_stack(ACCOUNT, "us-east-1", {"HubAccountId": "444455556666"})
    with mock_aws():
        yield Bus(_rule_patterns(source["Resources"], stack))


@pytest.mark.parametrize("name", sorted(EXPECTED_FORWARDING))
def test_the_member_forwards_what_the_hub_acts_on(member_bus: Bus, name: str) -> None:
    assert member_bus.deliver(sample(name)) == EXPECTED_FORWARDING[name]


def test_the_member_forwards_nothing_else(member_bus: Bus) -> None:
    crash = sample("healer-crash.json")
    other_cluster = variant(crash, **{"detail.clusterArn": crash["detail"]["clusterArn"].replace("/prod", "/other")})
    running = variant(crash, **{"detail.lastStatus": "RUNNING"})
    steady = variant(sample("healer-placement-failure-spot.json"), **{"detail.eventName": "SERVICE_STEADY_STATE"})
    deployment = sample("rollout-completed.json")
    elsewhere = variant(deployment, **{"resources": [deployment["resources"][0].replace("/prod/", "/other/")]})
    for event in (other_cluster, running, steady, elsewhere):
        assert member_bus.deliver(event) == set()


def test_the_member_patterns_name_their_own_account_and_region() -> None:
    source, stack = member_stack(MEMBER, "eu-west-1")
    for rule, pattern in _rule_patterns(source["Resources"], stack).items():
        assert pattern["account"] == [MEMBER] and pattern["region"] == ["eu-west-1"], rule
    targets = [r["Properties"]["Targets"] for r in source["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    for (target,) in targets:
        assert stack.resolve_all(target["Arn"]) == HUB_BUS
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardingRole", "Arn"]}, "cross-account buses need a role"
        assert target["DeadLetterConfig"] and target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_the_forwarding_role_may_only_put_events_on_the_hub_bus() -> None:
    source, stack = member_stack(MEMBER, "eu-west-1")
    role = source["Resources"]["ForwardingRole"]["Properties"]
    (statement,) = stack.resolve_all(role["Policies"][0]["PolicyDocument"]["Statement"])
    assert statement == {"Effect": "Allow", "Action": "events:PutEvents", "Resource": HUB_BUS}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}


# ------------------------------------------------------------------------------------ the member role
@pytest.mark.parametrize(("principal", "trusted"), [
    (HUB_ROLE, True),
    (f"arn:aws:iam::{ACCOUNT}:role/ecs-autopilot/ecs-autopilot/ecs-autopilot-HealerFunctionRole-Xy9", True),
    (f"arn:aws:iam::{ACCOUNT}:role/Admin", False),  # the hub account, not a function role of the hub
    (f"arn:aws:iam::{ACCOUNT}:role/ecs-autopilot/staging/staging-ScalerFunctionRole-AbC", False),  # another hub
    ("arn:aws:iam::444455556666:role/ecs-autopilot/ecs-autopilot/ecs-autopilot-ScalerFunctionRole-AbC", False),
])
def test_the_member_role_trusts_only_the_hubs_function_roles(principal: str, trusted: bool) -> None:
    role = MemberRole.at(MEMBER, "eu-west-1", PARAMETERS)
    (statement,) = role.trust
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert allows(role.trust, "sts:AssumeRole", None, {"aws:PrincipalArn": principal}) is trusted


def test_the_external_id_and_the_organisation_are_required_when_given() -> None:
    plain = MemberRole.at(MEMBER, "eu-west-1", PARAMETERS)
    assert set(plain.trust[0]["Condition"]) == {"ArnLike"}
    strict = MemberRole.at(MEMBER, "eu-west-1", {**PARAMETERS, "ExternalId": "hub-7f3a",
                                                 "OrganizationId": "o-a1b2c3d4e5"})
    context = {"aws:PrincipalArn": HUB_ROLE, "sts:ExternalId": "hub-7f3a", "aws:PrincipalOrgID": "o-a1b2c3d4e5"}
    assert allows(strict.trust, "sts:AssumeRole", None, context)
    for missing in ("sts:ExternalId", "aws:PrincipalOrgID"):
        assert not allows(strict.trust, "sts:AssumeRole", None, {k: v for k, v in context.items() if k != missing})
    assert not allows(strict.trust, "sts:AssumeRole", None, {**context, "sts:ExternalId": "guess"})


def test_the_member_role_is_one_per_region_named_as_the_hub_assumes_it() -> None:
    from autopilot.models.place import Place, Registration

    for region in ("us-east-1", "eu-west-1"):
        role = MemberRole.at(MEMBER, region, PARAMETERS)
        assert Registration().role_arn(Place(MEMBER, region)) == f"arn:aws:iam::{MEMBER}:role/{role.name}"


@pytest.mark.parametrize(("action", "resource", "context", "allowed"), [
    ("ecs:UpdateService", f"arn:aws:ecs:eu-west-1:{MEMBER}:service/prod/web", {}, True),
    ("ecs:DescribeServices", f"arn:aws:ecs:eu-west-1:{MEMBER}:service/batch/etl", {}, True),
    ("ecs:UpdateService", f"arn:aws:ecs:eu-west-1:{MEMBER}:service/payments/web", {}, False),  # unmanaged cluster
    ("ecs:UpdateService", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/prod/web", {}, False),  # another account
    ("ecs:UpdateService", f"arn:aws:ecs:us-east-1:{MEMBER}:service/prod/web", {"aws:RequestedRegion": "us-east-1"},
     False),  # another region: that region's role
    ("ecs:RunTask", f"arn:aws:ecs:eu-west-1:{MEMBER}:task-definition/etl:3",
     {"ecs:cluster": f"arn:aws:ecs:eu-west-1:{MEMBER}:cluster/batch"}, True),
    ("ecs:RunTask", f"arn:aws:ecs:eu-west-1:{MEMBER}:task-definition/etl:3",
     {"ecs:cluster": f"arn:aws:ecs:eu-west-1:{MEMBER}:cluster/payments"}, False),
    ("ecs:RegisterTaskDefinition", "*", {}, True),
    ("iam:PassRole", f"arn:aws:iam::{MEMBER}:role/web-task", {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
     False),  # PassRoleArns empty: none
    ("dynamodb:PutItem", f"arn:aws:dynamodb:eu-west-1:{MEMBER}:table/anything", {}, False),
    ("ecs:DeleteService", f"arn:aws:ecs:eu-west-1:{MEMBER}:service/prod/web", {}, False),
])
def test_what_the_member_role_may_do(action: str, resource: str, context: dict[str, str], allowed: bool) -> None:
    role = MemberRole.at(MEMBER, "eu-west-1", PARAMETERS)
    assert allows(role.statements, action, resource, {"aws:RequestedRegion": "eu-west-1", **context}) is allowed


def test_the_member_role_holds_exactly_the_hubs_ecs_cloudwatch_and_iam_actions() -> None:
    """What the functions do in their own account, they may do in a member's: no more, no less."""
    def actions(statements: list[dict[str, Any]]) -> set[str]:
        found = set()
        for statement in statements:
            listed = statement.get("Action", [])
            for action in listed if isinstance(listed, list) else [listed]:
                if action.split(":")[0] in ("ecs", "cloudwatch", "iam"):
                    found.add(action.lower())
        return found

    hub_parameters = {"ManagedClusters": "prod,batch", "PassRoleArns": f"arn:aws:iam::{ACCOUNT}:role/*"}
    hub = set().union(*(actions(FunctionPolicy.for_function(f, hub_parameters).own_statements) for f in FUNCTIONS))
    member = MemberRole.at(MEMBER, "eu-west-1", {**PARAMETERS, "PassRoleArns": f"arn:aws:iam::{MEMBER}:role/*"})
    assert actions(member.statements) == hub
    assert unscoped(member.statements) == [] and unconditioned_pass_role(member.statements) == []


# ------------------------------------------------------------------------------------ the hub's side
def test_a_deployment_without_members_has_none_of_it() -> None:
    source, stack = hub_stack({"ManagedClusters": "prod,batch"})
    conditional = {k for k, r in source["Resources"].items() if r.get("Condition") in ("HasMembers",
                                                                                        "HasMemberAccounts",
                                                                                        "HasOrganization")}
    assert {"HubEventBus", "MemberRegistry", "MemberAccessPolicy", "HubEventBusMembersPolicy",
            "HubTaskStoppedRule"} <= conditional
    assert not stack.condition("HasMembers")
    for function in FUNCTIONS:
        policy = FunctionPolicy.for_function(function, {"ManagedClusters": "prod,batch"})
        assert not [s for s in policy.statements if any(action_matches(str(a), "sts:AssumeRole")
                                                        for a in _listed(s.get("Action")))], function
    parameters = source["Parameters"]
    new = ("MemberAccounts", "MemberRegions", "OrganizationId", "MemberRoleName", "MemberExternalId")
    assert all("Default" in parameters[p] for p in new), "single-account use needs no new parameter"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("parameters", "role", "allowed"), [
    (HUB_WITH_MEMBERS, f"arn:aws:iam::{MEMBER}:role/ecs-autopilot-member-eu-west-1", True),
    (HUB_WITH_MEMBERS, "arn:aws:iam::222222222222:role/ecs-autopilot-member-us-east-1", True),
    (HUB_WITH_MEMBERS, "arn:aws:iam::999999999999:role/ecs-autopilot-member-us-east-1", False),  # not listed
    (HUB_WITH_MEMBERS, f"arn:aws:iam::{MEMBER}:role/Admin", False),  # not the member role
    (HUB_WITH_ORGANIZATION, "arn:aws:iam::999999999999:role/ecs-autopilot-member-us-east-1", True),
])
def test_the_functions_may_assume_the_member_roles_and_no_other(parameters: dict[str, str], role: str,
                                                                 allowed: bool) -> None:
    context = {"aws:ResourceOrgID": "o-a1b2c3d4e5"} if parameters is HUB_WITH_ORGANIZATION else {}
    for function in FUNCTIONS:
        policy = FunctionPolicy.for_function(function, parameters)
        assert allows(policy.statements, "sts:AssumeRole", role, context) is allowed, function
    outside = FunctionPolicy.for_function("ScalerFunction", HUB_WITH_ORGANIZATION)
    assert not allows(outside.statements, "sts:AssumeRole", role, {"aws:ResourceOrgID": "o-other0000"})
    resource = FunctionPolicy.for_function("PolicyResourceFunction", parameters)
    assert not allows(resource.statements, "sts:AssumeRole", role, context), "it never acts in a member place"


def test_the_member_trust_pattern_matches_the_hubs_role_path() -> None:
    resources = expand()["resources"]
    source, stack = hub_stack(HUB_WITH_MEMBERS)
    for function in FUNCTIONS:
        path = stack.resolve(resources[f"{function}Role"]["Properties"]["Path"])
        assert path == "/ecs-autopilot/*/", function  # the stack name, as ResolvingStack names it
    assert source["Outputs"]["HubRolePath"]["Value"] == {"Fn::Sub": "/ecs-autopilot/${AWS::StackName}/"}


def test_the_bus_policy_admits_the_listed_accounts_or_the_organisation() -> None:
    source, members = hub_stack(HUB_WITH_MEMBERS)
    listed = members.resolve_all(source["Resources"]["HubEventBusMembersPolicy"]["Properties"])
    assert listed["Statement"]["Principal"] == {"AWS": [MEMBER, "222222222222"]}
    assert listed["Statement"]["Action"] == "events:PutEvents"
    assert members.condition("HasMemberAccounts") and not members.condition("HasOrganization")
    source, organisation = hub_stack(HUB_WITH_ORGANIZATION)
    org = organisation.resolve_all(source["Resources"]["HubEventBusOrganizationPolicy"]["Properties"])
    assert org["Statement"]["Principal"] == "*"
    assert org["Statement"]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert organisation.condition("HasOrganization") and not organisation.condition("HasMemberAccounts")


EXPECTED_HUB_ROUTES = {
    "healer-crash.json": {"HubTaskStoppedRule"},
    "healer-placement-failure-spot.json": {"HubPlacementFailureRule"},
    "rollout-failed-circuit-breaker.json": {"HubDeploymentStateChangeRule"},
    "scaler-alarm-high.json": {"HubAlarmStateChangeRule"},
}


@pytest.fixture(scope="module")
def hub_bus() -> Iterator[Bus]:
    source, stack = hub_stack(HUB_WITH_MEMBERS)
    patterns = {k: v for k, v in _rule_patterns(source["Resources"], stack).items() if k.startswith("Hub")}
    with mock_aws():
        yield Bus(patterns, bus="ecs-autopilot-hub")


@pytest.mark.parametrize("name", sorted(EXPECTED_HUB_ROUTES))
def test_the_hub_bus_routes_each_kind_to_its_function(hub_bus: Bus, name: str) -> None:
    assert hub_bus.deliver(sample(name)) == EXPECTED_HUB_ROUTES[name]


def test_the_hub_bus_rules_invoke_the_functions_aliases_with_retries_and_dead_letters() -> None:
    source = load_template()
    targets = {"HubAlarmStateChangeRule": "ScalerFunction", "HubTaskStoppedRule": "HealerFunction",
               "HubPlacementFailureRule": "HealerFunction", "HubDeploymentStateChangeRule": "RolloutFunction"}
    for rule, function in targets.items():
        (target,) = source["Resources"][rule]["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": f"{function}.Alias"}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185
        permission = source["Resources"][rule.replace("Rule", "Permission")]["Properties"]
        assert permission["FunctionName"] == {"Ref": f"{function}.Alias"}
        assert permission["SourceArn"] == {"Fn::GetAtt": [rule, "Arn"]}
