"""A stand-in for ECS's data plane: deployments that progress, tasks that fail, events ECS would send.

moto keeps ECS's control-plane records (services, desired counts, task definitions, RunTask) but
starts no tasks and runs no deployments. This module watches what the handlers change through the
real API (a new task definition, a forced deployment, a new strategy, a task run by the restarter)
and plays ECS's part on the virtual clock: a deployment of a healthy revision completes after a
couple of minutes; a revision whose image does not exist fails to start; a crashing one starts and
exits; a failing standalone task stops with a non-zero exit. Each outcome is an event built from a
published sample, queued for the moment ECS would send it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from autopilot.aws.clients import client
from autopilot_tools.demo import backdoor
from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION
from autopilot_tools.demo.events import deployment_state_change, event_id, task_state_change

DEPLOYMENT_EVENT_DELAY = 5  # seconds between UpdateService and ECS's IN_PROGRESS event
HEALTHY_DEPLOYMENT_SECONDS = 150  # a healthy rolling deployment reaches steady state
IMAGE_PULL_EVERY = 30  # a task of a revision whose image is missing fails to start every ... seconds
CRASH_EVERY = 45  # a crashing revision's task starts, runs briefly, exits every ... seconds


class Behaviour(StrEnum):
    """How the tasks of a task definition revision behave once ECS starts them."""

    HEALTHY = "healthy"
    IMAGE_MISSING = "image-missing"  # CannotPullContainerError: never starts
    CRASHES = "crashes"  # starts, then the essential container exits 1
    FAILS = "fails"  # standalone: runs a while, then exits 1


@dataclass(order=True)
class Emission:
    """An event ECS will send at ``due`` (unless the condition no longer holds by then)."""

    due: datetime
    seq: int
    event: dict[str, Any] = field(compare=False)
    note: str = field(compare=False)
    still_relevant: Callable[[], bool] = field(compare=False, default=lambda: True)
    on_emit: Callable[[], None] | None = field(compare=False, default=None)


@dataclass
class Tracked:
    """What the data plane last saw of a service."""

    cluster: str
    service: str
    arn: str
    primary_id: str
    task_definition: str
    strategy: list[dict[str, Any]]
    deployments: int = 0


def revision(arn: str) -> str:
    """``web:3`` from a task definition ARN."""
    return arn.rsplit("/", 1)[-1]


class EcsDataPlane:
    def __init__(self, clock: Callable[[], datetime], cluster_arns: dict[str, str]) -> None:
        self.clock = clock
        self.cluster_arns = cluster_arns
        self.behaviour: dict[str, Behaviour] = {}  # task definition ARN -> behaviour
        self.standalone_behaviour: dict[str, tuple[Behaviour, int]] = {}  # family -> (behaviour, run seconds)
        self.tracked: dict[tuple[str, str], Tracked] = {}
        self.known_tasks: set[str] = set()
        self.task_started: dict[str, datetime] = {}
        self._queue: list[Emission] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._definitions: dict[str, dict[str, Any]] = {}

    def definition(self, arn: str) -> dict[str, Any]:
        """DescribeTaskDefinition, remembered (a revision never changes)."""
        if arn not in self._definitions:
            found = client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self._definitions[arn] = self._definitions[found["taskDefinitionArn"]] = found
        return self._definitions[arn]

    # ------------------------------------------------------------------ setup
    def adopt(self, services: dict[tuple[str, str], str]) -> None:
        """Take the estate's services as running in steady state: one COMPLETED deployment each."""
        ecs = client("ecs")
        for (cluster, name), arn in services.items():
            raw = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            deployment = dict(backdoor.deployments(cluster, name)[0])
            deployment.update(rolloutState="COMPLETED", runningCount=raw["desiredCount"], pendingCount=0,
                              desiredCount=raw["desiredCount"],
                              rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
                              createdAt=self.clock() - timedelta(days=2), updatedAt=self.clock() - timedelta(days=2))
            if raw.get("capacityProviderStrategy"):
                deployment["capacityProviderStrategy"] = raw["capacityProviderStrategy"]
            backdoor.set_deployments(cluster, name, [deployment])
            self.tracked[(cluster, name)] = Tracked(cluster, name, arn, deployment["id"], raw["taskDefinition"],
                                                    list(raw.get("capacityProviderStrategy") or []))

    # ------------------------------------------------------------------ what the story does
    def deploy(self, cluster: str, service: str, task_definition: str, behaviour: Behaviour) -> None:
        """A CI pipeline points the service at a new revision (UpdateService, through the API)."""
        self.behaviour[task_definition] = behaviour
        client("ecs").update_service(cluster=cluster, service=service, taskDefinition=task_definition)

    def stop_service_tasks(self, cluster: str, service: str, count: int, *, stop_code: str, reason: str,
                           exit_code: int | None, container_reason: str | None = None,
                           capacity_provider: str = "FARGATE", container: str | None = None,
                           delay: float = 0, summary: str = "stopped") -> None:
        """``count`` running tasks of the service's current revision stop now (OOM kill, Spot reclaim...)."""
        track = self.tracked[(cluster, service)]
        for index in range(count):
            self._queue_task_stop(track, track.task_definition, stop_code=stop_code, reason=reason,
                                  exit_code=exit_code, container_reason=container_reason,
                                  capacity_provider=capacity_provider, container=container,
                                  delay=delay + index * 2, started_ago=3600 * 5, summary=summary)

    def run_standalone(self, cluster: str, family: str, behaviour: Behaviour, run_seconds: int,
                       network: dict[str, Any]) -> str:
        """EventBridge Scheduler starts the nightly task (RunTask, through the API)."""
        self.standalone_behaviour[family] = (behaviour, run_seconds)
        task = client("ecs").run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                                      startedBy="events-rule/nightly-etl",
                                      networkConfiguration={"awsvpcConfiguration": network})["tasks"][0]
        self.known_tasks.add(task["taskArn"])
        self.task_started[task["taskArn"]] = self.clock()
        self._queue_standalone_failure(task, run_seconds)
        return str(task["taskArn"])

    # ------------------------------------------------------------------ watching the control plane
    def observe(self, services: dict[str, dict[str, Any]]) -> list[str]:
        """React to what changed since the last look (``services``: DescribeServices by "cluster/name")."""
        notes: list[str] = []
        for (cluster, name), track in self.tracked.items():
            raw = services.get(f"{cluster}/{name}")
            if raw is not None:
                notes += self._service_changed(track, raw)
        if self.standalone_behaviour:
            notes += self._standalone_tasks()
        return notes

    def _service_changed(self, track: Tracked, raw: dict[str, Any]) -> list[str]:
        current = backdoor.deployments(track.cluster, track.service)
        primary = current[0] if current else {}
        strategy = list(raw.get("capacityProviderStrategy") or [])
        new_definition = raw["taskDefinition"] != track.task_definition
        forced = bool(primary) and primary.get("id") != track.primary_id  # forceNewDeployment renamed it
        if primary and primary.get("desiredCount") != raw["desiredCount"]:
            for deployment in current:
                if deployment["status"] == "PRIMARY":
                    deployment.update(desiredCount=raw["desiredCount"], runningCount=raw["desiredCount"])
            backdoor.set_deployments(track.cluster, track.service, current)
        if not (new_definition or forced):
            return []
        now = self.clock()
        deployment_id = f"ecs-svc/{9000000000000000000 + next(self._ids) * 7919}"
        new = {
            "id": deployment_id, "status": "PRIMARY", "taskDefinition": raw["taskDefinition"],
            "desiredCount": raw["desiredCount"], "pendingCount": raw["desiredCount"], "runningCount": 0,
            "failedTasks": 0, "createdAt": now, "updatedAt": now, "launchType": raw.get("launchType"),
            "platformFamily": "FARGATE", "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        }
        if strategy:
            new["capacityProviderStrategy"] = strategy
        previous = []
        for deployment in current:
            if deployment.get("status") == "PRIMARY":
                deployment = dict(deployment, status="ACTIVE", id=track.primary_id if forced else deployment["id"])
            previous.append(deployment)
        backdoor.set_deployments(track.cluster, track.service, [new, *previous])
        behaviour = self.behaviour.get(raw["taskDefinition"], Behaviour.HEALTHY)
        why = "new task definition" if new_definition else "forced new deployment"
        track.primary_id, track.task_definition, track.strategy = deployment_id, raw["taskDefinition"], strategy
        track.deployments += 1
        self._emit(now + timedelta(seconds=DEPLOYMENT_EVENT_DELAY),
                   deployment_state_change(track.arn, deployment_id, "SERVICE_DEPLOYMENT_IN_PROGRESS",
                                           at=now + timedelta(seconds=DEPLOYMENT_EVENT_DELAY)),
                   f"deployment of {revision(raw['taskDefinition'])} started")
        if behaviour is Behaviour.HEALTHY:
            done = now + timedelta(seconds=HEALTHY_DEPLOYMENT_SECONDS)
            self._emit(done, deployment_state_change(track.arn, deployment_id, "SERVICE_DEPLOYMENT_COMPLETED", at=done),
                       f"{revision(raw['taskDefinition'])} reached steady state",
                       still_relevant=self._is_primary(track, deployment_id),
                       on_emit=lambda: self._complete(track, deployment_id))
        elif behaviour is Behaviour.IMAGE_MISSING:
            self._repeat_failures(track, deployment_id, raw["taskDefinition"], IMAGE_PULL_EVERY, start_failure=True)
        elif behaviour is Behaviour.CRASHES:
            self._repeat_failures(track, deployment_id, raw["taskDefinition"], CRASH_EVERY, start_failure=False)
        return [f"ECS starts deployment {deployment_id} of {track.cluster}/{track.service} "
                f"({revision(raw['taskDefinition'])}, {why})"]

    def _is_primary(self, track: Tracked, deployment_id: str) -> Callable[[], bool]:
        return lambda: track.primary_id == deployment_id

    def _complete(self, track: Tracked, deployment_id: str) -> None:
        current = backdoor.deployments(track.cluster, track.service)
        primary = next((d for d in current if d["id"] == deployment_id), None)
        if primary is None:
            return
        primary.update(rolloutState="COMPLETED", runningCount=primary["desiredCount"], pendingCount=0,
                       updatedAt=self.clock(), rolloutStateReason=f"ECS deployment {deployment_id} completed.")
        backdoor.set_deployments(track.cluster, track.service, [primary])

    def _repeat_failures(self, track: Tracked, deployment_id: str, task_definition: str, every: int,
                         start_failure: bool, horizon: int = 40) -> None:
        """Queue the failures ECS would report while this deployment stays PRIMARY (it keeps retrying)."""
        definition = self.definition(task_definition)
        image = next(c["image"] for c in definition["containerDefinitions"] if c.get("essential", True))
        for n in range(1, horizon + 1):
            if start_failure:
                reason = (f"CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to "
                          f"resolve ref {image}: {image}: not found")
                self._queue_task_stop(track, task_definition, stop_code="TaskFailedToStart", reason=reason,
                                      exit_code=None, delay=every * n, started_ago=None,
                                      relevant=self._is_primary(track, deployment_id), started_by=deployment_id,
                                      summary=f"failed to start: CannotPullContainerError ({image.rsplit('/', 1)[-1]}"
                                              " not found)")
            else:
                self._queue_task_stop(track, task_definition, stop_code="EssentialContainerExited",
                                      reason="Essential container in task exited", exit_code=1, delay=every * n,
                                      started_ago=20, relevant=self._is_primary(track, deployment_id),
                                      started_by=deployment_id, summary="started, then exited 1 after 20s")

    def _queue_task_stop(self, track: Tracked, task_definition: str, *, stop_code: str, reason: str,
                         exit_code: int | None, delay: float, started_ago: float | None,
                         container_reason: str | None = None, capacity_provider: str = "FARGATE",
                         container: str | None = None, relevant: Callable[[], bool] | None = None,
                         started_by: str | None = None, summary: str = "stopped") -> None:
        due = self.clock() + timedelta(seconds=delay)
        definition = self.definition(task_definition)
        number = next(self._ids)
        task_id = event_id(f"{track.cluster}/{track.service}/{number}").replace("-", "")
        essential = container or next(c["name"] for c in definition["containerDefinitions"] if c.get("essential", True))
        containers = []
        for spec in definition["containerDefinitions"]:
            entry: dict[str, Any] = {"name": spec["name"], "image": spec["image"], "cpu": spec.get("cpu", 0),
                                     "memory": spec.get("memory", "")}
            if exit_code is not None:
                entry["exitCode"] = exit_code if spec["name"] == essential else 143
            if container_reason and spec["name"] == essential:
                entry["reason"] = container_reason
            containers.append(entry)
        task = {
            "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/{track.cluster}/{task_id}",
            "clusterArn": self.cluster_arns[track.cluster], "taskDefinitionArn": task_definition,
            "group": f"service:{track.service}", "startedBy": started_by or track.primary_id,
            "cpu": definition.get("cpu", "256"), "memory": definition.get("memory", "512"),
            "capacityProviderName": capacity_provider, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "createdAt": due - timedelta(seconds=(started_ago or 0) + 25),
            "startedAt": due - timedelta(seconds=started_ago) if started_ago is not None else None,
            "stopCode": stop_code, "stoppedReason": reason, "containers": containers,
        }
        self._emit(due, task_state_change(task, at=due, version=6),
                   f"{revision(task_definition)} task {task_id[:8]} {summary} [{stop_code}]",
                   still_relevant=relevant or (lambda: True))

    # ------------------------------------------------------------------ standalone tasks
    def _standalone_tasks(self) -> list[str]:
        notes: list[str] = []
        ecs = client("ecs")
        for cluster in ("batch",):
            arns = ecs.list_tasks(cluster=cluster).get("taskArns", [])
            new = [a for a in arns if a not in self.known_tasks]
            if not new:
                continue
            for task in ecs.describe_tasks(cluster=cluster, tasks=new, include=["TAGS"])["tasks"]:
                self.known_tasks.add(task["taskArn"])
                family = revision(task["taskDefinitionArn"]).split(":")[0]
                behaviour, seconds = self.standalone_behaviour.get(family, (Behaviour.HEALTHY, 0))
                self.task_started[task["taskArn"]] = self.clock()
                short_id = task["taskArn"].rsplit("/", 1)[1][:8]
                notes.append(f"ECS starts task {short_id} of {revision(task['taskDefinitionArn'])}"
                             f" (startedBy {task.get('startedBy') or '-'})")
                if behaviour is Behaviour.FAILS:
                    self._queue_standalone_failure(task, seconds)
        return notes

    def _queue_standalone_failure(self, task: dict[str, Any], seconds: int) -> None:
        due = self.clock() + timedelta(seconds=seconds)
        definition = self.definition(task["taskDefinitionArn"])
        event_task = {
            "taskArn": task["taskArn"], "clusterArn": task["clusterArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "group": task.get("group") or f"family:{definition['family']}", "startedBy": task.get("startedBy"),
            "cpu": definition.get("cpu"), "memory": definition.get("memory"),
            "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
            "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "overrides": task.get("overrides") or None,
            "createdAt": self.clock() - timedelta(seconds=20), "startedAt": self.clock(),
            "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
            "containers": [{"name": c["name"], "image": c["image"], "cpu": c.get("cpu", 0), "memory": c.get("memory"),
                            "exitCode": 1} for c in definition["containerDefinitions"]],
            "subnet": _subnet(task),
        }

        def stop() -> None:
            client("ecs").stop_task(cluster=task["clusterArn"], task=task["taskArn"],
                                    reason="Essential container in task exited")

        self._emit(due, task_state_change(event_task, at=due, version=5),
                   f"{revision(task['taskDefinitionArn'])} task {task['taskArn'].rsplit('/', 1)[1][:8]} exited 1 "
                   f"after {seconds}s", on_emit=stop)

    # ------------------------------------------------------------------ the outbox
    def _emit(self, due: datetime, event: dict[str, Any], note: str, still_relevant: Callable[[], bool] | None = None,
              on_emit: Callable[[], None] | None = None) -> None:
        heapq.heappush(self._queue, Emission(due, next(self._seq), event, note, still_relevant or (lambda: True),
                                             on_emit))

    def next_due(self) -> datetime | None:
        return self._queue[0].due if self._queue else None

    def pop_due(self, now: datetime) -> Emission | None:
        """The next event due by ``now`` that still applies (a replaced deployment's failures are dropped)."""
        while self._queue and self._queue[0].due <= now:
            emission = heapq.heappop(self._queue)
            if emission.still_relevant():
                if emission.on_emit is not None:
                    emission.on_emit()
                return emission
        return None


def _subnet(task: dict[str, Any]) -> str:
    for attachment in task.get("attachments") or []:
        for detail in attachment.get("details") or []:
            if detail.get("name") == "subnetId":
                return str(detail["value"])
    return "subnet-0d0eab1bb38d5ca64"
