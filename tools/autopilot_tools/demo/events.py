"""Every event the demo emits, built by changing fields of an AWS-published sample (``aws_events/``).

ECS and CloudWatch send these in production; moto sends none, so the demo plays their part. Shapes
are never invented: each builder copies a published sample and sets the fields that differ.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION

SAMPLES = Path(__file__).resolve().parent / "aws_events"


@cache
def _published(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def published(name: str) -> dict[str, Any]:
    """A fresh copy of a published sample."""
    return copy.deepcopy(_published(name))


def event_id(seed: str) -> str:
    """Deterministic event ids: the same story emits the same ids (duplicates are real duplicates)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ecs-autopilot-demo/{seed}"))


def aws_time(moment: datetime) -> str:
    """``2019-10-02T17:04:40Z``: the envelope's ``time`` format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cw_time(moment: datetime) -> str:
    """``2019-10-02T17:04:40.989+0000``: CloudWatch's state timestamp format."""
    at = moment.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def iso_ms(moment: datetime) -> str:
    """``2020-06-05T12:17:11.696Z``: ECS task timestamps."""
    at = moment.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _envelope(event: dict[str, Any], at: datetime, seed: str, resources: list[str]) -> dict[str, Any]:
    event.update(id=event_id(seed), account=ACCOUNT_ID, region=REGION, time=aws_time(at), resources=resources)
    return event


# ------------------------------------------------------------------------------------------ alarms
def reason_data(value: float | None, threshold: float, *, at: datetime, period: int, statistic: str) -> str:
    """An alarm's ``reasonData`` JSON string, as in the published samples."""
    data: dict[str, Any] = {"version": "1.0", "queryDate": cw_time(at), "startDate": cw_time(at),
                            "statistic": statistic, "period": period,
                            "recentDatapoints": [] if value is None else [value], "threshold": threshold}
    return json.dumps(data, separators=(",", ":"))


