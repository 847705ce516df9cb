"""Derived revisions (decide.taskdef): describe -> derive -> register without losing a field."""

from __future__ import annotations

import copy
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from hypothesis import given
from hypothesis import strategies as st

from autopilot.decide.taskdef import (
    MAX_TAGS,
    READ_ONLY_FIELDS,
    TAG_DERIVATION_ID,
    TAG_DERIVED_FROM,
    TAG_REASON,
    Changes,
    DerivationError,
    derivation_tags,
    is_derivation,
    register_request,
    revision_number,
    tag_map,
    tag_value,
)

ECS_MODEL = botocore.session.get_session().get_service_model("ecs")
REGISTER_INPUT = ECS_MODEL.operation_model("RegisterTaskDefinition").input_shape
ACCOUNT = "123456789012"

# DescribeTaskDefinition output as AWS returns it for a Fargate service with a sidecar (Envoy, App Mesh),
# secrets from Secrets Manager and SSM, an EFS volume, a FireLens log router, ARM64 and 40 GiB of storage.
FARGATE: dict[str, Any] = {
    "taskDefinitionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:7",
    "family": "web",
    "revision": 7,
    "status": "ACTIVE",
    "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web-task",
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web-execution",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "compatibilities": ["EC2", "FARGATE"],
    "cpu": "1024",
    "memory": "2048",
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "ephemeralStorage": {"sizeInGiB": 40},
    "enableFaultInjection": False,
    "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy", "properties": [
        {"name": "IgnoredUID", "value": "1337"}, {"name": "ProxyIngressPort", "value": "15000"},
        {"name": "ProxyEgressPort", "value": "15001"}, {"name": "AppPorts", "value": "8080"},
        {"name": "EgressIgnoredIPs", "value": "169.254.170.2,169.254.169.254"}]},
    "volumes": [{"name": "shared", "efsVolumeConfiguration": {
        "fileSystemId": "fs-0123456789abcdef0", "rootDirectory": "/", "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"}}},
        {"name": "scratch", "host": {}}],
    "placementConstraints": [],
    "containerDefinitions": [
        {"name": "app", "image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2", "cpu": 768,
         "memory": 1536, "memoryReservation": 1024, "essential": True,
         "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "name": "http",
                           "appProtocol": "http"}],
         "environment": [{"name": "LOG_LEVEL", "value": "info"}],
         "secrets": [{"name": "DB_PASSWORD",
                      "valueFrom": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf"},
                     {"name": "API_KEY", "valueFrom": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/web/api-key"}],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data", "readOnly": False},
                         {"sourceVolume": "scratch", "containerPath": "/tmp/scratch"}],
         "volumesFrom": [],
         "dependsOn": [{"containerName": "envoy", "condition": "HEALTHY"}],
         "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
                         "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 60},
         "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
         "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch_logs"},
                              "secretOptions": []},
         "restartPolicy": {"enabled": True, "restartAttemptPeriod": 300, "ignoredExitCodes": [0]},
         "stopTimeout": 30, "systemControls": []},
        {"name": "envoy", "image": "840364872350.dkr.ecr.us-east-1.amazonaws.com/aws-appmesh-envoy:v1.29.4.0-prod",
         "cpu": 128, "memory": 256, "essential": True, "user": "1337",
         "environment": [{"name": "APPMESH_RESOURCE_ARN",
                          "value": f"arn:aws:appmesh:us-east-1:{ACCOUNT}:mesh/m/virtualNode/web"}],
         "healthCheck": {"command": ["CMD-SHELL",
                                     "curl -s http://localhost:9901/server_info | grep state | grep -q LIVE"],
                         "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 10},
         "portMappings": [], "mountPoints": [], "volumesFrom": [], "systemControls": []},
        {"name": "log_router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
         "cpu": 0, "memoryReservation": 50, "essential": True,
         "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}},
         "portMappings": [], "mountPoints": [], "volumesFrom": [], "environment": [], "systemControls": []},
    ],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.ecr-auth"},
                           {"name": "ecs.capability.secrets.asm.environment-variables"},
                           {"name": "ecs.capability.efsAuth"}],
    "registeredAt": "2026-11-01T10:00:00.000000+00:00",
    "registeredBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci",
}

