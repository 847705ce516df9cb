"""The stories the demo tells. Each states, in advance, the outcome it expects.

A story runs on a fresh stack and estate with a virtual clock starting at T+00:00. It drives the
world only the way AWS would: alarms change state, CI deploys, tasks stop, time passes (the
reconciler runs every simulated minute). The decisions are the handlers' own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot_tools.demo.dataplane import Behaviour
from autopilot_tools.demo.sim import Sim


class AssumptionFailed(Exception):
    """The policy file no longer says what the story relies on (the lead must align one of them)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    summary: str
    story: Callable[[Sim], None]
    requires: tuple[str, ...] = ()  # template functions the story needs (capabilities)
    parameters: dict[str, str] = field(default_factory=dict)  # stack parameters (e.g. Mode=dry-run)


def _service_policy(sim: Sim, cluster: str, service: str) -> ServicePolicy:
    policy = sim.estate.policy(cluster, service)
    if not isinstance(policy, ServicePolicy):
        raise AssumptionFailed(f"examples/policies.yaml has no ServicePolicy for {cluster}/{service}")
    return policy


def _assume(condition: bool, what: str) -> None:
    if not condition:
        raise AssumptionFailed(f"the story assumes examples/policies.yaml {what}")


def _web_scaling(sim: Sim) -> ServicePolicy:
    """The numbers the scaling stories are told with (examples/policies.yaml, prod/web)."""
    policy = _service_policy(sim, "prod", "web")
    scaling = policy.spec.scaling
    _assume(scaling is not None and (scaling.minTasks, scaling.maxTasks) == (4, 60),
            "gives prod/web minTasks 4, maxTasks 60")
    assert scaling is not None
    _assume((scaling.scaleOutCooldownSeconds, scaling.scaleInCooldownSeconds) == (60, 300),
            "gives prod/web cooldowns of 60 s out and 300 s in")
    rules = {r.alarm: r for r in scaling.rules}
    high, low = rules.get("web-cpu-high"), rules.get("web-cpu-low")
    _assume(high is not None and high.steps is not None and [(s.lowerBound, s.upperBound, s.adjustment,
                                                             s.minAdjustmentMagnitude) for s in high.steps]
            == [(0, 15, 2, None), (15, 30, "25%", 3), (30, None, "50%", 5)],
            "steps web-cpu-high by +2 / +25% (min 3) / +50% (min 5) at 0 / 15 / 30 above the threshold")
    _assume(low is not None and low.steps is not None
            and [(s.upperBound, s.adjustment) for s in low.steps] == [(0, -1)],
            "steps web-cpu-low by -1 below the threshold")
    return policy


# ============================================================================ (a) scaling
def scale(sim: Sim) -> None:
    _web_scaling(sim)
    sim.say("prod/web serves lunchtime traffic with 6 tasks. Its CPU alarm fires at 60 %.")
    sim.alarm("web-cpu-high", "ALARM", 82)
    sim.expect_desired("prod", "web", 9)  # 82 is 22 above 60: step [15, 30) = 25 % of 6 = 1.5 -> 1, min 3
    sim.say("CPU stays high. The alarm sends no new event while it stays in ALARM; the reconciler re-reads it.")
    sim.advance(60)  # T+01:00: the 60 s scale-out cooldown has passed -> 25 % of 9 = 2.25 -> 2, min 3
    sim.expect_desired("prod", "web", 12)
    sim.advance(60)  # T+02:00: 25 % of 12 = 3
    sim.expect_desired("prod", "web", 15)
    sim.advance(30)
    sim.say("With 15 tasks CPU falls to 48 %: the alarm returns to OK, which never triggers a rule.")
    sim.alarm("web-cpu-high", "OK", 48)
    sim.advance(15 * 60)
    sim.say("The afternoon is quiet: CPU has stayed under 25 % for 15 minutes.")
    sim.alarm("web-cpu-low", "ALARM", 18)
    sim.expect_desired("prod", "web", 14)  # -1 task; then one more each 300 s scale-in cooldown
    sim.advance(11 * 60)
    sim.expect_desired("prod", "web", 12)
    sim.say("Traffic picks up again; the low-CPU alarm clears.")
    sim.alarm("web-cpu-low", "OK", 31)
    sim.advance(30)
    sim.expect_outcome("scale-out", count=3, target="prod/web")
    sim.expect_outcome("scale-in", count=3, target="prod/web")
    sim.expect_notifications(6)
    sim.expect_notifications(contains="Scaled out prod/web from 6 to 9 tasks", count=1)


