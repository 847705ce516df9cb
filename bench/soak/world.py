"""The soak's simulated estate: ECS (services, deployments, tasks, task definitions), CloudWatch alarms driven by
demand curves, SNS and SQS, and the events ECS and CloudWatch send, on a simulated clock.

The fake services answer the boto3 calls the code makes (``bench/soak/aws.py`` routes them here), with the
answer shapes botocore returns (datetimes as datetimes) and AWS's errors. The data plane plays ECS's part:

- a service's tasks follow its desired count and its PRIMARY deployment; a new task definition, a forced
  deployment or a new capacity strategy starts a deployment (IN_PROGRESS, then COMPLETED once the new
  tasks ran healthy a while, the old ones drained); the circuit breaker (on some services) fails a
  deployment after max(3, min(200, ceil(desired/2))) failed tasks and, with rollback, returns to the last
  completed one, as ECS does;
- a revision's tasks behave as the revision does: healthy; crash (the essential container exits 1 after
  30-180 s); oom (OutOfMemoryError, exit 137, until a revision with enough memory); image (never starts:
  CannotPullContainerError). Failed starts are retried with growing delays, as ECS does;
- Spot waves interrupt FARGATE_SPOT tasks (SpotInterruption) and report placement failures;
- users deploy (mostly healthy revisions, some bad), operators push desired counts out of bounds now and
  then, batch jobs (standalone RunTask) run and fail at their family's rate;
- every task stop, deployment change, placement failure and alarm transition becomes an EventBridge event
  built from a published sample (``autopilot_tools.demo.events``), with ``detail.version``, delivered late,
  twice or out of order now and then.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from autopilot_tools.demo.events import (
    alarm_action_payload,
    alarm_reason,
    alarm_state_change,
    cw_time,
    deployment_state_change,
    reason_data,
    spot_placement_failure,
    task_state_change,
)
from bench.soak.aws import ACCOUNT, REGION, Aws, client_error

ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
TD_BEHAVIOURS = ("healthy", "crash", "oom", "image")


# ------------------------------------------------------------------------------------------ the clock
class Clock:
    """Events at simulated times; ``run_until`` executes them in order (ties in insertion order)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start
        self._heap: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), action))

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        self.at(self.now + timedelta(seconds=seconds), action)

    def run_until(self, end: datetime, on_step: Callable[[datetime], None] | None = None) -> None:
        while self._heap and self._heap[0][0] <= end:
            when, _, action = heapq.heappop(self._heap)
            self.now = when
            action()
            if on_step is not None:
                on_step(when)
        self.now = end


# ------------------------------------------------------------------------------------------ ECS model
@dataclass
class TaskDef:
    arn: str
    family: str
    revision: int
    behaviour: str  # healthy | crash | oom | image
    body: dict[str, Any]
    tags: list[dict[str, str]]
    needs_memory: int = 0  # oom: the task memory (MiB) at which it stops being OOM-killed
    by_autopilot: bool = False
    status: str = "ACTIVE"


@dataclass
class Task:
    id: str
    arn: str
    td: str
    deployment: str
    provider: str
    group: str
    started_by: str
    created: datetime
    started: datetime | None = None
    version: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    subnet: str = "subnet-0abc"


@dataclass
class Deployment:
    id: str
    td: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    rollout_state: str  # IN_PROGRESS | COMPLETED | FAILED
    created: datetime
    updated: datetime
    failed_tasks: int = 0
    healthy_since: datetime | None = None


@dataclass
class Service:
    cluster: str
    name: str
    desired: int
    deployments: list[Deployment]
    strategy: list[dict[str, Any]]
    breaker: bool
    breaker_rollback: bool
    tasks: dict[str, Task] = field(default_factory=dict)
    poisoned: bool = False  # every UpdateService is refused (as a missing IAM grant would)
    start_failures: int = 0
    converge_due: datetime | None = None

    @property
    def arn(self) -> str:
        return f"{ARN}:service/{self.cluster}/{self.name}"

    @property
    def primary(self) -> Deployment:
        return self.deployments[0]


