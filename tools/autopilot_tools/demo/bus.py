"""Event routing exactly as the template declares it, on the emulator's EventBridge.

Each function's rule patterns are read from template.yaml (intrinsics resolved with the stack's
parameters) and installed as rules whose target stands in for the function: one SQS queue shared by
all rules, each target's input transformer naming its function. An event is put on the bus with
PutEvents; the messages that arrive name the functions EventBridge would invoke. moto's pattern
engine decides, not a matcher written here. The routed message proves the match; the handler then
receives the event as ECS or CloudWatch emitted it (moto's routed copy drops ``account``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autopilot.aws.clients import client
from autopilot_tools.localstack import LocalStack, rule_patterns


@dataclass
class Rule:
    function: str
    name: str
    pattern: dict[str, Any]


class EventRouter:
    """The template's EventBridge rules, their targets standing in for the functions."""

    def __init__(self, stack: LocalStack, template: dict[str, Any]) -> None:
        self.rules: list[Rule] = []
        events, sqs = client("events"), client("sqs")
        self.queue_url = sqs.create_queue(QueueName="demo-eventbridge-targets")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        raw = _named_rules(template)
        for function, patterns in rule_patterns(template).items():
            for index, pattern in enumerate(patterns):
                name = raw.get((function, index))
                rule_name = str(stack.resolve(name)) if name else f"{stack.stack_name}-{function}-{index}"
                resolved = stack.resolve_all(pattern)
                if isinstance(resolved, str):  # a pattern written as a JSON string (e.g. built with Fn::Join)
                    resolved = json.loads(resolved)
                events.put_rule(Name=rule_name, EventPattern=json.dumps(resolved), State="ENABLED")
                text = json.dumps({"function": function, "rule": rule_name, "id": "ID"}).replace('"ID"', '"<id>"')
                events.put_targets(Rule=rule_name, Targets=[{
                    "Id": function, "Arn": arn,
                    "InputTransformer": {"InputPathsMap": {"id": "$.id"}, "InputTemplate": text}}])
                self.rules.append(Rule(function, rule_name, resolved))

    def route(self, event: dict[str, Any]) -> list[Rule]:
        """Put ``event`` on the default bus; the rules that matched it (each function at most once)."""
        entry = {
            "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": list(event.get("resources", [])), "Time": datetime.fromisoformat(event["time"]),
        }
        response = client("events").put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents rejected the event: {response['Entries'][0]}")
        routed_id = response["Entries"][0].get("EventId")
        sqs = client("sqs")
        matched: list[Rule] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            for message in messages:
                body = json.loads(message["Body"])
                if routed_id and body.get("id") != routed_id:
                    continue
                rule = next((r for r in self.rules if r.name == body.get("rule")), None)
                if rule is not None and all(m.function != rule.function for m in matched):
                    matched.append(rule)
            if len(messages) < 10:
                break
        return matched


def _named_rules(template: dict[str, Any]) -> dict[tuple[str, int], Any]:
    """(function, index of its rule pattern) -> the template's RuleName, in rule_patterns' order."""
    names: dict[tuple[str, int], Any] = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        index = 0
        for event in (resource["Properties"].get("Events") or {}).values():
            if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                if event["Properties"].get("RuleName"):
                    names[(logical, index)] = event["Properties"]["RuleName"]
                index += 1
    return names