# ============================================================================ (g) bad input
def bad_input(sim: Sim) -> None:
    _web_scaling(sim)
    sim.say("EventBridge delivers at least once, CloudWatch retries alarm actions, and not every event is "
            "well formed. One real transition, then everything that must not act twice or at all.")
    event = sim.alarm("web-cpu-high", "ALARM", 75)
    sim.expect_desired("prod", "web", 9)
    sim.say("EventBridge delivers the very same event a second time.")
    sim.publish(event, "EventBridge", "web-cpu-high: OK → ALARM (the same event, redelivered)")
    sim.say("The alarm's Lambda action reports the same transition directly (no EventBridge envelope).")
    from autopilot.aws.clients import client
    from autopilot_tools.demo.events import alarm_action_payload

    raw = client("cloudwatch").describe_alarms(AlarmNames=["web-cpu-high"])["MetricAlarms"][0]
    direct = alarm_action_payload(raw, state=event["detail"]["state"], previous=event["detail"]["previousState"],
                                  at=sim.clock())
    sim.invoke("ScalerFunction", direct, actor="CloudWatch",
               label="web-cpu-high: OK → ALARM [alarm action, same transition]")
    sim.advance(20)
    sim.say("An alarm that no policy names changes state.")
    sim.alarm("db-connections-high", "ALARM", 940)
    sim.say("A truncated event: its reasonData is not JSON.")
    broken = copy.deepcopy(event)
    broken["id"] = "6d1c5e0a-truncated-reasondata"
    broken["detail"]["state"]["timestamp"] = broken["detail"]["state"]["timestamp"].replace(".", ".9", 1)[:-6] + "+0000"
    broken["detail"]["state"]["reasonData"] = broken["detail"]["state"]["reasonData"][:40]
    sim.publish(broken, "EventBridge", "web-cpu-high: ALARM (reasonData cut off)")
    sim.say("A direct alarm-action payload without a state.")
    malformed = copy.deepcopy(direct)
    malformed["alarmData"].pop("state")
    sim.invoke("ScalerFunction", malformed, actor="CloudWatch",
               label="web-cpu-high [alarm action without alarmData.state]")
    sim.advance(20)
    sim.say("The CPU metric stops reporting during a network blip: INSUFFICIENT_DATA is not low load.")
    sim.alarm("web-cpu-high", "INSUFFICIENT_DATA")
    sim.say("ECS reports a task of an unmanaged cluster starting.")
    from autopilot_tools.demo.events import published

    running = published("ecs-task-state-change-running-fargate-2025")
    sim.publish(running, "ECS", "task a1173316 RUNNING in example-cluster (not a managed cluster, not STOPPED)")
    sim.advance(10)
    sim.expect_desired("prod", "web", 9)
    sim.expect_outcome("scale-out", count=1)
    sim.expect_outcome("idempotent-replay", count=1)
    sim.expect_outcome("skipped:duplicate", count=1)
    sim.expect_outcome("ignored:unknown-alarm", count=1)
    sim.expect_outcome("rejected:invalid-event", count=2)
    sim.expect_outcome("ignored:insufficient_data", count=1)
    sim.check("the unmanaged task event reached no function", 0,
              sum(1 for r in sim.result.rows if r.kind == "event" and "example-cluster" in r.text))
    sim.expect_notifications(1)


