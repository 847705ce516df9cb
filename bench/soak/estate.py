"""The estate a soak runs: clusters, services with their policies and behaviours, standalone task families.

Generated from the seed only (nothing tuned to a result): a mix of step-scaling and targetTracking services,
Spot services with fallback, crash-loop rollback or notify, circuit breakers on some, a few dry-run and
switched-off services, one service whose UpdateService is always refused (a missing IAM grant), and batch
families from healthy to always failing.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autopilot.models.policy import ServicePolicy, TaskPolicy

SPOT_STRATEGY = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                 {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
ON_DEMAND = [{"capacityProvider": "FARGATE", "weight": 1}]


@dataclass
class ServicePlan:
    cluster: str
    name: str
    kind: str  # steps | tracking | healing-only
    min_tasks: int
    max_tasks: int
    base_demand: float
    amplitude: float
    phase: float
    spot: bool
    crash_action: str
    breaker: bool
    mode: str
    poisoned: bool = False
    spikes: list[tuple[float, float, float]] = field(default_factory=list)  # (start s, end s, factor)

    def policy(self) -> ServicePolicy:
        spec: dict[str, Any] = {
            "mode": self.mode,
            "healing": {"crashLoop": {"failures": 3, "windowSeconds": 600, "action": self.crash_action},
                        "oom": {"growPercent": 25, "maxMemoryMiB": 4096}},
            "rollout": {"rollbackOnDeploymentFailure": True, "rollbackOnImagePullFailure": True},
        }
        if self.spot:
            spec["healing"]["spotFallback"] = {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800,
                                               "onDemandProvider": "FARGATE"}
        if self.kind == "steps":
            spec["scaling"] = {"minTasks": self.min_tasks, "maxTasks": self.max_tasks,
                               "scaleOutCooldownSeconds": 120, "scaleInCooldownSeconds": 300, "rules": [
                                   {"alarm": f"{self.name}-cpu-high", "steps": [
                                       {"lowerBound": 0, "upperBound": 15, "adjustment": 1},
                                       {"lowerBound": 15, "adjustment": "50%", "minAdjustmentMagnitude": 2}]},
                                   {"alarm": f"{self.name}-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]}]}
        elif self.kind == "tracking":
            spec["scaling"] = {"minTasks": self.min_tasks, "maxTasks": self.max_tasks, "rules": [{"targetTracking": {
                "metric": {"namespace": "AWS/ECS", "name": "CPUUtilization",
                           "dimensions": {"ClusterName": self.cluster, "ServiceName": self.name}},
                "targetValue": 55}}]}
        return ServicePolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                                             "metadata": {"cluster": self.cluster, "service": self.name}, "spec": spec})

    def demand(self, start: datetime) -> Any:
        def at(moment: datetime) -> float:
            t = (moment - start).total_seconds()
            daily = 1 + self.amplitude * math.sin(2 * math.pi * (t / 86400 + self.phase))
            spike = max((f for s, e, f in self.spikes if s <= t < e), default=1.0)
            wiggle = 1 + 0.08 * math.sin(t / 431 + self.phase * 7) + 0.05 * math.sin(t / 97 + self.phase * 3)
            return max(0.05, self.base_demand * daily * spike * wiggle)

        return at


@dataclass
class FamilyPlan:
    cluster: str
    family: str
    failure_rate: float
    max_restarts: int

    def policy(self) -> TaskPolicy:
        return TaskPolicy.model_validate({
            "apiVersion": "autopilot/v1", "kind": "TaskPolicy",
            "metadata": {"cluster": self.cluster, "family": self.family},
            "spec": {"restart": {"maxRestarts": self.max_restarts, "initialBackoffSeconds": 10,
                                 "maxBackoffSeconds": 600, "resetAfterSeconds": 1800},
                     "network": {"subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"]}}})


@dataclass
class Estate:
    services: list[ServicePlan]
    families: list[FamilyPlan]

    @property
    def clusters(self) -> list[str]:
        return sorted({s.cluster for s in self.services} | {f.cluster for f in self.families})


def generate(rng: random.Random, services: int, families: int, hours: float) -> Estate:
    clusters = max(3, services // 100)
    plans: list[ServicePlan] = []
    for index in range(services):
        kind = rng.choices(["steps", "tracking", "healing-only"], weights=[75, 20, 5])[0]
        low = rng.choice([1, 2, 2, 3])
        high = low + rng.randint(8, 30)
        spikes = []
        for _ in range(rng.randint(0, max(1, int(hours / 12)))):
            start = rng.uniform(0, hours * 3600)
            spikes.append((start, start + rng.uniform(1200, 3600), rng.uniform(1.8, 3.0)))
        mode = rng.choices(["enforce", "dry-run", "off"], weights=[97, 2, 1])[0]
        plans.append(ServicePlan(
            cluster=f"prod-{index % clusters:02d}", name=f"svc-{index:04d}", kind=kind, min_tasks=low, max_tasks=high,
            base_demand=rng.uniform(low, low + (high - low) * 0.45), amplitude=rng.uniform(0.2, 0.6),
            phase=rng.random(), spot=rng.random() < 0.3, crash_action="rollback" if rng.random() < 0.85 else "notify",
            breaker=rng.random() < 0.4, mode=mode, spikes=spikes))
    for index in range(0, services, 250):  # a missing IAM grant: every UpdateService of it is refused
        plans[index].poisoned = True
        plans[index].kind = "steps"
        plans[index].mode = "enforce"
        plans[index].base_demand = plans[index].max_tasks * 3.0  # its alarm stays in ALARM: every run tries it
    family_plans = []
    for index in range(families):
        rate = rng.choices([0.05, 0.35, 1.0], weights=[60, 30, 10])[0]
        family_plans.append(FamilyPlan(cluster=f"batch-{index % 2}", family=f"job-{index:03d}", failure_rate=rate,
                                       max_restarts=rng.choice([2, 3, 5, 10])))
    return Estate(services=plans, families=family_plans)


def hourly(hours: float) -> list[timedelta]:
    return [timedelta(hours=h) for h in range(int(hours) + 1)]
