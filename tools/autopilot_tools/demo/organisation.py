"""The demo's organisation (issue 13): member accounts on the emulator, their forwarding to the hub, and the
CloudFormation side of the policy custom resource.

moto keeps one world per account id: an STS AssumeRole of a role ARN in another account switches to it (the
role need not exist). The demo acts as a member account through the same member clients the hub's functions
use (``autopilot.aws.clients``), so what a member sees is what the functions changed there.

Routing is the templates' own: each member's default bus gets the forwarding rules of
``templates/member-account.yaml`` (resolved for that account and region), targeting the hub's event bus in
the hub account, which gets template.yaml's ``Hub*Rule`` patterns. moto's EventBridge matches the patterns and
forwards across accounts; what reaches the hub's rules names the functions to invoke (moto's forwarded copy
drops the event's ``account``: the function then receives the event as the member's EventBridge emitted it).

``CloudFormation`` plays the stack service for ``Custom::EcsAutopilotPolicy``: it sends requests the way
CloudFormation does (every number and boolean of the properties as a string) and reads the answer the
function PUTs to the pre-signed URL (crhelper's HTTPS PUT is captured in-process, ``backdoor``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopilot.aws.clients import MemberAccess, client
from autopilot.models.place import Place, Registration
from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION
from autopilot_tools.localstack import LocalStack, load_template

ROOT = Path(__file__).resolve().parents[3]
MEMBER_TEMPLATE = ROOT / "templates" / "member-account.yaml"
HOME = Place(ACCOUNT_ID, REGION)
HUB_BUS = "autopilot-local-hub"  # the template's ${AWS::StackName}-hub for the demo's stack
ROUTED = "demo-hub-bus-targets"


def at(place: Place, service: str, registration: Registration | None = None) -> Any:
    """A client acting in ``place`` (the hub's own: the usual one), as the member role the hub assumes there."""
    if place == HOME:
        return client(service)
    role = (registration or Registration()).role_arn(place)
    return client(service, place, MemberAccess(role_arn=role))


def as_member(event: dict[str, Any], place: Place) -> dict[str, Any]:
    """An event of the hub's account moved to a member's: its envelope and the ARNs it carries."""
    text = json.dumps(event)
    text = text.replace(f":{REGION}:{ACCOUNT_ID}:", f":{place.region}:{place.account}:")
    moved: dict[str, Any] = json.loads(text)
    moved["account"], moved["region"] = place.account, place.region
    return moved


@dataclass
class OrgRouter:
    """Member default buses forwarding to the hub's bus, whose rules stand for the functions."""

    members: list[Place]
    parameters: dict[str, str]  # the hub stack's (MemberAccounts, ...)

    def __post_init__(self) -> None:
        hub_template = load_template()
        events, sqs = client("events"), client("sqs")
        bus_arn = events.create_event_bus(Name=HUB_BUS)["EventBusArn"]
        self.queue_url = sqs.create_queue(QueueName=ROUTED)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        self.hub_rules: dict[str, str] = {}  # rule name -> function
        hub = LocalStack(stack_name="autopilot-local", parameters=self.parameters)
        for logical, resource in hub_template["Resources"].items():
            if resource["Type"] != "AWS::Events::Rule" or not logical.startswith("Hub"):
                continue
            props = resource["Properties"]
            pattern = hub.resolve_all(props["EventPattern"])
            (target,) = props["Targets"]
            function = target["Arn"]["Ref"].removesuffix(".Alias")
            events.put_rule(Name=logical, EventBusName=HUB_BUS, EventPattern=json.dumps(pattern), State="ENABLED")
            text = json.dumps({"function": function, "rule": logical, "id": "ID"}).replace('"ID"', '"<id>"')
            events.put_targets(Rule=logical, EventBusName=HUB_BUS, Targets=[{
                "Id": function, "Arn": queue_arn,
                "InputTransformer": {"InputPathsMap": {"id": "$.id"}, "InputTemplate": text}}])
            self.hub_rules[logical] = function
        member_template = load_template(MEMBER_TEMPLATE)
        for place in self.members:
            member = LocalStack(stack_name="ecs-autopilot-member",
                                parameters={"HubAccountId": ACCOUNT_ID, "HubEventBusArn": bus_arn,
                                            "ManagedClusters": "prod", "HubStackName": "autopilot-local"},
                                list_parameters=frozenset({"ManagedClusters"}),
                                pseudo={"AWS::AccountId": place.account, "AWS::Region": place.region})
            member_events = at(place, "events")
            for logical, resource in member_template["Resources"].items():
                if resource["Type"] != "AWS::Events::Rule":
                    continue
                pattern = member.resolve_all(resource["Properties"]["EventPattern"])
                member_events.put_rule(Name=logical, EventPattern=pattern if isinstance(pattern, str)
                                       else json.dumps(pattern), State="ENABLED")
                member_events.put_targets(Rule=logical, Targets=[{"Id": "hub", "Arn": bus_arn}])

    def route(self, event: dict[str, Any], place: Place) -> list[str]:
        """Put ``event`` on ``place``'s default bus; the functions the hub's rules invoke for it."""
        entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
                 "Resources": list(event.get("resources", []))}
        response = at(place, "events").put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents rejected the event: {response['Entries'][0]}")
        sqs = client("sqs")
        functions: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return functions
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                function = json.loads(message["Body"]).get("function")
                if function and function not in functions:
                    functions.append(function)