# ============================================================================ (h) dry-run
def dry_run(sim: Sim) -> None:
    _web_scaling(sim)
    sim.say("The stack is deployed with Mode=dry-run, as teams do for their first week: every decision is "
            "made, recorded and announced, and nothing is changed.")
    sim.alarm("web-cpu-high", "ALARM", 95)  # 35 above: +50 % of 6 = 3, min 5 -> would be 11
    sim.expect_desired("prod", "web", 6)
    sim.advance(90)  # the reconciler decides again after the cooldown (capacity is still 6)
    sim.alarm("web-cpu-high", "OK", 40)
    sim.advance(30)
    sim.expect_desired("prod", "web", 6)
    decisions = [r for r in sim.result.rows if r.kind == "decision" and r.outcome == "scale-out"]
    sim.check("every scale-out was decided in dry-run mode", True,
              bool(decisions) and all(r.mode == "dry-run" for r in decisions))
    sim.check("no mutating AWS call was made", True,
              all(c.startswith("dry-run:") or c == "sns:Publish" for r in decisions for c in r.calls))
    sim.expect_notifications(contains="[dry-run] would have: Scaled out prod/web from 6 to 11 tasks", at_least=1)


# ============================================================================ (b) bad image
def bad_image(sim: Sim) -> None:
    policy = _service_policy(sim, "prod", "api")
    _assume(policy.spec.rollout is not None and policy.spec.rollout.rollbackOnImagePullFailure,
            "lets prod/api roll back on image pull failures (spec.rollout.rollbackOnImagePullFailure)")
    sim.say("prod/api runs api:1, deployed two days ago and healthy. CI ships api:2, whose image tag was "
            "never pushed to ECR.")
    sim.advance(30)
    bad = sim.register_revision("api", containers={"api": {"image": f"{_ecr()}/api:2026.11.4-rc"}})
    sim.deploy("prod", "api", bad, Behaviour.IMAGE_MISSING, "image api:2026.11.4-rc (never pushed)")
    sim.say("Its tasks cannot start. ECS would retry them with growing delays; its circuit breaker needs 3 "
            "failed tasks here (half of 4, at least 3).")
    sim.advance(45)
    sim.expect_revision("prod", "api", "api:1")
    sim.expect_outcome("rollback", count=1, target="prod/api")
    sim.say("The rollback deployment of api:1 reaches steady state; nothing keeps failing.")
    sim.advance(4 * 60)
    sim.expect_revision("prod", "api", "api:1")
    failed = sum(1 for r in sim.result.rows if r.kind == "event" and "CannotPullContainerError" in r.text)
    sim.check("ecs-autopilot acted on the first failed task", 1, failed)
    sim.expect_notifications(contains="api:1", at_least=1)


# ============================================================================ (c) crash loop
def crash_loop(sim: Sim) -> None:
    policy = _service_policy(sim, "prod", "web")
    crash = policy.spec.healing.crashLoop if policy.spec.healing else None
    _assume(crash is not None and crash.action == "rollback" and crash.failures == 3 and crash.windowSeconds >= 300,
            "rolls prod/web back after 3 crashes (spec.healing.crashLoop: failures 3, action rollback)")
    sim.say("prod/web runs web:1. CI ships web:2, a healthy release: when its deployment completes it becomes "
            "the last known good.")
    sim.advance(30)
    good = sim.register_revision("web", containers={"web": {"image": f"{_ecr()}/web:2026.11.4"}})
    sim.deploy("prod", "web", good, Behaviour.HEALTHY, "image web:2026.11.4")
    sim.advance(3 * 60)
    sim.say("web:3 is registered for a staging test; it never runs in prod.")
    sim.register_revision("web", containers={"web": {"image": f"{_ecr()}/web:2026.11.5-staging"}})
    sim.say("Then web:4 ships with a missing environment variable: its tasks start, then exit 1. ECS relaunches "
            "them without back-off, and its circuit breaker does not count tasks that started "
            "(containers-roadmap #1206).")
    broken = sim.register_revision("web", containers={"web": {"image": f"{_ecr()}/web:2026.11.5"}})
    sim.deploy("prod", "web", broken, Behaviour.CRASHES, "image web:2026.11.5 (crashes on start)")
    sim.advance(3 * 60)
    sim.expect_revision("prod", "web", "web:2")
    sim.expect_outcome("rollback", count=1, target="prod/web")
    sim.expect_notifications(contains="web:2", at_least=1)
    rolled = [n for n in sim.result.notifications if "Rolled back" in n or "rolled back" in n]
    sim.check("the rollback went to the last known good web:2, not to web:3 (“revision minus one”)", True,
              bool(rolled) and all("web:3" not in n for n in rolled))
    sim.advance(3 * 60)
    sim.expect_revision("prod", "web", "web:2")
    sim.expect_desired("prod", "web", 6)


