"""The realistic estate the demo runs on: clusters, task definitions, services, alarms, policies.

Two clusters, as a small production account has them: ``prod`` with a public web service on
FARGATE_SPOT + FARGATE, an internal API and a queue worker; ``batch`` with a standalone nightly ETL
task family. Each has a Fargate-valid task definition (roles, logs, secrets, sidecars: what
RegisterTaskDefinition round-trips must preserve), CloudWatch alarms with the thresholds teams use,
and the policies of ``examples/policies.yaml`` applied through the same path as ``autopilot apply``.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot.store.table import StateTable
from autopilot_tools.demo import backdoor
from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION
from autopilot_tools.demo.events import alarm_reason, cw_time, reason_data

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ROOT / "examples" / "policies.yaml"

_ECR = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
_EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole"


def _log(group: str, prefix: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {"awslogs-group": group, "awslogs-region": REGION,
                                                "awslogs-stream-prefix": prefix}}


def _firelens() -> dict[str, Any]:
    return {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.4",
            "essential": False, "memoryReservation": 64, "memory": 128, "cpu": 64,
            "firelensConfiguration": {"type": "fluentbit"}, "logConfiguration": _log("/ecs/firelens", "router")}


TASK_DEFINITIONS: dict[str, dict[str, Any]] = {
    "web": {
        "cpu": "1024", "memory": "2048",
        "containerDefinitions": [
            {"name": "web", "image": f"{_ECR}/web:2026.11.3", "essential": True, "cpu": 896,
             "memory": 1792, "memoryReservation": 1024,
             "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
             "environment": [{"name": "PORT", "value": "8080"}, {"name": "STAGE", "value": "prod"}],
             "secrets": [{"name": "SESSION_KEY",
                          "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:prod/web/session-AbCdEf"}],
             "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"],
                             "interval": 15, "timeout": 5, "retries": 3, "startPeriod": 30},
             "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch_logs"}}},
            _firelens(),
        ],
    },
    "api": {
        "cpu": "512", "memory": "1024",
        "containerDefinitions": [
            {"name": "api", "image": f"{_ECR}/api:2026.11.3", "essential": True, "memory": 896,
             "memoryReservation": 512, "portMappings": [{"containerPort": 9000, "protocol": "tcp"}],
             "secrets": [{"name": "DATABASE_URL",
                          "valueFrom": f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/prod/api/database-url"}],
             "logConfiguration": _log("/ecs/prod/api", "api")},
        ],
    },
    "worker": {
        "cpu": "1024", "memory": "2048",
        "containerDefinitions": [
            {"name": "worker", "image": f"{_ECR}/worker:2026.11.1", "essential": True, "memory": 1792,
             "memoryReservation": 1536, "command": ["celery", "-A", "jobs", "worker", "--concurrency=4"],
             "environment": [{"name": "QUEUE", "value": "prod-jobs"}],
             "logConfiguration": _log("/ecs/prod/worker", "worker")},
            _firelens(),
        ],
    },
    "nightly-etl": {
        "cpu": "2048", "memory": "8192",
        "containerDefinitions": [
            {"name": "etl", "image": f"{_ECR}/nightly-etl:2026.11.20", "essential": True, "memory": 7680,
             "command": ["python", "-m", "etl.run", "--date", "yesterday"],
             "logConfiguration": _log("/ecs/batch/nightly-etl", "etl")},
        ],
    },
}

# "FARGATE_SPOT weight 3 plus FARGATE base 2" (examples/policies.yaml): two tasks always on demand.
SPOT_STRATEGY = [{"capacityProvider": "FARGATE", "base": 2, "weight": 1},
                 {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 3}]


@dataclass(frozen=True)
class ServiceSpec:
    cluster: str
    name: str
    family: str
    desired: int
    strategy: list[dict[str, Any]] | None = None  # None: launch type FARGATE


SERVICES = [
    ServiceSpec("prod", "web", "web", 6, SPOT_STRATEGY),
    ServiceSpec("prod", "api", "api", 4),
    ServiceSpec("prod", "worker", "worker", 3),
]
STANDALONE = {"nightly-etl": "batch"}


@dataclass(frozen=True)
class AlarmSpec:
    """A CloudWatch metric alarm as a team would define it (a single metric, or metric math)."""

    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str  # Average, Sum, Maximum, ... or a percentile such as p95
    threshold: float
    comparison: str
    periods: int
    description: str
    unit: str = "%"
    period: int = 60
    # metric math: (id, namespace, metric, dimensions, stat) per input; "e1" = ``expression`` is the alarm's value
    math: tuple[tuple[str, str, str, dict[str, str], str], ...] = ()
    expression: str = ""


def _ecs_alarm(name: str, service: str, metric: str, threshold: float, comparison: str, periods: int,
               description: str) -> AlarmSpec:
    return AlarmSpec(name, "AWS/ECS", metric, {"ClusterName": "prod", "ServiceName": service}, "Average",
                     threshold, comparison, periods, description)


_WEB_ALB = {"LoadBalancer": "app/prod-web/50dc6c495c0c9188", "TargetGroup": "targetgroup/prod-web/6d0ecf831eec9f09"}
_API_ALB = {"LoadBalancer": "app/prod-api/8f3a7c1e2d4b6a90", "TargetGroup": "targetgroup/prod-api/2b4d6f8a0c1e3a5b"}

ALARMS: dict[str, AlarmSpec] = {a.name: a for a in [
    _ecs_alarm("web-cpu-high", "web", "CPUUtilization", 60, "GreaterThanThreshold", 2,
               "prod/web CPU above 60 % for 2 minutes: add tasks"),
    _ecs_alarm("web-cpu-low", "web", "CPUUtilization", 25, "LessThanThreshold", 15,
               "prod/web CPU below 25 % for 15 minutes: remove a task"),
    _ecs_alarm("web-memory-leak", "web", "MemoryUtilization", 90, "GreaterThanThreshold", 10,
               "prod/web memory above 90 % for 10 minutes: recycle the tasks"),
    AlarmSpec("web-5xx-high", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", _WEB_ALB, "Sum", 50,
              "GreaterThanThreshold", 2, "prod/web answers more than 50 5xx a minute", unit=" 5xx/min"),
    AlarmSpec("api-latency-high", "AWS/ApplicationELB", "TargetResponseTime", _API_ALB, "p95", 0.5,
              "GreaterThanThreshold", 3, "prod/api p95 latency above 0.5 s", unit=" s"),
    AlarmSpec("api-latency-low", "AWS/ApplicationELB", "TargetResponseTime", _API_ALB, "p95", 0.1,
              "LessThanThreshold", 15, "prod/api p95 latency below 0.1 s for 15 minutes", unit=" s"),
    AlarmSpec("api-launch-day", "Releases", "LaunchDay", {"Service": "api"}, "Maximum", 0.5,
              "GreaterThanThreshold", 1, "the release team flips this on launch days", unit=""),
    AlarmSpec("api-requests-backlog-high", "", "", {}, "", 80, "GreaterThanThreshold", 3,
              "prod/api in-flight requests per task above 80", unit=" req/task",
              math=(("m1", "AWS/ApplicationELB", "ActiveConnectionCount", {"LoadBalancer": _API_ALB["LoadBalancer"]},
                     "Sum"),
                    ("m2", "ECS/ContainerInsights", "RunningTaskCount", {"ClusterName": "prod", "ServiceName": "api"},
                     "Average")),
              expression="m1 / m2"),
    AlarmSpec("api-5xx-high", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", _API_ALB, "Sum", 20,
              "GreaterThanThreshold", 2, "prod/api answers more than 20 5xx a minute", unit=" 5xx/min"),
    AlarmSpec("jobs-backlog-high", "", "", {}, "", 120, "GreaterThanThreshold", 2,
              "more than 120 waiting jobs per running worker", unit=" jobs/task",
              math=(("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "prod-jobs"}, "Maximum"),
                    ("m2", "ECS/ContainerInsights", "RunningTaskCount",
                     {"ClusterName": "prod", "ServiceName": "worker"}, "Average")),
              expression="m1 / m2"),
    AlarmSpec("db-connections-high", "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "prod-main"},
              "Maximum", 800, "GreaterThanThreshold", 3, "prod database connections above 800 (no policy names it)",
              unit=""),
]}


def alarm_spec(name: str) -> AlarmSpec:
    """The estate's alarm, or a sensible one for an alarm a policy names that the estate did not foresee."""
    if name in ALARMS:
        return ALARMS[name]
    service = name.split("-", 1)[0]
    lowered = name.lower()
    metric = "MemoryUtilization" if "mem" in lowered else "CPUUtilization"
    low = "low" in lowered
    return _ecs_alarm(name, service, metric, 30 if low else 80, "LessThanThreshold" if low else "GreaterThanThreshold",
                      3, f"{name} (defined by the demo for a policy that names it)")