# ------------------------------------------------------------------------------------ CloudFormation's side
def stringly(value: Any) -> Any:
    """Properties as CloudFormation hands them to a custom resource: numbers and booleans become strings."""
    if isinstance(value, dict):
        return {k: stringly(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringly(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


@dataclass
class Request:
    """One custom resource request as CloudFormation sends it, and the answer it got."""

    event: dict[str, Any]
    answer: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return str((self.answer or {}).get("Status", "NO ANSWER"))

    @property
    def reason(self) -> str:
        return str((self.answer or {}).get("Reason", ""))


class CloudFormation:
    """The stack service, for one stack's custom resources (requests out, answers read back)."""

    def __init__(self, stack_name: str, service_token: str) -> None:
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/{uuid.uuid4()}"
        self.service_token = service_token
        self.physical: dict[str, str] = {}  # logical id -> physical id
        self.properties: dict[str, dict[str, Any]] = {}

    def request(self, request_type: str, logical_id: str, resource_type: str,
                properties: dict[str, Any] | None = None) -> Request:
        request_id = str(uuid.uuid4())
        response_url = (f"https://cloudformation-custom-resource-response-{REGION.replace('-', '')}.s3.amazonaws.com/"
                        f"{self.stack_id.replace(':', '%3A').replace('/', '%2F')}%7C{logical_id}%7C{request_id}"
                        "?X-Amz-Expires=7200&X-Amz-Signature=demo")
        event: dict[str, Any] = {
            "RequestType": request_type, "ServiceToken": self.service_token, "ResponseURL": response_url,
            "StackId": self.stack_id, "RequestId": request_id, "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": {"ServiceToken": self.service_token,
                                   **stringly(properties if properties is not None
                                              else self.properties.get(logical_id, {}))}}
        if request_type != "Create":
            event["PhysicalResourceId"] = self.physical.get(logical_id, "")
        if request_type == "Update":
            event["OldResourceProperties"] = {"ServiceToken": self.service_token,
                                              **stringly(self.properties.get(logical_id, {}))}
        return Request(event)

    def settle(self, request: Request) -> None:
        """What CloudFormation records once it has the answer: the physical id and the properties in force."""
        logical = request.event["LogicalResourceId"]
        if request.status == "SUCCESS":
            if request.event["RequestType"] == "Delete":
                self.physical.pop(logical, None)
                self.properties.pop(logical, None)
            else:
                self.physical[logical] = str((request.answer or {}).get("PhysicalResourceId"))
                self.properties[logical] = {k: v for k, v in request.event["ResourceProperties"].items()
                                            if k != "ServiceToken"}