# ============================================================================ (d) OOM right-sizing
def oom(sim: Sim) -> None:
    policy = _service_policy(sim, "prod", "api")
    oom_policy = policy.spec.healing.oom if policy.spec.healing else None
    _assume(oom_policy is not None and oom_policy.growPercent == 50 and oom_policy.maxMemoryMiB >= 2048,
            "grows prod/api's memory by 50 % on OOM kills (spec.healing.oom)")
    sim.say("prod/api (api:1: 0.5 vCPU, 1024 MiB; container api 896 MiB) meets a new traffic pattern. Three "
            "tasks are OOM-killed within seconds.")
    sim.stop_tasks("prod", "api", 3, stop_code="EssentialContainerExited", reason="Essential container in task exited",
                   exit_code=137, container_reason="OutOfMemoryError: Container killed due to memory usage",
                   summary="OOM-killed: container api exited 137 (OutOfMemoryError)")
    sim.advance(10)
    sim.expect_revision("prod", "api", "api:2")
    from autopilot.aws.clients import client

    definition = client("ecs").describe_task_definition(taskDefinition="api:2")["taskDefinition"]
    container = next(c for c in definition["containerDefinitions"] if c["name"] == "api")
    sim.check("api:2 has 2048 MiB (1024 + 50 % = 1536, rounded up to a valid Fargate size for 0.5 vCPU)",
              "2048", definition.get("memory"))
    sim.check("container api's hard limit grew by 50 % (896 → 1344 MiB)", 1344, container.get("memory"))
    sim.check("cpu, roles, secrets and runtime platform are unchanged", True,
              definition.get("cpu") == "512" and definition.get("taskRoleArn", "").endswith("/api-task")
              and bool(container.get("secrets"))
              and definition.get("runtimePlatform", {}).get("cpuArchitecture") == "ARM64")
    revisions = client("ecs").list_task_definitions(familyPrefix="api")["taskDefinitionArns"]
    sim.check("three OOM kills produced one new revision, not three", 2, len(revisions))
    sim.say("The right-sized deployment completes.")
    sim.advance(3 * 60)
    sim.expect_revision("prod", "api", "api:2")
    sim.expect_notifications(contains="Derived a new revision", count=1)


# ============================================================================ (e) Spot fallback
def spot(sim: Sim) -> None:
    policy = _service_policy(sim, "prod", "web")
    fallback = policy.spec.healing.spotFallback if policy.spec.healing else None
    _assume(fallback is not None and fallback.interruptions == 2 and fallback.onDemandProvider == "FARGATE",
            "falls prod/web back to FARGATE after 2 Spot interruptions (spec.healing.spotFallback)")
    assert fallback is not None
    sim.say("prod/web runs 6 tasks: 2 on FARGATE (base), the rest on FARGATE_SPOT. Spot capacity gets scarce.")
    sim.stop_tasks("prod", "web", 1, stop_code="TerminationNotice", reason="Your Spot Task was interrupted.",
                   exit_code=143, capacity_provider="FARGATE_SPOT",
                   summary="on FARGATE_SPOT: “Your Spot Task was interrupted.”")
    sim.advance(40)
    sim.say("ECS cannot place the replacement on FARGATE_SPOT.")
    from autopilot_tools.demo.events import spot_placement_failure

    sim.publish(spot_placement_failure(sim.estate.services[("prod", "web")], sim.estate.clusters["prod"],
                                       at=sim.clock(), seed="web-1"),
                "ECS", "SERVICE_TASK_PLACEMENT_FAILURE on FARGATE_SPOT (RESOURCE:FARGATE) for prod/web")
    sim.expect_capacity("prod", "web", ["FARGATE"])
    sim.expect_desired("prod", "web", 6)
    sim.say(f"The service runs on FARGATE for the hold ({fallback.holdSeconds // 60} minutes); the reconciler "
            "then restores the saved strategy.")
    sim.advance(fallback.holdSeconds + 60)  # the first reconciler run after the hold restores it
    sim.expect_capacity("prod", "web", ["FARGATE", "FARGATE_SPOT"])
    sim.expect_desired("prod", "web", 6)
    sim.expect_outcome("spot-fallback", count=1, target="prod/web")
    sim.expect_outcome("spot-restore", count=1, target="prod/web")
    sim.expect_notifications(2)
    sim.advance(150)  # the restoring deployment completes