def alarm_reason(state: str, value: float | None, threshold: float, comparison: str, at: datetime) -> str:
    """CloudWatch's human ``reason`` sentence for a state change."""
    if state == "INSUFFICIENT_DATA" or value is None:
        return "Insufficient Data: 3 datapoints were unknown."
    stamp = at.strftime("%d/%m/%y %H:%M:%S")
    words = {"GreaterThanThreshold": "greater than", "GreaterThanOrEqualToThreshold": "greater than or equal to",
             "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}[comparison]
    verb = "was" if state == "ALARM" else "was not"
    return (f"Threshold Crossed: 1 out of the last 1 datapoints [{value} ({stamp})] {verb} {words} the threshold "
            f"({threshold}) (minimum 1 datapoint for {'OK -> ALARM' if state == 'ALARM' else 'ALARM -> OK'} "
            "transition).")


def alarm_state_change(alarm: dict[str, Any], *, state: dict[str, Any], previous: dict[str, Any],
                       at: datetime) -> dict[str, Any]:
    """EventBridge "CloudWatch Alarm State Change" for a MetricAlarm as DescribeAlarms returns it."""
    if not alarm.get("MetricName"):
        raise ValueError(f"{alarm['AlarmName']} is a metric-math alarm; the demo drives single-metric alarms only")
    event = published("cloudwatch-alarm-state-change-single-metric")
    detail = event["detail"]
    detail["alarmName"] = alarm["AlarmName"]
    detail["configuration"]["description"] = alarm.get("AlarmDescription", "")
    metric = detail["configuration"]["metrics"][0]
    metric["id"] = event_id(f"metric/{alarm['AlarmName']}")
    metric["metricStat"]["metric"] = {
        "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
        "name": alarm["MetricName"], "namespace": alarm["Namespace"],
    }
    metric["metricStat"]["period"] = alarm["Period"]
    metric["metricStat"]["stat"] = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
    detail["state"] = state
    detail["previousState"] = previous
    return _envelope(event, at, f"alarm/{alarm['AlarmName']}/{state['value']}/{state['timestamp']}",
                     [alarm["AlarmArn"]])


def alarm_action_payload(alarm: dict[str, Any], *, state: dict[str, Any], previous: dict[str, Any],
                         at: datetime) -> dict[str, Any]:
    """The payload CloudWatch sends when a Lambda function is the alarm's action (no EventBridge)."""
    event = published("cloudwatch-alarm-lambda-action-payload-metric-alarm")
    event.update(alarmArn=alarm["AlarmArn"], accountId=ACCOUNT_ID, region=REGION, time=cw_time(at))
    data = event["alarmData"]
    data["alarmName"] = alarm["AlarmName"]
    data["state"] = state
    data["previousState"] = previous
    data["configuration"]["description"] = alarm.get("AlarmDescription", "")
    metric = data["configuration"]["metrics"][0]
    metric["id"] = event_id(f"metric/{alarm['AlarmName']}")
    metric["metricStat"]["metric"] = {
        "namespace": alarm["Namespace"], "name": alarm["MetricName"],
        "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
    }
    metric["metricStat"].update(period=alarm["Period"], stat=alarm.get("Statistic") or alarm.get("ExtendedStatistic"))
    metric["metricStat"].pop("unit", None)
    return event


# ------------------------------------------------------------------------------------- deployments
def deployment_state_change(service_arn: str, deployment_id: str, event_name: str, *, at: datetime,
                            reason: str | None = None, rollback: bool = False) -> dict[str, Any]:
    """ECS "ECS Deployment State Change" (IN_PROGRESS, COMPLETED or FAILED)."""
    sample = {
        "SERVICE_DEPLOYMENT_IN_PROGRESS": ("ecs-deployment-state-change-in-progress-rollback" if rollback
                                           else "ecs-deployment-state-change-in-progress-initial"),
        "SERVICE_DEPLOYMENT_COMPLETED": "ecs-deployment-state-change-completed",
        "SERVICE_DEPLOYMENT_FAILED": "ecs-deployment-state-change-failed-circuit-breaker",
    }[event_name]
    event = published(sample)
    detail = event["detail"]
    detail["deploymentId"] = deployment_id
    detail["updatedAt"] = aws_time(at)
    default_reason = {
        "SERVICE_DEPLOYMENT_IN_PROGRESS": f"ECS deployment {deployment_id} in progress.",
        "SERVICE_DEPLOYMENT_COMPLETED": f"ECS deployment {deployment_id} completed.",
        "SERVICE_DEPLOYMENT_FAILED": "ECS deployment circuit breaker: task failed to start.",
    }[event_name]
    if not rollback:
        detail["reason"] = reason or default_reason
    return _envelope(event, at, f"deployment/{deployment_id}/{event_name}", [service_arn])


# ------------------------------------------------------------------------------------ service actions
def spot_placement_failure(service_arn: str, cluster_arn: str, *, at: datetime, seed: str) -> dict[str, Any]:
    """ECS "ECS Service Action" SERVICE_TASK_PLACEMENT_FAILURE for missing FARGATE_SPOT capacity."""
    event = published("ecs-service-action-service-task-placement-failure-fargate-spot")
    detail = event["detail"]
    detail["clusterArn"] = cluster_arn
    detail["capacityProviderArns"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:capacity-provider/FARGATE_SPOT"]
    detail["createdAt"] = iso_ms(at)
    return _envelope(event, at, f"placement/{seed}", [service_arn])


# ------------------------------------------------------------------------------------------- tasks
def task_state_change(task: dict[str, Any], *, at: datetime, version: int) -> dict[str, Any]:
    """ECS "ECS Task State Change" whose ``detail`` mirrors a DescribeTasks Task (as ECS documents).

    Built from the published Fargate RUNNING sample; a stopped task takes the stop fields the
    published STOPPED sample carries (stopCode, stoppedReason, stoppedAt, exitCode, ...).
    """
    event = published("ecs-task-state-change-running-fargate-2025")
    detail = event["detail"]
    stopped_sample = published("ecs-task-state-change-stopped-user-initiated-ec2-service")["detail"]
    detail["attachments"][0]["details"][0]["value"] = task.get("subnet", "subnet-0d0eab1bb38d5ca64")
    detail["capacityProviderName"] = task.get("capacityProviderName", "FARGATE")
    detail["clusterArn"] = task["clusterArn"]
    detail["cpu"] = str(task["cpu"])
    detail["memory"] = str(task["memory"])
    detail["group"] = task["group"]
    detail["launchType"] = "FARGATE"
    detail["taskArn"] = task["taskArn"]
    detail["taskDefinitionArn"] = task["taskDefinitionArn"]
    detail["createdAt"] = iso_ms(task["createdAt"])
    detail["startedAt"] = iso_ms(task["startedAt"]) if task.get("startedAt") else None
    detail["overrides"] = {"containerOverrides": [{"name": c["name"]} for c in task["containers"]]}
    if task.get("overrides"):
        detail["overrides"] = task["overrides"]
    if task.get("startedBy"):
        detail["startedBy"] = task["startedBy"]
    detail["lastStatus"] = task["lastStatus"]
    detail["desiredStatus"] = task.get("desiredStatus", task["lastStatus"])
    detail["updatedAt"] = iso_ms(at)
    detail["version"] = version
    template = detail["containers"][0]
    containers = []
    for spec in task["containers"]:
        container = copy.deepcopy(template)
        container.update(
            name=spec["name"], image=spec["image"], lastStatus=task["lastStatus"],
            taskArn=task["taskArn"],
            containerArn=f"{task['taskArn'].replace(':task/', ':container/')}/{event_id(spec['name'])}",
            runtimeId=f"{task['taskArn'].rsplit('/', 1)[1]}-{int(event_id(spec['name'])[:8], 16)}",
            cpu=str(spec.get("cpu", 0)), memory=str(spec.get("memory", "")),
        )
        if "exitCode" in spec:
            container["exitCode"] = spec["exitCode"]
        if spec.get("reason"):
            container["reason"] = spec["reason"]
        if not task.get("startedAt"):
            container.pop("imageDigest", None)
            container.pop("runtimeId", None)
        containers.append(container)
    detail["containers"] = containers
    if task["lastStatus"] == "STOPPED":
        detail["connectivity"] = stopped_sample["connectivity"]
        detail["stopCode"] = task["stopCode"]
        detail["stoppedReason"] = task["stoppedReason"]
        detail["stoppingAt"] = iso_ms(at)
        detail["stoppedAt"] = iso_ms(at)
        detail["executionStoppedAt"] = iso_ms(at)
        detail["attachments"][0]["status"] = "DELETED"
    if detail["startedAt"] is None:
        for key in ("startedAt", "pullStartedAt", "pullStoppedAt", "connectivityAt"):
            detail.pop(key, None)
    return _envelope(event, at, f"task/{task['taskArn']}/{version}", [task["taskArn"]])
