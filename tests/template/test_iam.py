"""Least privilege: each function's IAM policy (as SAM expands it) against what the function really calls.

Two kinds of checks:

- Static (any run): no scopable action on Resource "*", no wildcard actions, iam:PassRole only with an
  iam:PassedToService condition; checked for the default parameters and with PassRoleArns set (so the
  conditional PassRole statement is present).
- Coverage (marker ``iam_coverage``): every AWS call a function made during the integration tests
  (recorded by tests/aws_calls.py) is allowed by that function's policy. Those calls only exist once the
  integration tests ran, so this check runs *after* them: in a plain ``pytest`` run the recorder plugin
  moves it to the end of the session and it uses the session's records; under pytest-xdist each worker
  sees only its own share of records, so workers deselect it and ``make test`` runs it as a second,
  serial pytest invocation (``pytest -m iam_coverage``) that reads ``build/aws-calls.json`` written by
  the first. A function no integration test invoked is reported as xfail (its IAM is unverified).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autopilot_tools.localstack import load_template
from tests.aws_calls import calls_file, load_summary
from tests.template.iam_policies import (
    ACCOUNT,
    TEMPLATE,
    FunctionPolicy,
    MemberRole,
    action_matches,
    allows,
    expand,
    unconditioned_pass_role,
    unscoped,
)

pytestmark = pytest.mark.template

FUNCTIONS = sorted(logical for logical, r in load_template()["Resources"].items()
                   if r["Type"] == "AWS::Serverless::Function")
# The parameters the test stacks are "deployed" with (tests/conftest.py's stack fixture: prod,batch);
# PassRoleArns as an operator would set it for task roles in this account; the member accounts of
# tests/integration/test_members.py (the third one there is admitted by a policy only, through the organisation).
TEST_PARAMETERS = {"ManagedClusters": "prod,batch", "PassRoleArns": f"arn:aws:iam::{ACCOUNT}:role/*",
                   "MemberAccounts": "111111111111,222222222222", "OrganizationId": "o-exampleorgid"}
# The member stack as those accounts deploy it (templates/member-account.yaml).
MEMBER_PARAMETERS = {"HubAccountId": ACCOUNT, "HubStackName": "ecs-autopilot", "ManagedClusters": "prod,batch",
                     "HubEventBusArn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/ecs-autopilot-hub",
                     "PassRoleArns": "arn:aws:iam::*:role/*"}
PARAMETER_SETS = {
    "defaults": {"ManagedClusters": "prod,batch"},
    "pass-roles": {"ManagedClusters": "prod,batch", "PassRoleArns": f"arn:aws:iam::{ACCOUNT}:role/app-*"},
    "members": {"ManagedClusters": "prod,batch", "MemberAccounts": "111111111111", "OrganizationId": "o-a1b2c3d4e5"},
}


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand()


def test_translator_sees_every_function(expanded: dict[str, Any]) -> None:
    assert sorted(expanded["functions"]) == FUNCTIONS
    for function, spec in expanded["functions"].items():
        assert spec["role"] == f"{function}Role", "each function gets its own role (no shared Role property)"
        assert spec["assume_role_policy"]["Statement"][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_unscoped_or_wildcard_grants(expanded: dict[str, Any], function: str, params: dict[str, str]) -> None:
    policy = FunctionPolicy.for_function(function, params)
    assert policy.unknown_managed == [], "managed policies this check cannot see into"
    assert unscoped(policy.own_statements) == []


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
@pytest.mark.parametrize("function", FUNCTIONS)
def test_pass_role_is_conditioned(expanded: dict[str, Any], function: str, params: dict[str, str]) -> None:
    policy = FunctionPolicy.for_function(function, params)
    assert unconditioned_pass_role(policy.statements) == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_update_service_only_on_managed_clusters(expanded: dict[str, Any], function: str) -> None:
    policy = FunctionPolicy.for_function(function, PARAMETER_SETS["defaults"])
    inside = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web"
    outside = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/other/web"
    if allows(policy.statements, "ecs:UpdateService", inside, {}):
        assert not allows(policy.statements, "ecs:UpdateService", outside, {}), \
            f"{function} may update services of clusters outside ManagedClusters"


SQS_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage")
SQS_QUEUE_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_may_consume_queues_that_are_not_its_own(expanded: dict[str, Any], function: str) -> None:
    """Not even through an AWS managed policy (SAM's SQS event attaches one allowing both on every queue)."""
    assert SQS_QUEUE_EXECUTION_ROLE not in expanded["functions"][function]["managed_policy_arns"]
    policy = FunctionPolicy.for_function(function, PARAMETER_SETS["defaults"])
    for statement in policy.statements:
        actions = [str(a) for a in (statement.get("Action") or [])] if isinstance(statement.get("Action"), list) \
            else [str(statement.get("Action"))]
        if statement.get("Effect") == "Allow" and any(action_matches(a, c) for a in actions for c in SQS_CONSUME):
            resources = statement.get("Resource")
            assert "*" not in (resources if isinstance(resources, list) else [resources]), statement
    someone_elses = f"arn:aws:sqs:us-east-1:{ACCOUNT}:someone-elses-queue"
    assert not [a for a in SQS_CONSUME if allows(policy.statements, a, someone_elses, {})]


def test_the_restarter_may_poll_its_queue() -> None:
    """What the event source mapping does with the function's role: receive, delete, read attributes, extend."""
    policy = FunctionPolicy.for_function("RestarterFunction", PARAMETER_SETS["defaults"])
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ecs-autopilot-RestartQueue"
    for action in (*SQS_CONSUME, "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"):
        assert allows(policy.statements, action, queue, {}), action
    dead_letters = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ecs-autopilot-DeadLetterQueue"
    assert not [a for a in SQS_CONSUME if allows(policy.statements, a, dead_letters, {})]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_may_write_its_own_log_group(function: str) -> None:
    """LoggingConfig names a group of the stack's own: the role must allow writing there (today through
    AWSLambdaBasicExecutionRole, whose Resource is "*"; a custom role would have to grant it)."""
    source = load_template()
    group = source["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    name = source["Resources"][group]["Properties"]["LogGroupName"]["Fn::Sub"].replace("${AWS::StackName}",
                                                                                       "ecs-autopilot")
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}"
    policy = FunctionPolicy.for_function(function, PARAMETER_SETS["defaults"])
    assert allows(policy.statements, "logs:CreateLogStream", f"{arn}:log-stream:", {})
    assert allows(policy.statements, "logs:PutLogEvents", f"{arn}:log-stream:2026/11/26/[$LATEST]abc", {})