def put_alarm(spec: AlarmSpec, cloudwatch: Any | None = None) -> None:
    """PutMetricAlarm for a single-metric or metric-math alarm (``cloudwatch``: another account's client)."""
    cloudwatch = cloudwatch or client("cloudwatch")
    common: dict[str, Any] = {
        "AlarmName": spec.name, "AlarmDescription": spec.description, "EvaluationPeriods": spec.periods,
        "DatapointsToAlarm": spec.periods, "Threshold": spec.threshold, "ComparisonOperator": spec.comparison,
        "TreatMissingData": "missing", "ActionsEnabled": True,
    }
    if spec.math:
        metrics: list[dict[str, Any]] = [
            {"Id": mid, "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": metric, "Dimensions": [{"Name": k, "Value": v}
                                                                                  for k, v in dims.items()]},
                "Period": spec.period, "Stat": stat}}
            for mid, ns, metric, dims, stat in spec.math]
        metrics.append({"Id": "e1", "Expression": spec.expression, "Label": spec.description, "ReturnData": True})
        cloudwatch.put_metric_alarm(Metrics=metrics, **common)
        return
    percentile = spec.statistic.startswith("p")
    statistic = {"ExtendedStatistic": spec.statistic} if percentile else {"Statistic": spec.statistic}
    cloudwatch.put_metric_alarm(
        Namespace=spec.namespace, MetricName=spec.metric, Period=spec.period,
        Dimensions=[{"Name": k, "Value": v} for k, v in spec.dimensions.items()], **statistic, **common)