# ============================================================================ (f) standalone restarts
def restarts(sim: Sim) -> None:
    policy = sim.estate.policy("batch", "nightly-etl")
    if not isinstance(policy, TaskPolicy):
        raise AssumptionFailed("examples/policies.yaml has no TaskPolicy for batch/nightly-etl")
    restart = policy.spec.restart
    _assume(restart.maxRestarts >= 1, "lets batch/nightly-etl restart at least once")
    delays = [min(restart.initialBackoffSeconds * 2 ** n, restart.maxBackoffSeconds)
              for n in range(restart.maxRestarts)]
    sim.say(f"The nightly ETL starts at 02:00. Its upstream database is down, so every run exits 1 after 45 s. "
            f"The policy allows {restart.maxRestarts} re-runs, backing off {', '.join(f'{d}s' for d in delays)}.")
    sim.run_standalone("batch", "nightly-etl", run_seconds=45)
    sim.advance(sum(delays) + 45 * (restart.maxRestarts + 1) + 60)
    from autopilot.aws.clients import client

    tasks = client("ecs").list_tasks(cluster="batch", desiredStatus="STOPPED").get("taskArns", []) + \
        client("ecs").list_tasks(cluster="batch").get("taskArns", [])
    sim.check(f"the task ran 1 + {restart.maxRestarts} times", 1 + restart.maxRestarts, len(set(tasks)))
    sim.check("the restarts waited the back-off (SQS DelaySeconds)", delays, sim.restart_delays)
    sim.expect_notifications(contains="gave up", count=1)


def _ecr() -> str:
    from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION

    return f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


SCENARIOS: list[Scenario] = [
    Scenario("scale", "CPU alarm → scale out; still in ALARM → step again; low CPU → scale in",
             "Step scaling with Application Auto Scaling semantics, cooldowns and the reconciler, on prod/web.",
             scale, requires=("ScalerFunction", "ReconcilerFunction")),
    Scenario("bad-image", "A deployment whose image does not exist → rollback to last known good",
             "prod/api gets a release whose image was never pushed; the first task that cannot start triggers the "
             "rollback.", bad_image, requires=("RolloutFunction", "HealerFunction")),
    Scenario("crash-loop", "Tasks that start and crash → rollback to last known good (not revision minus one)",
             "prod/web gets a release that exits on start; 3 crashes in 10 minutes roll it back.",
             crash_loop, requires=("RolloutFunction", "HealerFunction")),
    Scenario("oom", "OOM kills → a right-sized revision, rolled out once",
             "prod/api's tasks run out of memory; one new revision with 50 % more memory, a valid Fargate size.",
             oom, requires=("HealerFunction", "RolloutFunction")),
    Scenario("spot", "Spot interruptions → fall back to FARGATE, back to Spot after the hold",
             "prod/web loses Spot capacity; its strategy switches to on-demand FARGATE, desired count untouched.",
             spot, requires=("HealerFunction", "ReconcilerFunction")),
    Scenario("restarts", "A failing standalone task → backed-off restarts, then give up",
             "batch/nightly-etl fails every run; re-runs wait 10 s, 20 s, 40 s ... through the restart queue.",
             restarts, requires=("HealerFunction", "RestarterFunction")),
    Scenario("bad-input", "Duplicates and malformed events: visibly ignored or rejected",
             "At-least-once delivery, both alarm forms, unknown alarms, broken payloads, INSUFFICIENT_DATA.",
             bad_input, requires=("ScalerFunction",)),
    Scenario("dry-run", "Dry-run mode: decided, recorded, announced, nothing changed",
             "The same CPU alarm with the stack deployed as Mode=dry-run.",
             dry_run, requires=("ScalerFunction", "ReconcilerFunction"), parameters={"Mode": "dry-run"}),
]


def by_name() -> dict[str, Scenario]:
    return {s.name: s for s in SCENARIOS}


__all__ = ["SCENARIOS", "AssumptionFailed", "Behaviour", "Scenario", "TaskPolicy", "by_name"]
