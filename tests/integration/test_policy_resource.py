"""Custom::EcsAutopilotPolicy end to end on moto: PolicyResourceFunction's handler (crhelper) with the requests
CloudFormation sends (events/policy-resource-*.json: every number and boolean a string, as CloudFormation
passes them), the answers it PUTs to the pre-signed ResponseURL, and the state table afterwards."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import pytest

from autopilot.models.place import Registration
from autopilot.models.policy import ServicePolicy, service_key
from autopilot_tools.policyfile import parse_policies
from tests.conftest import LambdaContextStub, load_handler, sample


class Responses:
    """Stands in for the S3 pre-signed URL: every PUT crhelper makes, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.hosts: list[str] = []
        self.arrived = threading.Event()

    def connection(self, host: str, context: Any = None) -> Any:
        outer = self

        class Connection:
            def request(self, method: str, url: str, body: str, headers: dict[str, str]) -> None:
                assert method == "PUT" and headers["content-type"] == ""
                outer.hosts.append(host)
                outer.sent.append(json.loads(body))
                outer.arrived.set()

            def getresponse(self) -> Any:
                return type("Response", (), {"reason": "OK", "status": 200})()

        return Connection()

    @property
    def last(self) -> dict[str, Any]:
        return self.sent[-1]


@pytest.fixture
def cfn(monkeypatch: pytest.MonkeyPatch) -> Responses:
    import crhelper.utils

    responses = Responses()
    monkeypatch.setattr(crhelper.utils, "HTTPSConnection", responses.connection)
    return responses


@pytest.fixture
def resource(deps: Any, stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AUTOPILOT_STACK_ID", "arn:aws:cloudformation:us-east-1:123456789012:stack/ecs-autopilot/hub")
    return load_handler("policy_resource")


def request(name: str, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(sample(name))
    event.update(changes)
    return event


def send(resource: Any, event: dict[str, Any], cfn: Responses) -> dict[str, Any]:
    before = len(cfn.sent)
    resource.lambda_handler(event, LambdaContextStub())
    assert len(cfn.sent) == before + 1, "exactly one answer per request"
    return cfn.last


def test_create_update_delete_apply_and_remove_the_policy(resource, cfn, deps):
    created = send(resource, request("policy-resource-create.json"), cfn)
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == "ecs-autopilot:SVC#prod#web"
    assert cfn.hosts == ["cloudformation-custom-resource-response-useast1.s3.amazonaws.com"]
    stored = deps.store.get_policy(service_key("prod", "web"))
    assert isinstance(stored, ServicePolicy) and stored.spec.scaling is not None
    assert (stored.spec.scaling.minTasks, stored.spec.scaling.maxTasks) == (2, 20)  # "2" typed back to 2
    assert stored.spec.scaling.rules[0].steps is not None and stored.spec.scaling.rules[0].steps[1].adjustment == "30%"
    assert stored.spec.rollout is not None and stored.spec.rollout.rollbackOnDeploymentFailure is True
    assert deps.store.policies_for_alarm("web-cpu-high")[0].key == "SVC#prod#web"
    owner = deps.store.policy_owner("SVC#prod#web")
    assert owner is not None and owner.endswith("stack/team-web/5b2b2d40-7d6e-11ef-9f3e-0e3f4b1c2d3e#WebPolicy")

    updated = send(resource, request("policy-resource-update.json"), cfn)
    assert (updated["Status"], updated["PhysicalResourceId"]) == ("SUCCESS", "ecs-autopilot:SVC#prod#web")
    policy = deps.store.get_policy("SVC#prod#web")
    assert isinstance(policy, ServicePolicy) and policy.spec.scaling and policy.spec.scaling.maxTasks == 40

    deleted = send(resource, request("policy-resource-delete.json"), cfn)
    assert deleted["Status"] == "SUCCESS"
    assert deps.store.get_policy("SVC#prod#web") is None
    assert deps.store.policies_for_alarm("web-cpu-high") == []
    outcomes = [e.outcome for e in deps.store.history(cluster="prod", service="web", now=deps.clock())]
    assert sorted(outcomes) == ["policy:created", "policy:deleted", "policy:updated"]  # one clock: one time
    assert {e.source for e in deps.store.history(now=deps.clock())} == {"stack"}


def test_cloudformations_retries_are_idempotent(resource, cfn, deps):
    event = request("policy-resource-create.json")
    first, second = send(resource, event, cfn), send(resource, event, cfn)
    assert first == second and first["Status"] == "SUCCESS"
    assert [e.outcome for e in deps.store.history(now=deps.clock())] == ["policy:created"]
    delete = request("policy-resource-delete.json")
    assert send(resource, delete, cfn)["Status"] == send(resource, delete, cfn)["Status"] == "SUCCESS"


def test_a_bad_policy_fails_the_resource_with_autopilot_validates_words(resource, cfn, deps):
    answer = send(resource, request("policy-resource-create-invalid.json"), cfn)
    assert answer["Status"] == "FAILED"
    # The same document as a policy file: autopilot validate's reasons, without file, document and line.
    properties = sample("policy-resource-create-invalid.json")["ResourceProperties"]
    del properties["ServiceToken"]
    yaml_text = json.dumps(properties).replace('"two"', "two").replace('"20"', "20").replace('"2"', "2") \
        .replace('"60"', "60").replace('"0"', "0").replace('"1"', "1").replace('"3"', "3") \
        .replace('"600"', "600").replace('"1800"', "1800").replace('"true"', "true")
    _, errors = parse_policies(yaml_text, "p.yaml")
    expected = [f"{e.field}: {e.reason}" for e in errors]
    assert expected == ["spec.scaling.minTasks: must be a whole number (got 'two')",
                        "spec.scaling.maxTsks: unknown field (did you mean maxTasks?)"]
    assert answer["Reason"] == f"invalid policy: {'; '.join(expected)}"
    assert len(answer["Reason"]) <= 256
    assert deps.store.get_policy("SVC#prod#web") is None


def test_a_failed_create_then_its_delete_touch_nothing(resource, cfn, deps):
    """CloudFormation deletes a resource whose Create failed, with whatever physical id the failure carried."""
    failed = send(resource, request("policy-resource-create-invalid.json"), cfn)
    assert failed["Status"] == "FAILED"
    deps.store.put_policy(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {}}), deps.clock())  # applied with the CLI meanwhile
    cleanup = send(resource, request("policy-resource-delete.json", PhysicalResourceId=failed["PhysicalResourceId"]),
                   cfn)
    assert cleanup["Status"] == "SUCCESS"
    assert deps.store.get_policy("SVC#prod#web") is not None