@dataclass
class Estate:
    """What was created, for scenarios and the timeline."""

    clusters: dict[str, str] = field(default_factory=dict)  # name -> ARN
    services: dict[tuple[str, str], str] = field(default_factory=dict)  # (cluster, service) -> ARN
    task_definitions: dict[str, str] = field(default_factory=dict)  # family -> ARN of the current revision
    alarms: dict[str, AlarmSpec] = field(default_factory=dict)
    alarm_owner: dict[str, tuple[str, str]] = field(default_factory=dict)  # alarm -> (cluster, service)
    policies: list[ServicePolicy | TaskPolicy] = field(default_factory=list)
    network: dict[str, Any] = field(default_factory=dict)  # awsvpcConfiguration: subnets, securityGroups, ...
    applied: list[str] = field(default_factory=list)  # "created ServicePolicy prod/web", ...

    def policy(self, cluster: str, name: str) -> ServicePolicy | TaskPolicy | None:
        for policy in self.policies:
            target = policy.metadata.service if isinstance(policy, ServicePolicy) else policy.metadata.family
            if policy.metadata.cluster == cluster and target == name:
                return policy
        return None


class PolicyFileError(Exception):
    """examples/policies.yaml is missing or invalid: the demo cannot run what the README documents."""


def load_policy_file(path: Path) -> list[ServicePolicy | TaskPolicy]:
    """Validated policies, through the same loader ``autopilot validate`` and ``autopilot apply`` use."""
    if not path.is_file():
        raise PolicyFileError(f"{path} does not exist")
    try:
        from autopilot_tools.policyfile import load_policies
    except ImportError:  # pragma: no cover - only before the policy file module existed
        return _fallback_load(path)
    policies, errors = load_policies(path)
    if errors:
        raise PolicyFileError("; ".join(str(e) for e in errors[:5]))
    return list(policies)


def _fallback_load(path: Path) -> list[ServicePolicy | TaskPolicy]:
    import yaml
    from pydantic import TypeAdapter

    from autopilot.models.policy import Policy

    adapter: TypeAdapter[ServicePolicy | TaskPolicy] = TypeAdapter(Policy)
    with open(path, encoding="utf-8") as handle:
        return [adapter.validate_python(doc) for doc in yaml.safe_load_all(handle) if doc]


def apply_policies(store: StateTable, policies: list[ServicePolicy | TaskPolicy], path: Path,
                   now: datetime) -> list[str]:
    """Store the policies by running ``autopilot apply --table TABLE FILE`` itself; returns what it printed.

    The CLI validates again and calls StateTable.put_policy for each policy, exactly as an operator's
    apply does. Without the CLI (an installation without it), put_policy is called directly.
    """
    try:
        from autopilot_tools.cli.main import main
    except ImportError:  # pragma: no cover - the CLI is part of the package
        from autopilot_tools.policyfile import describe

        return [f"{store.put_policy(policy, now)} {describe(policy)}" for policy in policies]
    output, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
        code = main(["apply", "--table", store.name, str(path)])
    if code != 0:
        raise PolicyFileError(f"autopilot apply {path} failed ({code}): {errors.getvalue().strip()}")
    return [line.strip() for line in output.getvalue().splitlines() if line.strip()]