# An EC2 (bridge) task definition: bind and Docker volumes, placement constraints, links, soft limits only,
# a host port, Linux parameters, and a deregistered revision's read-only fields.
EC2: dict[str, Any] = {
    "taskDefinitionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/worker:12",
    "family": "worker",
    "revision": 12,
    "status": "INACTIVE",
    "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/worker-task",
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
    "networkMode": "bridge",
    "requiresCompatibilities": ["EC2"],
    "compatibilities": ["EXTERNAL", "EC2"],
    "pidMode": "task",
    "ipcMode": "none",
    "volumes": [
        {"name": "docker-sock", "host": {"sourcePath": "/var/run/docker.sock"}},
        {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True, "driver": "local",
                                                         "labels": {"team": "data"}}},
    ],
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m7g.*"}],
    "containerDefinitions": [
        {"name": "worker", "image": "busybox:1.36", "cpu": 512, "memoryReservation": 700, "essential": True,
         "command": ["sh", "-c", "run-worker"], "entryPoint": [], "links": ["statsd"],
         "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache", "readOnly": False}],
         "volumesFrom": [], "environment": [], "environmentFiles": [
             {"value": "arn:aws:s3:::config-bucket/worker.env", "type": "s3"}],
         "secrets": [{"name": "TOKEN", "valueFrom": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/worker/token"}],
         "linuxParameters": {"initProcessEnabled": True, "capabilities": {"add": ["SYS_PTRACE"], "drop": []}},
         "dockerLabels": {"com.example.team": "data"}, "portMappings": [], "privileged": False,
         "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/worker",
                                                                   "awslogs-region": "us-east-1",
                                                                   "awslogs-stream-prefix": "worker"}}},
        {"name": "statsd", "image": "statsd/statsd:v0.10.2", "cpu": 64, "memory": 128, "essential": False,
         "portMappings": [{"containerPort": 8125, "hostPort": 8125, "protocol": "udp"}],
         "mountPoints": [{"sourceVolume": "docker-sock", "containerPath": "/var/run/docker.sock"}],
         "volumesFrom": [], "environment": []},
    ],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.19"}],
    "registeredAt": "2026-10-01T10:00:00+00:00",
    "registeredBy": f"arn:aws:iam::{ACCOUNT}:user/ops",
    "deregisteredAt": "2026-11-01T10:00:00+00:00",
}

BASE_TAGS = [{"key": "team", "value": "web"}, {"key": "cost-center", "value": "42"},
             {"key": "aws:cloudformation:stack-name", "value": "web-prod"}]


def derive(described: dict[str, Any], changes: Changes | None = None, tags: list[dict[str, str]] | None = None,
           reason: str = "OOM: grow app memory by 25%", derivation_id: str = "oom:web:7:app") -> dict[str, Any]:
    return register_request(described, BASE_TAGS if tags is None else tags, changes or Changes(),
                            derived_from=described["taskDefinitionArn"], reason=reason, derivation_id=derivation_id)


def _strip(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != "tags"}


@pytest.mark.parametrize("described", [FARGATE, EC2], ids=["fargate", "ec2"])
def test_unchanged_copy_keeps_every_writable_field_exactly(described):
    request = derive(described)
    expected = {k: v for k, v in described.items() if k not in READ_ONLY_FIELDS}
    assert _strip(request) == expected
    for field in ("taskRoleArn", "executionRoleArn", "volumes", "placementConstraints", "requiresCompatibilities"):
        assert request[field] == described[field]
    assert not (set(request) & READ_ONLY_FIELDS)


@pytest.mark.parametrize("described", [FARGATE, EC2], ids=["fargate", "ec2"])
def test_request_is_valid_for_register_task_definition(described):
    request = derive(described, Changes(container_memory={described["containerDefinitions"][0]["name"]: 4096}))
    report = ParamValidator().validate(request, REGISTER_INPUT)
    assert not report.has_errors(), report.generate_report()


def test_read_only_fields_match_the_api_model():
    """Every field DescribeTaskDefinition returns is either read-only here or accepted by RegisterTaskDefinition.

    When AWS adds a field, this fails until it is classified (botocore is the API model)."""
    described = set(ECS_MODEL.shape_for("TaskDefinition").members)
    accepted = set(REGISTER_INPUT.members)
    assert described - READ_ONLY_FIELDS <= accepted
    assert READ_ONLY_FIELDS <= described and not (READ_ONLY_FIELDS & accepted)


