"""Each function's IAM policy as deployed: SAM policy templates expanded by the SAM translator, intrinsics
resolved for given parameter values, and a small IAM evaluator to check recorded calls against it.

- ``expand()`` runs ``sam_expand.py`` under .venv-sam's Python (the translator pins pydantic/boto3, so
  it lives there) and caches the output in ``build/iam/`` keyed by the template's and script's hash.
- ``FunctionPolicy.for_function()`` resolves the statements (inline policies, policies SAM generates
  for destinations, template-defined managed policies, the AWS managed policies SAM attaches) with
  ``ResolvingStack``: physical names follow ``autopilot_tools.localstack.create_stack``'s ``<stack>-<logical>``
  naming with the stack name as a wildcard, so they match whatever stack a test created.
- ``allows()`` evaluates one recorded call: explicit Deny wins, Allow needs action, resource and every
  condition to match. Condition keys we do not know for a call fail the condition (so the check can
  only be too strict, never too lenient), except ``...IfExists`` operators and negated operators, which
  IAM evaluates as true when the key is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from autopilot_tools.localstack import PSEUDO_PARAMETERS, LocalStack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
MEMBER_TEMPLATE = ROOT / "templates" / "member-account.yaml"
EXPAND_SCRIPT = Path(__file__).with_name("sam_expand.py")
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
REGION = PSEUDO_PARAMETERS["AWS::Region"]

# Mutating (or data-reading) actions AWS can scope to resources: Resource "*" on them is never least
# privilege. (ecs:RegisterTaskDefinition, cloudwatch:PutMetricData, ... support no resource scoping.)
SCOPABLE_ACTIONS = sorted({
    "ecs:UpdateService", "ecs:CreateService", "ecs:DeleteService", "ecs:RunTask", "ecs:StartTask", "ecs:StopTask",
    "ecs:TagResource", "ecs:UntagResource", "ecs:DescribeTasks",
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
    "dynamodb:DescribeTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable",
    "sns:Publish", "sqs:SendMessage", "sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue", "lambda:InvokeFunction", "iam:PassRole", "events:PutEvents", "cloudwatch:SetAlarmState",
    "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "logs:PutLogEvents", "logs:CreateLogStream",
    "sts:AssumeRole",
})

# The AWS managed policies SAM attaches on its own (content as published by AWS). They are trusted for
# what they grant but are not subject to the scoping check: the template cannot change them.
AWS_MANAGED: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"}],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                       "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"],
         "Resource": "*"}],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                       "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"}],
}

_NO_VALUE = object()


# ------------------------------------------------------------------------------------ expansion
def sam_python() -> Path:
    venv = Path(os.environ.get("AUTOPILOT_SAM_VENV") or ROOT / ".venv-sam")
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} not found: create the SAM virtualenv with `make sam-venv`")
    return python


def cache_dir() -> Path:
    return Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build") / "iam"


@cache
def expand(template: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM translator's output for ``template`` (cached by content hash in build/iam/)."""
    digest = hashlib.sha256(template.read_bytes() + EXPAND_SCRIPT.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"expanded-{digest}.json"
    if cached.exists():
        data: dict[str, Any] = json.loads(cached.read_text())
        return data
    done = subprocess.run([str(sam_python()), str(EXPAND_SCRIPT), str(template)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"SAM translator failed on {template}:\n{done.stderr[-4000:]}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # xdist workers may race: write then rename
    tmp.write_text(done.stdout)
    tmp.replace(cached)
    data = json.loads(done.stdout)
    return data


# ------------------------------------------------------------------------------------ resolution
@dataclass
class ResolvingStack(LocalStack):
    """LocalStack's resolver plus Conditions, Fn::If and AWS::NoValue, with wildcard physical names."""

    conditions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_template(cls, resources: dict[str, Any], parameters: dict[str, str],
                     template_parameters: dict[str, Any], conditions: dict[str, Any],
                     pseudo: dict[str, str] | None = None) -> ResolvingStack:
        params = {name: str(spec.get("Default", "")) for name, spec in template_parameters.items()}
        params.update(parameters)
        lists = frozenset(n for n, spec in template_parameters.items()
                          if str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<")))
        stack = cls(stack_name="*", parameters=params, list_parameters=lists, conditions=conditions,
                    pseudo=dict(pseudo or {}))
        for logical, resource in resources.items():
            name = f"*-{logical}"  # autopilot_tools.localstack.create_stack names resources <stack>-<logical>
            kind = resource.get("Type", "")
            stack.physical[logical] = name
            if kind == "AWS::DynamoDB::Table":
                stack.attributes[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            elif kind == "AWS::SNS::Topic":
                arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
                stack.physical[logical] = arn
                stack.attributes.update({(logical, "TopicArn"): arn, (logical, "TopicName"): name})
            elif kind == "AWS::SQS::Queue":
                stack.physical[logical] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
                stack.attributes.update({(logical, "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
                                         (logical, "QueueName"): name})
            elif kind == "AWS::Events::EventBus":
                stack.attributes[(logical, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
            elif kind == "AWS::Lambda::Function":
                stack.attributes[(logical, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            elif kind in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
                path = "role" if kind == "AWS::IAM::Role" else "policy"
                stack.attributes[(logical, "Arn")] = f"arn:aws:iam::{ACCOUNT}:{path}/{name}"
                if kind == "AWS::IAM::ManagedPolicy":
                    stack.physical[logical] = stack.attributes[(logical, "Arn")]
        return stack

    def ref(self, logical_id: str) -> str:
        if logical_id == "AWS::NoValue":
            return _NO_VALUE  # type: ignore[return-value]
        return super().ref(logical_id)

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.conditions[name]))

    def _evaluate(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            (fn, arg), = expr.items()
            if fn == "Fn::Equals":
                left, right = (self._evaluate(a) for a in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self._evaluate(arg[0])
            if fn == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if fn == "Condition":
                return self.condition(arg)
            return self.resolve(expr)
        return expr

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (name, arg), = value.items()
            if name == "Fn::If":
                chosen = arg[1] if self.condition(arg[0]) else arg[2]
                return self.resolve_all(chosen)
            if name == "Fn::Join" and isinstance(arg, list) and isinstance(arg[1], list):
                return str(self.resolve(arg[0])).join(_flat(self.resolve_all(i) for i in arg[1]))
        return super().resolve(value)

    def resolve_all(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Fn::If", "Ref", "Fn::Join",
                                                                                  "Fn::GetAtt", "Fn::Sub",
                                                                                  "Fn::Split", "Fn::Select"):
            return self.resolve(value)
        if isinstance(value, dict):
            out = {k: self.resolve_all(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve_all(v) for v in value) if v is not _NO_VALUE]
        return value


def _flat(items: Any) -> list[str]:
    out: list[str] = []
    for item in items:
        out.extend(str(i) for i in (item if isinstance(item, list) else [item]))
    return out


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class FunctionPolicy:
    function: str
    statements: list[dict[str, Any]]  # everything the role grants, resolved
    own_statements: list[dict[str, Any]]  # what the template writes (inline, SAM-generated, template managed)
    unknown_managed: list[str]  # managed policy ARNs we cannot see into

    @classmethod
    def for_function(cls, function: str, parameters: dict[str, str], template: Path = TEMPLATE) -> FunctionPolicy:
        from autopilot_tools.localstack import load_template

        source = load_template(template)
        data = expand(template)
        resources = data["resources"]
        stack = ResolvingStack.for_template(resources, parameters, source.get("Parameters", {}),
                                            source.get("Conditions", {}))
        spec = data["functions"][function]
        own: list[dict[str, Any]] = []
        for policy in spec["policies"]:
            own.extend(_listify(stack.resolve_all(policy["statements"])))
        granted = list(own)
        unknown: list[str] = []
        for arn in spec["managed_policy_arns"]:
            if isinstance(arn, dict) and "Ref" in arn and resources.get(arn["Ref"], {}).get("Type") == \
                    "AWS::IAM::ManagedPolicy":
                document = resources[arn["Ref"]]["Properties"]["PolicyDocument"]
                statements = _listify(stack.resolve_all(document.get("Statement", [])))
                own.extend(statements)
                granted.extend(statements)
            elif isinstance(arn, str) and arn in AWS_MANAGED:
                granted.extend(AWS_MANAGED[arn])
            else:
                unknown.append(json.dumps(arn))
        # Managed policies that attach themselves to the role (their Roles property), when their condition holds.
        for logical, resource in resources.items():
            props = resource.get("Properties") or {}
            if resource.get("Type") != "AWS::IAM::ManagedPolicy" or {"Ref": spec["role"]} not in props.get("Roles", []):
                continue
            if resource.get("Condition") and not stack.condition(resource["Condition"]):
                continue
            statements = _listify(stack.resolve_all(props["PolicyDocument"].get("Statement", [])))
            own.extend(statements)
            granted.extend(statements)
        return cls(function=function, statements=granted, own_statements=own, unknown_managed=unknown)


@dataclass
class MemberRole:
    """The member stack's execution role as deployed in one account and region (templates/member-account.yaml)."""

    statements: list[dict[str, Any]]  # what the role may do there
    trust: list[dict[str, Any]]  # who may assume it
    name: str

    @classmethod
    def at(cls, account: str, region: str, parameters: dict[str, str], template: Path = MEMBER_TEMPLATE) -> MemberRole:
        from autopilot_tools.localstack import load_template

        source = load_template(template)
        stack = ResolvingStack.for_template(source["Resources"], parameters, source.get("Parameters", {}),
                                            source.get("Conditions", {}),
                                            pseudo={"AWS::AccountId": account, "AWS::Region": region})
        props = source["Resources"]["ExecutionRole"]["Properties"]
        statements = [s for p in props["Policies"]
                      for s in _listify(stack.resolve_all(p["PolicyDocument"]["Statement"]))]
        trust = _listify(stack.resolve_all(props["AssumeRolePolicyDocument"]["Statement"]))
        return cls(statements=statements, trust=trust, name=str(stack.resolve(props["RoleName"])))


# ------------------------------------------------------------------------------------ evaluation
@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in glob)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def action_matches(pattern: str, action: str) -> bool:
    return bool(_pattern(pattern, True).match(action))


def resource_matches(pattern: str, resource: str) -> bool:
    return bool(_pattern(pattern, False).match(resource))


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    op = operator
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        op = op.removeprefix(prefix)
    negated = "Not" in op
    if key not in context:
        return if_exists or negated
    actual = context[key]
    values = [str(v) for v in _listify(expected)]
    if op in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        hit = actual in values
    elif op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = actual.lower() in (v.lower() for v in values)
    elif op in ("StringLike", "ArnLike", "StringNotLike", "ArnNotLike"):
        hit = any(resource_matches(v, actual) for v in values)
    elif op == "Bool":
        hit = actual.lower() in (v.lower() for v in values)
    else:
        return False  # an operator this evaluator does not know: not proven to hold
    return not hit if negated else hit


def statement_applies(statement: dict[str, Any], action: str, resource: str | None, context: dict[str, str]) -> bool:
    if "Action" in statement:
        if not any(action_matches(p, action) for p in _listify(statement["Action"])):
            return False
    elif any(action_matches(p, action) for p in _listify(statement.get("NotAction", []))):
        return False
    if resource is not None:
        if "Resource" in statement:
            if not any(resource_matches(p, resource) for p in _flat(_listify(statement["Resource"]))):
                return False
        elif any(resource_matches(p, resource) for p in _flat(_listify(statement.get("NotResource", [])))):
            return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def call_context(action: str, resource: str | None, context: dict[str, str]) -> dict[str, str]:
    """The request context IAM would see: the call's own keys plus the global ones we can know."""
    full = {"aws:RequestedRegion": REGION, **context}
    if resource and resource.startswith("arn:"):
        parts = resource.split(":")
        if len(parts) > 4 and parts[4]:
            full.setdefault("aws:ResourceAccount", parts[4])
    return full


def allows(statements: list[dict[str, Any]], action: str, resource: str | None, context: dict[str, str]) -> bool:
    ctx = call_context(action, resource, context)
    applicable = [s for s in statements if statement_applies(s, action, resource, ctx)]
    if any(s.get("Effect") == "Deny" for s in applicable):
        return False
    return any(s.get("Effect") == "Allow" for s in applicable)


def unscoped(statements: list[dict[str, Any]]) -> list[str]:
    """Allow statements that grant a scopable action on Resource "*", or any wildcard service action."""
    problems: list[str] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _listify(statement.get("Action", []))]
        resources = _flat(_listify(statement.get("Resource", [])))
        label = statement.get("Sid") or actions
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{label}: NotAction/NotResource grants more than it names")
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{label}: wildcard action {action}")
                continue
            covered = [s for s in SCOPABLE_ACTIONS if action_matches(action, s)]
            if covered and "*" in resources:
                problems.append(f"{label}: {', '.join(covered)} on Resource \"*\"")
    return problems


def unconditioned_pass_role(statements: list[dict[str, Any]]) -> list[str]:
    """Allow statements granting iam:PassRole without an iam:PassedToService condition."""
    problems: list[str] = []
    for statement in statements:
        actions = [str(a) for a in _listify(statement.get("Action", []))]
        if statement.get("Effect") != "Allow" or not any(action_matches(a, "iam:PassRole") for a in actions):
            continue
        keys = {k for block in (statement.get("Condition") or {}).values() for k in block}
        if "iam:PassedToService" not in keys:
            problems.append(f"{statement.get('Sid') or actions}: iam:PassRole without an iam:PassedToService condition")
    return problems