# ------------------------------------------------------------------------------------ the checker itself
STATEMENTS: list[dict[str, Any]] = [
    {"Effect": "Allow", "Action": ["ecs:UpdateService"], "Resource": ["arn:*:ecs:*:*:service/prod/*"]},
    {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "arn:aws:dynamodb:us-east-1:1:table/*-StateTable"},
    {"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition", "Resource": "*"},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/app-*",
     "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    {"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "arn:*:ecs:*:*:service/prod/frozen"},
]


@pytest.mark.parametrize(("action", "resource", "context", "expected"), [
    ("ecs:UpdateService", "arn:aws:ecs:us-east-1:1:service/prod/web", {}, True),
    ("ECS:updateservice", "arn:aws:ecs:us-east-1:1:service/prod/web", {}, True),  # actions are case-insensitive
    ("ecs:UpdateService", "arn:aws:ecs:us-east-1:1:service/other/web", {}, False),
    ("ecs:UpdateService", "arn:aws:ecs:us-east-1:1:service/prod/frozen", {}, False),  # explicit deny wins
    ("ecs:DescribeServices", "arn:aws:ecs:us-east-1:1:service/prod/web", {}, False),
    ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/x-StateTable", {}, True),
    ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/Other", {}, False),
    ("ecs:RegisterTaskDefinition", "*", {}, True),
    ("iam:PassRole", "arn:aws:iam::1:role/app-web", {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True),
    ("iam:PassRole", "arn:aws:iam::1:role/app-web", {"iam:PassedToService": "lambda.amazonaws.com"}, False),
    ("iam:PassRole", "arn:aws:iam::1:role/app-web", {}, False),  # condition key absent: not allowed
    ("iam:PassRole", "arn:aws:iam::1:role/admin", {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, False),
])
def test_evaluator(action: str, resource: str, context: dict[str, str], expected: bool) -> None:
    assert allows(STATEMENTS, action, resource, context) is expected


def test_scoping_check_flags_what_it_should() -> None:
    assert unscoped([{"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "*"}])
    assert unscoped([{"Effect": "Allow", "Action": "sqs:SendMessage*", "Resource": "*"}])
    assert unscoped([{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/t"}])
    assert unscoped([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}])
    assert not unscoped([{"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition", "Resource": "*"}])
    assert not unscoped([{"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "arn:*:ecs:*:*:service/p/*"}])
    assert unconditioned_pass_role([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/r"}])
    assert unconditioned_pass_role([{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}])


# ------------------------------------------------------------------------------------ coverage
@pytest.mark.iam_coverage
@pytest.mark.parametrize("function", FUNCTIONS)
def test_recorded_calls_are_allowed(function: str) -> None:
    summary = load_summary()
    if summary is None:
        pytest.fail(f"no recorded AWS calls: run the integration tests first in this session, "
                    f"or `make test` (which writes {calls_file()})")
    rows = summary.get(function, [])
    if not rows:
        pytest.xfail(f"no integration test invoked {function}'s handler: its IAM policy is unverified")
    policy = FunctionPolicy.for_function(function, TEST_PARAMETERS)
    denied = [
        f"{row['action']} on {row['resource'] or '(any resource)'} {row['context'] or ''} "
        f"(from {', '.join(row['operations'])}; e.g. {row['tests'][:1]})"
        + (f" as {row['principal']}" if row.get("principal") else "")
        for row in rows
        if not allows(_statements(policy, row), row["action"], row["resource"], _context(row))
    ]
    assert denied == [], f"{function}'s IAM policy does not allow calls it makes:\n  " + "\n  ".join(denied)


def _context(row: dict[str, Any]) -> dict[str, str]:
    """A recorded call's condition keys, and what IAM knows besides: a role outside MemberAccounts that the
    functions assumed (a place only a policy names, tests/integration/test_members.py) is in the organisation of
    TEST_PARAMETERS, the only way a hub may reach it."""
    context = dict(row["context"])
    if row["action"] == "sts:AssumeRole" and row["resource"]:
        account = str(row["resource"]).split(":")[4]
        if account not in TEST_PARAMETERS["MemberAccounts"].split(","):
            context["aws:ResourceOrgID"] = TEST_PARAMETERS["OrganizationId"]
    return context


def _statements(policy: FunctionPolicy, row: dict[str, Any]) -> list[dict[str, Any]]:
    """What authorises a recorded call: the function's own role, or the member role it assumed (a call made in a
    member's account and region, checked against templates/member-account.yaml as deployed there)."""
    principal = row.get("principal")
    if not principal:
        return policy.statements
    account, region = principal.split(":")[4], row["context"]["aws:RequestedRegion"]
    member = MemberRole.at(account, region, MEMBER_PARAMETERS)
    assert principal == f"arn:aws:iam::{account}:role/{member.name}", (principal, member.name)
    return member.statements


def test_a_permission_missing_from_the_template_is_caught(tmp_path: Path) -> None:
    """End to end through the SAM translator: drop the SNS policy template, publishing is denied."""
    publish: tuple[str, str, dict[str, str]] = (
        "sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:autopilot-local-NotificationTopic", {})
    assert allows(FunctionPolicy.for_function("ScalerFunction", TEST_PARAMETERS).statements, *publish)
    source = TEMPLATE.read_text()
    line = "        - SNSPublishMessagePolicy: {TopicName: !GetAtt NotificationTopic.TopicName}\n"
    assert line in source
    broken = tmp_path / "template.yaml"
    broken.write_text(source.replace(line, ""))
    policy = FunctionPolicy.for_function("ScalerFunction", TEST_PARAMETERS, template=broken)
    assert not allows(policy.statements, *publish)