def test_input_is_not_modified():
    before = copy.deepcopy(FARGATE)
    derive(FARGATE, Changes(container_memory={"app": 3072}, task_memory=4096, task_cpu=2048))
    assert before == FARGATE


def test_memory_hard_limit_and_proportional_soft_limit():
    request = derive(FARGATE, Changes(container_memory={"app": 1920}, task_memory=3072))
    app = next(c for c in request["containerDefinitions"] if c["name"] == "app")
    assert app["memory"] == 1920 and app["memoryReservation"] == 1280  # 1024 x 1920/1536
    assert request["memory"] == "3072" and request["cpu"] == "1024"
    others = [c for c in request["containerDefinitions"] if c["name"] != "app"]
    assert others == [c for c in FARGATE["containerDefinitions"] if c["name"] != "app"]


def test_explicit_soft_limit_wins_and_never_exceeds_the_hard_limit():
    request = derive(FARGATE, Changes(container_memory={"app": 2048}, container_memory_reservation={"app": 1500}))
    app = request["containerDefinitions"][0]
    assert (app["memory"], app["memoryReservation"]) == (2048, 1500)
    request = derive(FARGATE, Changes(container_memory={"app": 1024}, container_memory_reservation={"app": 1500}))
    assert request["containerDefinitions"][0]["memoryReservation"] == 1024


def test_soft_limit_only_container_on_ec2():
    request = derive(EC2, Changes(container_memory_reservation={"worker": 900}))
    worker = request["containerDefinitions"][0]
    assert worker["memoryReservation"] == 900 and "memory" not in worker
    request = derive(EC2, Changes(container_memory={"worker": 1024}))
    worker = request["containerDefinitions"][0]
    assert worker["memory"] == 1024 and worker["memoryReservation"] == 700  # no old hard limit to scale from


def test_task_cpu_change_is_a_string_as_the_api_takes_it():
    request = derive(FARGATE, Changes(task_cpu=2048, task_memory=5120))
    assert (request["cpu"], request["memory"]) == ("2048", "5120")


@pytest.mark.parametrize("changes", [
    Changes(container_memory={"nope": 1024}),
    Changes(container_memory_reservation={"nope": 1024}),
    Changes(container_memory={"app": 0}),
    Changes(task_memory=-1),
])
def test_invalid_changes_are_refused(changes):
    with pytest.raises(DerivationError):
        derive(FARGATE, changes)


def test_tags_keep_user_tags_drop_aws_tags_and_record_the_derivation():
    request = derive(FARGATE)
    tags = tag_map(request["tags"])
    assert tags["team"] == "web" and tags["cost-center"] == "42"
    assert not any(k.startswith("aws:") for k in tags)
    assert tags[TAG_DERIVED_FROM] == FARGATE["taskDefinitionArn"]
    assert tags[TAG_REASON] == "OOM: grow app memory by 25_"  # % is not allowed in tag values
    assert is_derivation(request["tags"], "oom:web:7:app") and not is_derivation(request["tags"], "oom:web:7:x")


def test_a_derivation_of_a_derivation_replaces_our_tags():
    first = derive(FARGATE)["tags"]
    second = derivation_tags(first, derived_from="arn:x:task-definition/web:8", reason="again", derivation_id="d2")
    keys = [t["key"] for t in second]
    assert keys.count(TAG_DERIVATION_ID) == 1 and tag_map(second)[TAG_DERIVATION_ID] == "d2"


def test_tags_stay_within_the_limit():
    many = [{"key": f"k{i}", "value": "v"} for i in range(MAX_TAGS)]
    tags = derivation_tags(many, derived_from="a", reason="r", derivation_id="d")
    assert len(tags) == MAX_TAGS and TAG_DERIVATION_ID in tag_map(tags)


@given(st.text(max_size=400))
def test_tag_values_are_always_acceptable(text):
    value = tag_value(text)
    assert len(value) <= 256
    assert re.fullmatch(r"[\w\s.:/=+\-@]*", value)  # what ECS accepts in a tag value
    ParamValidator().validate({"resourceArn": "arn", "tags": [{"key": "k", "value": value}]},
                              ECS_MODEL.operation_model("TagResource").input_shape)


@pytest.mark.parametrize(("arn", "number"), [
    (FARGATE["taskDefinitionArn"], 7), ("web:12", 12), ("web", None), ("arn:aws:ecs:r:1:task-definition/a-b:3", 3),
])
def test_revision_number(arn, number):
    assert revision_number(arn) == number