def build(store: StateTable, policies_path: Path, now: datetime) -> Estate:
    """Create the estate on the emulator and apply the policies. Nothing here emits an event."""
    estate = Estate()
    estate.policies = load_policy_file(policies_path)
    ecs, ec2, cw = client("ecs"), client("ec2"), client("cloudwatch")
    backdoor.set_task_transitions_manual()

    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # awsvpc tasks get a private DNS name
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")
               ["Subnet"]["SubnetId"] for n, zone in ((1, "a"), (2, "b"))]
    group = ec2.create_security_group(GroupName="ecs-tasks", Description="ECS tasks", VpcId=vpc)["GroupId"]
    wanted = next((p.spec.network for p in estate.policies if isinstance(p, TaskPolicy) and p.spec.network), None)
    if wanted is not None:  # the emulator's network takes the ids the policy names, so RunTask finds them
        renamed = list(wanted.subnets[: len(subnets)])
        new_group = wanted.securityGroups[0] if wanted.securityGroups else group
        for index, new_subnet in enumerate(renamed):
            backdoor.rename_network(subnets[index], new_subnet, group if index == 0 else "", new_group)
        subnets[: len(renamed)] = renamed
        group = new_group
    estate.network = {"subnets": subnets, "securityGroups": [group], "assignPublicIp": "DISABLED"}
    awsvpc = {"awsvpcConfiguration": estate.network}

    for cluster in ("prod", "batch"):
        estate.clusters[cluster] = ecs.create_cluster(
            clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
            defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
            settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]["clusterArn"]
    for family, definition in TASK_DEFINITIONS.items():
        estate.task_definitions[family] = register_task_definition(family, definition)

    for svc in SERVICES:
        kwargs: dict[str, Any] = {"cluster": svc.cluster, "serviceName": svc.name, "taskDefinition": svc.family,
                                  "desiredCount": svc.desired, "networkConfiguration": awsvpc,
                                  "propagateTags": "SERVICE", "tags": [{"key": "team", "value": svc.name}]}
        if svc.strategy is None:
            kwargs["launchType"] = "FARGATE"
        arn = ecs.create_service(**kwargs)["service"]["serviceArn"]
        update: dict[str, Any] = {"deploymentConfiguration": {
            "maximumPercent": 200, "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": False}}}
        if svc.strategy is not None:  # moto's CreateService drops the strategy; UpdateService keeps it
            update["capacityProviderStrategy"] = svc.strategy
        ecs.update_service(cluster=svc.cluster, service=svc.name, **update)
        if svc.strategy is not None:
            backdoor.use_capacity_providers(svc.cluster, svc.name)
        estate.services[(svc.cluster, svc.name)] = arn

    names = {a for p in estate.policies if isinstance(p, ServicePolicy) for a in p.alarm_names()}
    for policy in estate.policies:
        if isinstance(policy, ServicePolicy):
            for alarm in policy.alarm_names():
                estate.alarm_owner.setdefault(alarm, (policy.metadata.cluster, policy.metadata.service))
    for name in sorted(names | set(ALARMS)):
        spec = alarm_spec(name)
        estate.alarms[name] = spec
        estate.alarm_owner.setdefault(name, (spec.dimensions.get("ClusterName", "prod"),
                                             spec.dimensions.get("ServiceName", name.split("-", 1)[0])))
        put_alarm(spec)
        quiet = spec.threshold * (0.5 if "Greater" in spec.comparison else 1.5)
        cw.set_alarm_state(AlarmName=name, StateValue="OK",
                           StateReason=alarm_reason("OK", round(quiet, 2), spec.threshold, spec.comparison, now),
                           StateReasonData=reason_data(round(quiet, 2), spec.threshold, at=now, period=spec.period,
                                                       statistic=spec.statistic or "Average"))
    estate.applied = apply_policies(store, estate.policies, policies_path, now)
    return estate


def register_task_definition(family: str, spec: dict[str, Any], **changes: Any) -> str:
    """Register a Fargate task definition revision (roles, runtime platform and tags included)."""
    body = json.loads(json.dumps(spec))
    for container in body["containerDefinitions"]:
        for key, value in changes.get("containers", {}).get(container["name"], {}).items():
            container[key] = value
    response = client("ecs").register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        executionRoleArn=_EXECUTION_ROLE, taskRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{family}-task",
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        cpu=body["cpu"], memory=body["memory"], containerDefinitions=body["containerDefinitions"],
        tags=[{"key": "service", "value": family}, {"key": "managed-by", "value": "ci"}])
    return str(response["taskDefinition"]["taskDefinitionArn"])


def state_value(spec: AlarmSpec, state: str, value: float | None, at: datetime) -> dict[str, Any]:
    """The ``state`` object of an alarm event (and what SetAlarmState records)."""
    return {"reason": alarm_reason(state, value, spec.threshold, spec.comparison, at),
            "reasonData": reason_data(value, spec.threshold, at=at, period=spec.period,
                                      statistic=spec.statistic or "Average"),
            "timestamp": cw_time(at), "value": state}