def test_a_stack_never_takes_a_policy_over_nor_deletes_one_it_does_not_declare(resource, cfn, deps):
    deps.store.put_policy(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {}}), deps.clock())
    answer = send(resource, request("policy-resource-create.json"), cfn)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == ("the policy of prod/web is declared by autopilot apply (the CLI): change or remove "
                                "it there")
    other = request("policy-resource-create.json", LogicalResourceId="SomeoneElsesPolicy")
    deps.store.delete_policy("SVC#prod#web")
    assert send(resource, other, cfn)["Status"] == "SUCCESS"
    mine = send(resource, request("policy-resource-create.json"), cfn)
    assert mine["Status"] == "FAILED" and "team-web/SomeoneElsesPolicy" in mine["Reason"]
    assert send(resource, request("policy-resource-delete.json"), cfn)["Status"] == "SUCCESS"
    assert deps.store.get_policy("SVC#prod#web") is not None, "another resource's policy stays"


def test_moving_a_policy_to_another_service_deletes_the_old_one_after_the_update(resource, cfn, deps):
    send(resource, request("policy-resource-create.json"), cfn)
    moved = request("policy-resource-update.json")
    moved["ResourceProperties"]["metadata"] = {"cluster": "prod", "service": "web-v2", "account": "123456789012"}
    answer = send(resource, moved, cfn)
    assert answer["PhysicalResourceId"] == "ecs-autopilot:SVC#prod#web-v2", "the hub's own account: the plain key"
    # CloudFormation then deletes the old physical resource
    assert send(resource, request("policy-resource-delete.json"), cfn)["Status"] == "SUCCESS"
    assert deps.store.get_policy("SVC#prod#web") is None and deps.store.get_policy("SVC#prod#web-v2") is not None


def test_a_policy_for_a_member_place(resource, cfn, deps):
    event = request("policy-resource-create.json")
    event["ResourceProperties"]["metadata"] |= {"account": "111111111111", "region": "eu-west-1"}
    answer = send(resource, event, cfn)
    assert answer["PhysicalResourceId"] == "ecs-autopilot:SVC#111111111111#eu-west-1#prod#web"
    assert deps.store.get_policy("SVC#111111111111#eu-west-1#prod#web") is not None


def test_the_answer_goes_before_lambdas_timeout_whatever_the_code_does(resource, cfn, deps, monkeypatch):
    """crhelper answers FAILED half a second before the invocation would time out: a stack never hangs."""
    released = threading.Event()

    def stuck(*_: Any, **__: Any) -> str:
        cfn.arrived.wait(timeout=30)  # until crhelper's timer answered
        released.set()
        return "ecs-autopilot:SVC#prod#web"

    monkeypatch.setattr(resource, "handle", stuck)

    class Short(LambdaContextStub):
        def get_remaining_time_in_millis(self) -> int:
            return 600

    resource.lambda_handler(request("policy-resource-create.json"), Short())
    assert released.is_set()
    assert cfn.sent[0]["Status"] == "FAILED" and cfn.sent[0]["Reason"] == "Execution timed out"


def test_the_hub_keeps_its_member_registry_and_no_other_stack_may(resource, cfn, deps):
    hub = "arn:aws:cloudformation:us-east-1:123456789012:stack/ecs-autopilot/hub"
    event = request("policy-resource-create.json", StackId=hub, LogicalResourceId="MemberRegistry",
                    ResourceType="Custom::EcsAutopilotMembers",
                    ResourceProperties={"ServiceToken": "x", "Accounts": "111111111111,222222222222",
                                        "Regions": "us-east-1,eu-west-1", "OrganizationId": "",
                                        "RoleName": "ecs-autopilot-member", "ExternalId": ""})
    answer = send(resource, event, cfn)
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "ecs-autopilot:member-registry")
    assert deps.store.registration() == Registration(accounts=("111111111111", "222222222222"),
                                                     regions=("us-east-1", "eu-west-1"))
    forged = send(resource, {**event, "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/team/x"}, cfn)
    assert forged["Status"] == "FAILED"
    bad = send(resource, {**event, "ResourceProperties": {"Accounts": "12345"}}, cfn)
    assert bad["Status"] == "FAILED" and "12345" in bad["Reason"]
    gone = send(resource, {**event, "RequestType": "Delete", "PhysicalResourceId": "ecs-autopilot:member-registry"},
                cfn)
    assert gone["Status"] == "SUCCESS"
    deps.store._registration = None
    assert deps.store.registration() == Registration()