@dataclass
class Alarm:
    name: str
    service: Service
    threshold: float
    comparison: str  # GreaterThanThreshold | LessThanThreshold
    to_alarm: int  # consecutive breaching datapoints to go to ALARM
    state: str = "OK"
    updated: datetime | None = None
    reason_data: str = ""
    breaching: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.name}"

    def raw(self) -> dict[str, Any]:
        return {
            "AlarmName": self.name, "AlarmArn": self.arn, "AlarmDescription": "", "StateValue": self.state,
            "StateReason": "soak", "StateReasonData": self.reason_data, "StateUpdatedTimestamp": self.updated,
            "MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average", "Period": 60,
            "EvaluationPeriods": self.to_alarm, "DatapointsToAlarm": self.to_alarm, "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "Dimensions": [{"Name": "ClusterName", "Value": self.service.cluster},
                           {"Name": "ServiceName", "Value": self.service.name}],
        }


# ------------------------------------------------------------------------------------------ the world
class World:
    """The estate's AWS side. ``deliver`` (set by the runtime) hands each event to its function's trigger."""

    def __init__(self, aws: Aws, clock: Clock, rng: random.Random) -> None:
        self.aws, self.clock, self.rng = aws, clock, rng
        self.services: dict[tuple[str, str], Service] = {}
        self.taskdefs: dict[str, TaskDef] = {}
        self.families: dict[str, list[str]] = defaultdict(list)  # family -> ARNs by revision
        self.alarms: dict[str, Alarm] = {}
        self.cpu: dict[tuple[str, str], list[tuple[datetime, float]]] = defaultdict(list)
        self.demand: dict[tuple[str, str], Callable[[datetime], float]] = {}
        self.standalone: dict[str, Task] = {}  # task id -> running standalone task
        self.run_tokens: dict[str, list[str]] = {}  # RunTask clientToken -> task ARNs
        self.family_failure: dict[str, float] = {}  # standalone family -> probability a run fails
        self.published: list[dict[str, Any]] = []  # SNS messages
        self.queues: dict[str, Queue] = {}
        self.dead_letters: list[dict[str, Any]] = []
        self.deliver: Callable[[str, dict[str, Any]], None] = lambda function, event: None
        self.ids = itertools.count(1)
        self.registered: list[TaskDef] = []  # RegisterTaskDefinition calls that created a revision
        self.updates: list[dict[str, Any]] = []  # UpdateService calls of the code: what the invariants check
        self.sns_down_until: datetime | None = None
        self.events_emitted: Counter[str] = Counter()

    # ---------------------------------------------------------------- ids
    def new_id(self) -> str:
        return f"{next(self.ids):032x}"

    # ---------------------------------------------------------------- task definitions
    def register(self, family: str, behaviour: str, *, memory: int = 1024, cpu: int = 512,
                 tags: list[dict[str, str]] | None = None, body: dict[str, Any] | None = None,
                 by_autopilot: bool = False, needs_memory: int = 0) -> TaskDef:
        revision = len(self.families[family]) + 1
        arn = f"{ARN}:task-definition/{family}:{revision}"
        if body is None:
            body = {"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                    "cpu": str(cpu), "memory": str(memory),
                    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{family}-execution",
                    "containerDefinitions": [
                        {"name": "app", "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{family}:{revision}",
                         "essential": True, "memoryReservation": max(128, memory // 2),
                         "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]}]}
        body = json.loads(json.dumps(body))
        body.update(taskDefinitionArn=arn, revision=revision, status="ACTIVE", compatibilities=["EC2", "FARGATE"],
                    registeredAt=self.clock.now, registeredBy=f"arn:aws:iam::{ACCOUNT}:role/soak")
        td = TaskDef(arn=arn, family=family, revision=revision, behaviour=behaviour, body=body, tags=list(tags or []),
                     needs_memory=needs_memory, by_autopilot=by_autopilot)
        self.taskdefs[arn] = td
        self.families[family].append(arn)
        return td

    def taskdef(self, name: str) -> TaskDef | None:
        """By ARN or ``family:revision`` or ``family`` (the latest ACTIVE)."""
        if name in self.taskdefs:
            return self.taskdefs[name]
        tail = name.rsplit("/", 1)[-1]
        family, _, revision = tail.partition(":")
        arns = self.families.get(family) or []
        if revision.isdigit():
            index = int(revision) - 1
            return self.taskdefs[arns[index]] if 0 <= index < len(arns) else None
        active = [a for a in arns if self.taskdefs[a].status == "ACTIVE"]
        return self.taskdefs[active[-1]] if active else None

    # ---------------------------------------------------------------- services
    def add_service(self, cluster: str, name: str, desired: int, td: TaskDef, strategy: list[dict[str, Any]],
                    breaker: bool, breaker_rollback: bool) -> Service:
        now = self.clock.now
        deployment = Deployment(id=f"ecs-svc/{self.new_id()[:19]}", td=td.arn, status="PRIMARY",
                                rollout_state="COMPLETED", created=now, updated=now, healthy_since=now)
        service = Service(cluster=cluster, name=name, desired=desired, deployments=[deployment], strategy=strategy,
                          breaker=breaker, breaker_rollback=breaker_rollback)
        self.services[(cluster, name)] = service
        for _ in range(desired):
            task = self._new_task(service, deployment)
            task.started = now
        return service

    def service_view(self, service: Service) -> dict[str, Any]:
        running = sum(1 for t in service.tasks.values() if t.started is not None)
        pending = len(service.tasks) - running
        return {
            "serviceArn": service.arn, "serviceName": service.name, "clusterArn": f"{ARN}:cluster/{service.cluster}",
            "status": "ACTIVE", "desiredCount": service.desired, "runningCount": running, "pendingCount": pending,
            "taskDefinition": service.primary.td, "capacityProviderStrategy": [dict(s) for s in service.strategy],
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": service.breaker,
                                                                     "rollback": service.breaker_rollback},
                                        "maximumPercent": 200, "minimumHealthyPercent": 100},
            "deployments": [{"id": d.id, "status": d.status, "taskDefinition": d.td, "rolloutState": d.rollout_state,
                             "desiredCount": service.desired if d.status == "PRIMARY" else 0,
                             "runningCount": sum(1 for t in service.tasks.values()
                                                 if t.deployment == d.id and t.started is not None),
                             "createdAt": d.created, "updatedAt": d.updated}
                            for d in service.deployments if d.status != "INACTIVE"],
        }

    def set_desired(self, service: Service, desired: int) -> None:
        service.desired = max(0, desired)
        self.converge_soon(service)

    def deploy(self, service: Service, td: str, *, strategy: list[dict[str, Any]] | None = None,
               rollback: bool = False) -> Deployment:
        now = self.clock.now
        for old in service.deployments:
            if old.status == "PRIMARY":
                old.status = "ACTIVE"  # its rolloutState stays as it was, as ECS reports it
        if strategy is not None:
            service.strategy = [dict(s) for s in strategy]
        new = Deployment(id=f"ecs-svc/{self.new_id()[:19]}", td=td, status="PRIMARY", rollout_state="IN_PROGRESS",
                         created=now, updated=now)
        service.deployments.insert(0, new)
        service.start_failures = 0
        self.emit_after(5 + 10 * self.rng.random(), "rollout",
                        lambda: deployment_state_change(service.arn, new.id, "SERVICE_DEPLOYMENT_IN_PROGRESS",
                                                        at=self.clock.now, rollback=rollback))
        self.converge_soon(service)
        return new

    def converge_soon(self, service: Service, seconds: float | None = None) -> None:
        due = self.clock.now + timedelta(seconds=seconds if seconds is not None else 3 + 7 * self.rng.random())
        if service.converge_due is not None and service.converge_due <= due and service.converge_due >= self.clock.now:
            return
        service.converge_due = due
        self.clock.at(due, lambda: self._converge(service))

    def _provider(self, service: Service, index: int) -> str:
        names = [s["capacityProvider"] for s in service.strategy] or ["FARGATE"]
        if "FARGATE_SPOT" not in names:
            return names[0]
        base = sum(int(s.get("base", 0)) for s in service.strategy if s["capacityProvider"] != "FARGATE_SPOT")
        if index < base:
            return "FARGATE"
        weights = {s["capacityProvider"]: int(s.get("weight", 1)) for s in service.strategy}
        spot = weights.get("FARGATE_SPOT", 0) / max(1, sum(weights.values()))
        return "FARGATE_SPOT" if self.rng.random() < spot else "FARGATE"

    def _new_task(self, service: Service, deployment: Deployment) -> Task:
        task_id = self.new_id()
        task = Task(id=task_id, arn=f"{ARN}:task/{service.cluster}/{task_id}", td=deployment.td,
                    deployment=deployment.id, provider=self._provider(service, len(service.tasks)),
                    group=f"service:{service.name}", started_by=deployment.id, created=self.clock.now)
        service.tasks[task_id] = task
        return task

    def _converge(self, service: Service) -> None:
        service.converge_due = None
        now = self.clock.now
        primary = service.primary
        mine = [t for t in service.tasks.values() if t.deployment == primary.id]
        missing = service.desired - len(mine)
        behaviour = self.taskdefs[primary.td].behaviour if primary.td in self.taskdefs else "healthy"
        for _ in range(max(0, missing)):
            task = self._new_task(service, primary)
            self.clock.after(15 + 25 * self.rng.random(), partial(self._started, service, task))
        if missing < 0:  # scale-in: the newest tasks go first
            for task in sorted(mine, key=lambda t: t.created, reverse=True)[:-missing]:
                self._stop(service, task, "ServiceSchedulerInitiated",
                           f"Scaling activity initiated by (deployment {primary.id})", exit_code=143)
        running = [t for t in mine if t.started is not None]
        if primary.rollout_state == "IN_PROGRESS" and len(running) >= service.desired and behaviour != "image":
            if primary.healthy_since is None:
                primary.healthy_since = now
                self.converge_soon(service, 60)  # healthy a while: then the old tasks drain
            elif (now - primary.healthy_since).total_seconds() >= 60:
                self._complete(service, primary)
        elif primary.rollout_state == "IN_PROGRESS":
            primary.healthy_since = None
        if primary.rollout_state in ("COMPLETED", "FAILED") or service.desired == 0:
            for task in [t for t in service.tasks.values() if t.deployment != primary.id]:
                self._stop(service, task, "ServiceSchedulerInitiated",
                           f"Scaling activity initiated by (deployment {primary.id})", exit_code=143)
            for old in service.deployments[1:]:
                old.status = "INACTIVE"
            service.deployments = [d for d in service.deployments if d.status != "INACTIVE" or d is primary][:8]

    def _complete(self, service: Service, deployment: Deployment) -> None:
        deployment.rollout_state = "COMPLETED"
        deployment.updated = self.clock.now
        self.emit_after(2, "rollout", lambda: deployment_state_change(
            service.arn, deployment.id, "SERVICE_DEPLOYMENT_COMPLETED", at=self.clock.now))
        self.converge_soon(service, 1)

    def _started(self, service: Service, task: Task) -> None:
        if service.tasks.get(task.id) is not task:
            return
        td = self.taskdefs.get(task.td)
        behaviour = td.behaviour if td else "healthy"
        if behaviour == "oom" and td is not None and int(td.body.get("memory", 0)) >= td.needs_memory:
            behaviour = "healthy"
        if behaviour == "image":
            self._stop(service, task, "TaskFailedToStart",
                       f"CannotPullContainerError: pull image manifest has been retried 5 time(s): {td and td.family}: "
                       "not found", exit_code=None, failed=True)
            return
        task.started = self.clock.now
        task.version += 1
        service.start_failures = 0
        if behaviour == "crash":
            self.clock.after(30 + 150 * self.rng.random(), lambda: self._die(service, task, "crash"))
        elif behaviour == "oom":
            self.clock.after(60 + 300 * self.rng.random(), lambda: self._die(service, task, "oom"))
        self.converge_soon(service)

    def _die(self, service: Service, task: Task, how: str) -> None:
        if service.tasks.get(task.id) is not task:
            return
        if how == "oom":
            self._stop(service, task, "EssentialContainerExited", "Essential container in task exited", exit_code=137,
                       container_reason="OutOfMemoryError: Container killed due to memory usage", failed=True)
        else:
            self._stop(service, task, "EssentialContainerExited", "Essential container in task exited", exit_code=1,
                       failed=True)

    def _stop(self, service: Service, task: Task, stop_code: str, reason: str, *, exit_code: int | None,
              failed: bool = False, container_reason: str | None = None) -> None:
        service.tasks.pop(task.id, None)
        task.version += 1
        self._emit_task_stop(task, service.cluster, stop_code, reason, exit_code, container_reason)
        if failed:
            deployment = next((d for d in service.deployments if d.id == task.deployment), None)
            if deployment is not None and deployment.status == "PRIMARY" and deployment.rollout_state == "IN_PROGRESS":
                deployment.failed_tasks += 1
                threshold = max(3, min(200, math.ceil(service.desired / 2)))
                if service.breaker and deployment.failed_tasks >= threshold:
                    self._breaker_trips(service, deployment)
            if task.started is None:
                service.start_failures += 1
        delay = min(300.0, 10 * 2 ** min(service.start_failures, 5)) if failed and task.started is None else None
        self.converge_soon(service, delay)

    def _breaker_trips(self, service: Service, deployment: Deployment) -> None:
        deployment.rollout_state = "FAILED"
        deployment.updated = self.clock.now
        self.emit_after(3, "rollout", lambda: deployment_state_change(
            service.arn, deployment.id, "SERVICE_DEPLOYMENT_FAILED", at=self.clock.now,
            reason="ECS deployment circuit breaker: tasks failed to start."))
        if service.breaker_rollback:
            last_good = next((d for d in service.deployments[1:] if d.rollout_state == "COMPLETED"), None)
            if last_good is not None:
                self.deploy(service, last_good.td, rollback=True)

    def _emit_task_stop(self, task: Task, cluster: str, stop_code: str, reason: str, exit_code: int | None,
                        container_reason: str | None) -> None:
        td = self.taskdefs.get(task.td)
        container: dict[str, Any] = {"name": "app", "image": "app", "cpu": 0,
                                     "memory": td.body.get("memory") if td else 1024}
        if exit_code is not None:
            container["exitCode"] = exit_code
        if container_reason:
            container["reason"] = container_reason
        spec = {"clusterArn": f"{ARN}:cluster/{cluster}", "taskArn": task.arn, "taskDefinitionArn": task.td,
                "cpu": td.body.get("cpu", 512) if td else 512, "memory": td.body.get("memory", 1024) if td else 1024,
                "group": task.group, "createdAt": task.created, "startedAt": task.started,
                "capacityProviderName": task.provider, "containers": [container], "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED", "stopCode": stop_code, "stoppedReason": reason,
                "startedBy": task.started_by, "subnet": task.subnet, "overrides": task.overrides}
        version = task.version
        self.emit_after(1 + 4 * self.rng.random(), "healer",
                        lambda: task_state_change(spec, at=self.clock.now, version=version))

    # ---------------------------------------------------------------- events
    def emit_after(self, seconds: float, function: str, build: Callable[[], dict[str, Any]]) -> None:
        def send() -> None:
            event = build()
            self.events_emitted[function] += 1
            self.deliver(function, event)

        self.clock.after(seconds, send)

    # ---------------------------------------------------------------- Spot
    def spot_wave(self, share: float) -> None:
        """Spot capacity is reclaimed: some FARGATE_SPOT tasks of some services stop; replacements may not place."""
        for service in self.services.values():
            spot_tasks = [t for t in service.tasks.values() if t.provider == "FARGATE_SPOT" and t.started]
            if not spot_tasks or self.rng.random() > share:
                continue
            for task in spot_tasks[:1 + int(self.rng.random() * 3)]:
                self._stop(service, task, "SpotInterruption", "Your Spot Task was interrupted.", exit_code=None)
            if self.rng.random() < 0.5:
                self.emit_after(10 + 20 * self.rng.random(), "healer", partial(self._placement_failure, service))

    def _placement_failure(self, service: Service) -> dict[str, Any]:
        return spot_placement_failure(service.arn, f"{ARN}:cluster/{service.cluster}", at=self.clock.now,
                                      seed=f"{service.name}/{self.new_id()}")

    # ---------------------------------------------------------------- alarms and metrics
    def evaluate(self) -> None:
        """Each minute: every service's CPU from its demand and running tasks; alarms change state on it."""
        now = self.clock.now
        for key, service in self.services.items():
            running = sum(1 for t in service.tasks.values() if t.started is not None)
            demand = self.demand[key](now)
            cpu = 100.0 if running == 0 else min(100.0, 60.0 * demand / running)
            history = self.cpu[key]
            history.append((now, round(cpu, 2)))
            if len(history) > 180:
                del history[:60]
        for alarm in self.alarms.values():
            history = self.cpu[(alarm.service.cluster, alarm.service.name)]
            value = history[-1][1]
            breach = value > alarm.threshold if alarm.comparison == "GreaterThanThreshold" else value < alarm.threshold
            alarm.breaching = alarm.breaching + 1 if breach else 0
            wanted = "ALARM" if alarm.breaching >= alarm.to_alarm else ("OK" if not breach else alarm.state)
            if wanted != alarm.state:
                self._transition(alarm, wanted, value)

    def _transition(self, alarm: Alarm, state: str, value: float) -> None:
        now = self.clock.now
        previous = {"value": alarm.state, "reason": "soak", "timestamp": cw_time(alarm.updated or now)}
        alarm.state, alarm.updated = state, now
        alarm.reason_data = reason_data(value, alarm.threshold, at=now, period=60, statistic="Average")
        current = {"value": state, "reason": alarm_reason(state, value, alarm.threshold, alarm.comparison, now),
                   "reasonData": alarm.reason_data, "timestamp": cw_time(now)}
        raw = alarm.raw()
        self.events_emitted["scaler"] += 1
        self.deliver("scaler", alarm_state_change(raw, state=current, previous=previous, at=now))
        if self.rng.random() < 0.1:  # also configured as the alarm's Lambda action: the same transition twice
            self.deliver("scaler", alarm_action_payload(raw, state=current, previous=previous, at=now))

    # ---------------------------------------------------------------- standalone tasks
    def run_standalone(self, cluster: str, family: str, started_by: str, overrides: dict[str, Any] | None = None,
                       td: str | None = None) -> Task:
        definition = self.taskdef(td or family)
        assert definition is not None
        task_id = self.new_id()
        task = Task(id=task_id, arn=f"{ARN}:task/{cluster}/{task_id}", td=definition.arn, deployment="-",
                    provider="FARGATE", group=f"family:{family}", started_by=started_by, created=self.clock.now,
                    overrides=overrides or {"containerOverrides": [{"name": "app"}]})
        self.standalone[task_id] = task

        def start() -> None:
            task.started = self.clock.now
            task.version += 1
            runtime = 60 + 840 * self.rng.random()
            fails = self.rng.random() < self.family_failure.get(family, 0.0)
            self.clock.after(runtime, lambda: self._standalone_exit(cluster, task, 1 if fails else 0))

        self.clock.after(15 + 15 * self.rng.random(), start)
        return task

    def _standalone_exit(self, cluster: str, task: Task, exit_code: int) -> None:
        self.standalone.pop(task.id, None)
        task.version += 1
        self._emit_task_stop(task, cluster, "EssentialContainerExited", "Essential container in task exited",
                             exit_code, None)


# ------------------------------------------------------------------------------------------ fake APIs
class Ecs:
    """The ECS calls the code makes, on the world. Calls by the code are recorded for the invariants."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _service(self, cluster: str, service: str, operation: str) -> Service:
        found = self.world.services.get((cluster.rsplit("/", 1)[-1], service.rsplit("/", 1)[-1]))
        if found is None:
            raise client_error("ServiceNotFoundException", "Service not found.", operation)
        return found

    def describe_services(self, cluster: str, services: list[str], include: list[str] | None = None
                          ) -> dict[str, Any]:
        if len(services) > 10:
            raise client_error("InvalidParameterException", "services can have at most 10 items", "DescribeServices")
        found, failures = [], []
        for name in services:
            service = self.world.services.get((cluster.rsplit("/", 1)[-1], name.rsplit("/", 1)[-1]))
            if service is None:
                failures.append({"arn": f"{ARN}:service/{cluster}/{name}", "reason": "MISSING"})
            else:
                found.append(self.world.service_view(service))
        return {"services": found, "failures": failures}

    def update_service(self, cluster: str, service: str, desiredCount: int | None = None,
                       taskDefinition: str | None = None, forceNewDeployment: bool = False,
                       capacityProviderStrategy: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        world = self.world
        found = self._service(cluster, service, "UpdateService")
        if found.poisoned:
            raise client_error("AccessDeniedException", f"not authorized to perform ecs:UpdateService on {found.arn}",
                               "UpdateService")
        before = {"desired": found.desired, "td": found.primary.td}
        record = {"at": world.aws.now(), "cluster": found.cluster, "service": found.name, "before": before,
                  "desiredCount": desiredCount, "taskDefinition": taskDefinition, "force": forceNewDeployment,
                  "strategy": capacityProviderStrategy, "function": getattr(world.aws.invocation, "function", "?")}
        if taskDefinition is not None:
            td = world.taskdef(taskDefinition)
            if td is None or td.status != "ACTIVE":
                raise client_error("ClientException", "TaskDefinition not found.", "UpdateService")
            taskDefinition = td.arn
            record["taskDefinition"] = td.arn
        world.updates.append(record)
        if desiredCount is not None:
            world.set_desired(found, desiredCount)
        new_td = taskDefinition if taskDefinition is not None and taskDefinition != found.primary.td else None
        if new_td is not None or forceNewDeployment or capacityProviderStrategy is not None:
            world.deploy(found, new_td or found.primary.td, strategy=capacityProviderStrategy)
        return {"service": world.service_view(found)}

    def run_task(self, cluster: str, taskDefinition: str, clientToken: str | None = None,
                 count: int = 1, startedBy: str | None = None, overrides: dict[str, Any] | None = None,
                 **_: Any) -> dict[str, Any]:
        world = self.world
        if clientToken and clientToken in world.run_tokens:  # AWS: the same token returns the same tasks
            return {"tasks": [{"taskArn": a} for a in world.run_tokens[clientToken]], "failures": []}
        family = taskDefinition.rsplit("/", 1)[-1].split(":")[0]
        if world.rng.random() < 0.02:
            return {"tasks": [], "failures": [{"arn": f"{ARN}:cluster/{cluster}",
                                               "reason": "Capacity is unavailable at this time. Please try again."}]}
        task = world.run_standalone(cluster.rsplit("/", 1)[-1], family, startedBy or "-", overrides, taskDefinition)
        if clientToken:
            world.run_tokens[clientToken] = [task.arn]
        return {"tasks": [{"taskArn": task.arn, "lastStatus": "PROVISIONING"}], "failures": []}

    def describe_task_definition(self, taskDefinition: str, include: list[str] | None = None
                                 ) -> dict[str, Any]:
        td = self.world.taskdef(taskDefinition)
        if td is None:
            raise client_error("ClientException", "Unable to describe task definition.", "DescribeTaskDefinition")
        answer: dict[str, Any] = {"taskDefinition": json.loads(json.dumps(td.body, default=str))}
        answer["taskDefinition"]["registeredAt"] = td.body["registeredAt"]
        if include and "TAGS" in include:
            answer["tags"] = [dict(t) for t in td.tags]
        return answer

    def register_task_definition(self, family: str, tags: list[dict[str, str]] | None = None, **body: Any
                                 ) -> dict[str, Any]:
        world = self.world
        base = world.taskdef(family)
        behaviour = base.behaviour if base else "healthy"
        needs = base.needs_memory if base else 0
        definition = world.register(family, behaviour, tags=tags, body={"family": family, **body},
                                    by_autopilot=True, needs_memory=needs)
        world.registered.append(definition)
        return {"taskDefinition": json.loads(json.dumps(definition.body, default=str)), "tags": tags or []}

    def list_task_definitions(self, familyPrefix: str | None = None, status: str = "ACTIVE",
                              sort: str = "ASC", maxResults: int = 100, nextToken: str | None = None
                              ) -> dict[str, Any]:
        arns = [a for family, revisions in self.world.families.items() if family.startswith(familyPrefix or "")
                for a in revisions if self.world.taskdefs[a].status == status]
        arns.sort(key=lambda a: (a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])), reverse=sort == "DESC")
        start = int(nextToken or 0)
        answer: dict[str, Any] = {"taskDefinitionArns": arns[start:start + maxResults]}
        if start + maxResults < len(arns):
            answer["nextToken"] = str(start + maxResults)
        return answer


class CloudWatch:
    def __init__(self, world: World) -> None:
        self.world = world

    def describe_alarms(self, AlarmNames: list[str] | None = None, AlarmTypes: list[str] | None = None,
                        MaxRecords: int = 100, NextToken: str | None = None,
                        StateValue: str | None = None) -> dict[str, Any]:
        if AlarmNames is not None and len(AlarmNames) > 100:
            raise client_error("ValidationError", "AlarmNames has too many members", "DescribeAlarms")
        names = AlarmNames if AlarmNames is not None else sorted(self.world.alarms)
        found = [self.world.alarms[n].raw() for n in names if n in self.world.alarms
                 and (StateValue is None or self.world.alarms[n].state == StateValue)]
        start = int(NextToken or 0)
        answer: dict[str, Any] = {"MetricAlarms": found[start:start + MaxRecords], "CompositeAlarms": []}
        if start + MaxRecords < len(found):
            answer["NextToken"] = str(start + MaxRecords)
        return answer

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], StartTime: datetime,
                        EndTime: datetime, ScanBy: str = "TimestampDescending",
                        NextToken: str | None = None) -> dict[str, Any]:
        if len(MetricDataQueries) > 500:
            raise client_error("ValidationError", "The collection MetricDataQueries must not have a size greater "
                               "than 500.", "GetMetricData")
        results = []
        for query in MetricDataQueries:
            if not query.get("ReturnData", True):
                continue
            stat = query.get("MetricStat") or {}
            dims = {d["Name"]: d["Value"] for d in (stat.get("Metric") or {}).get("Dimensions", [])}
            series = self.world.cpu.get((dims.get("ClusterName", ""), dims.get("ServiceName", "")), [])
            points = [(t, v) for t, v in series if StartTime <= t <= EndTime]
            if ScanBy == "TimestampDescending":
                points.reverse()
            results.append({"Id": query["Id"], "Label": query["Id"], "Timestamps": [t for t, _ in points],
                            "Values": [v for _, v in points], "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}


class Sns:
    def __init__(self, world: World) -> None:
        self.world = world

    def publish(self, TopicArn: str, Message: str, Subject: str | None = None,
                MessageAttributes: dict[str, Any] | None = None) -> dict[str, Any]:
        if Subject is not None and (len(Subject) >= 100 or not Subject):
            raise client_error("InvalidParameter", "Invalid parameter: Subject", "Publish")
        if len(Message.encode()) > 262_144:
            raise client_error("InvalidParameter", "Invalid parameter: Message too long", "Publish")
        self.world.published.append({"subject": Subject, "message": Message, "at": self.world.aws.now()})
        return {"MessageId": self.world.new_id()}


@dataclass
class Message:
    id: str
    body: str
    visible_at: datetime
    receives: int = 0
    handle: str = ""


class Queue:
    """A standard SQS queue: delays, visibility timeout, redelivery, maxReceiveCount then the dead-letter queue."""

    def __init__(self, world: World, url: str, visibility: int = 360, max_receives: int = 5) -> None:
        self.world, self.url, self.visibility, self.max_receives = world, url, visibility, max_receives
        self.messages: dict[str, Message] = {}
        self.on_visible: Callable[[datetime], None] = lambda at: None

    def send(self, body: str, delay: int) -> str:
        if not 0 <= delay <= 900:
            raise client_error("InvalidParameterValue", "DelaySeconds must be >= 0 and <= 900", "SendMessage")
        if len(body.encode()) > 262_144:
            raise client_error("InvalidParameterValue", "Message too long", "SendMessage")
        message = Message(id=self.world.new_id(), body=body,
                          visible_at=self.world.aws.now() + timedelta(seconds=delay))
        self.messages[message.id] = message
        self.on_visible(message.visible_at)
        return message.id

    def receive(self, limit: int = 10) -> list[Message]:
        now = self.world.clock.now
        batch = [m for m in self.messages.values() if m.visible_at <= now][:limit]
        for message in batch:
            message.receives += 1
            message.handle = self.world.new_id()
            message.visible_at = now + timedelta(seconds=self.visibility)
        return batch

    def settle(self, message: Message, ok: bool) -> None:
        """Deleted when handled; else visible again after the visibility timeout, or dead-lettered."""
        if ok:
            self.messages.pop(message.id, None)
        elif message.receives >= self.max_receives:
            self.messages.pop(message.id, None)
            self.world.dead_letters.append({"kind": "restart", "id": f"sqs:{message.id}", "body": message.body})
        else:
            self.on_visible(message.visible_at)


class Sqs:
    def __init__(self, world: World) -> None:
        self.world = world

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0,
                     MessageAttributes: dict[str, Any] | None = None) -> dict[str, Any]:
        queue = self.world.queues.get(QueueUrl)
        if queue is None:
            raise client_error("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.",
                               "SendMessage")
        return {"MessageId": queue.send(MessageBody, int(DelaySeconds))}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        queue = self.world.queues.get(QueueUrl)
        if queue is None:
            raise client_error("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.",
                               "SendMessageBatch")
        if not 1 <= len(Entries) <= 10:
            raise client_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries "
                               "per request are 10.", "SendMessageBatch")
        sent = [{"Id": e["Id"], "MessageId": queue.send(e["MessageBody"], int(e.get("DelaySeconds", 0)))}
                for e in Entries]
        return {"Successful": sent, "Failed": []}
