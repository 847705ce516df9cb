"""Build the stack's stateful resources on an AWS emulator from template.yaml itself.

Tests and the demo create the table, queues and topic from the *template's* resource properties and
derive each function's environment the way the template does, so neither can drift from what
``sam deploy`` creates. Only the resources the functions talk to are created; IAM, alarms and
Lambda itself are exercised elsewhere (template tests).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# What the emulator answers for pseudo parameters (moto's default account; AWS::StackName is the stack's own).
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                     "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": ""}
_INTRINSICS = {"Ref", "Fn::Join", "Fn::GetAtt", "Fn::Sub", "Fn::Split", "Fn::Select"}


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


class _CfnLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as their long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"  # !Condition X is {"Condition": X}
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path | None = None) -> dict[str, Any]:
    with open(path or TEMPLATE, encoding="utf-8") as handle:
        # A SafeLoader subclass that only adds CloudFormation's short-form tags (bandit B506, ruff S506).
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506  # nosec B506


@dataclass
class LocalStack:
    """Names and ARNs of the emulated resources, and the parameter values the stack was 'deployed' with."""

    stack_name: str
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> what !Ref returns
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # (logical id, attribute) -> value
    list_parameters: frozenset[str] = frozenset()  # CommaDelimitedList parameters: !Ref gives a list
    pseudo: dict[str, str] = field(default_factory=dict)  # pseudo parameters of another account or region

    def ref(self, logical_id: str) -> str:
        if logical_id in self.pseudo:
            return self.pseudo[logical_id]
        if logical_id == "AWS::StackId":
            return (f"arn:aws:cloudformation:{self.ref('AWS::Region')}:{self.ref('AWS::AccountId')}:stack/"
                    f"{self.stack_name}/local")
        if logical_id in PSEUDO_PARAMETERS:
            return self.stack_name if logical_id == "AWS::StackName" else PSEUDO_PARAMETERS[logical_id]
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        return self.physical[logical_id]

    def resolve_all(self, value: Any) -> Any:
        """Resolve intrinsics anywhere in a structure (e.g. an EventBridge rule pattern)."""
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSICS:
            return self.resolve(value)
        if isinstance(value, dict):
            return {k: self.resolve_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_all(v) for v in value]
        return value

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.attributes[(logical, attribute)]
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsic functions environment variables use (Ref, Join, GetAtt, Sub of params)."""
        if isinstance(value, dict) and len(value) == 1:
            (name, arg), = value.items()
            if name == "Ref":
                return self.ref(arg).split(",") if arg in self.list_parameters else self.ref(arg)
            if name == "Fn::Join":
                sep, items = arg
                resolved = [self.resolve(i) for i in items] if isinstance(items, list) else self.resolve(items)
                parts = resolved if isinstance(resolved, list) else str(resolved).split(",")
                return str(self.resolve(sep)).join(str(p) for p in parts)
            if name == "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            if name == "Fn::Sub":
                return self._sub(arg)
            if name == "Fn::Split":
                sep, source = arg
                resolved = self.resolve(source)
                return resolved if isinstance(resolved, list) else str(resolved).split(str(self.resolve(sep)))
            if name == "Fn::Select":
                index, items = arg
                resolved = self.resolve(items)
                return self.resolve(resolved[int(self.resolve(index))])
        return value

    def function_environment(self, template: dict[str, Any], function: str) -> dict[str, str]:
        """A function's environment as the template builds it (Globals, then the function's own)."""
        env: dict[str, Any] = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {})
                                   .get("Variables", {}))
        own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        env.update(own)
        return {k: str(self.resolve(v)) for k, v in env.items()}


def create_stack(clients: Any, *, stack_name: str = "autopilot-local", parameters: dict[str, str] | None = None,
                 template: dict[str, Any] | None = None) -> LocalStack:
    """Create every table, queue and topic of the template through ``clients(service) -> boto3 client``."""
    template = template or load_template()
    params = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    params.update(parameters or {})
    lists = frozenset(n for n, spec in template.get("Parameters", {}).items()
                      if str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<")))
    stack = LocalStack(stack_name=stack_name, parameters=params, list_parameters=lists)
    resources = template["Resources"]
    # Queues first without redrive (a redrive target must exist), then tables and topics.
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            name = f"{stack_name}-{logical}"
            url = clients("sqs").create_queue(QueueName=name)["QueueUrl"]
            attributes = clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            arn = attributes["QueueArn"]
            stack.physical[logical] = url
            stack.attributes[(logical, "Arn")] = arn
            stack.attributes[(logical, "QueueName")] = name
        elif kind == "AWS::DynamoDB::Table":
            name = f"{stack_name}-{logical}"
            args: dict[str, Any] = {
                "TableName": name, "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"], "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            clients("dynamodb").create_table(**args)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                clients("dynamodb").update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            stack.physical[logical] = name
        elif kind == "AWS::SNS::Topic":
            arn = clients("sns").create_topic(Name=f"{stack_name}-{logical}")["TopicArn"]
            stack.physical[logical] = arn
            stack.attributes[(logical, "TopicName")] = arn.rsplit(":", 1)[1]
            stack.attributes[(logical, "TopicArn")] = arn
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and props.get("RedrivePolicy"):
            redrive = {k: stack.resolve(v) for k, v in props["RedrivePolicy"].items()}
            attributes = {"RedrivePolicy": json.dumps(redrive)}
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
                if key in props:
                    attributes[key] = str(props[key])
            clients("sqs").set_queue_attributes(QueueUrl=stack.physical[logical], Attributes=attributes)
    return stack


def rule_patterns(template: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each function's EventBridge rule patterns, as written in the template (intrinsics left as is)."""
    template = template or load_template()
    patterns: dict[str, list[dict[str, Any]]] = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                patterns.setdefault(logical, []).append(event["Properties"]["Pattern"])
    return patterns
