"""The stories the demo tells. Each states, in advance, the outcome it expects.

A story runs on a fresh stack and estate with a virtual clock starting at T+00:00. It drives the
world only the way AWS would: alarms change state, CI deploys, tasks stop, time passes (the
reconciler runs every simulated minute). The decisions are the handlers' own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


# ============================================================================ (i) organisations (issue 13)
RETAIL = ("111111111111", "us-east-1")  # a member account in the hub's region
PAYMENTS = ("222222222222", "eu-west-1")  # a member account in another region
STRANGER = "999999999999"  # not a member, named by no policy
ORGANISATION_PARAMETERS = {"MemberAccounts": f"{RETAIL[0]},{PAYMENTS[0]}", "MemberRegions": "us-east-1,eu-west-1"}


def accounts(sim: Sim) -> None:
    from autopilot.models.place import Place
    from autopilot_tools.demo.estate import ROOT, alarm_spec, apply_policies, load_policy_file, put_alarm, state_value
    from autopilot_tools.demo.events import alarm_state_change, cw_time, deployment_state_change
    from autopilot_tools.demo.organisation import OrgRouter, as_member, at

    retail, payments = Place(*RETAIL), Place(*PAYMENTS)
    path = ROOT / "examples" / "organisation.yaml"
    policies = load_policy_file(path)
    _assume(any(p.metadata.place == retail and getattr(p.metadata, "service", "") == "shop" for p in policies),
            "(organisation.yaml) has a policy for prod/shop in 111111111111/us-east-1")
    sim.say(f"The hub stack runs in {sim.stack.ref('AWS::AccountId')}/us-east-1 with MemberAccounts "
            f"{ORGANISATION_PARAMETERS['MemberAccounts']} and MemberRegions "
            f"{ORGANISATION_PARAMETERS['MemberRegions']}; "
            "CloudFormation creates its member registry. Each member runs templates/member-account.yaml: "
            "forwarding rules to the hub's event bus, and the role the hub acts through.")
    _members_registry(sim)
    router = OrgRouter([retail, payments], {**sim.stack.parameters, **ORGANISATION_PARAMETERS})
    shop = _member_service(retail, "shop", desired=2)
    pay = _member_service(payments, "payments", desired=3)
    spec = alarm_spec("shop-cpu-high")
    put_alarm(spec, at(retail, "cloudwatch"))
    for line in apply_policies(sim.store, policies, path, sim.clock()):
        sim.say(f"autopilot apply examples/organisation.yaml: {line}")

    sim.say("Lunchtime in the retail account: prod/shop's CPU alarm fires there. Its EventBridge rule forwards the "
            "event to the hub's bus; the hub assumes the member role in 111111111111 and scales the service there.")
    cw = at(retail, "cloudwatch")
    cw.set_alarm_state(AlarmName=spec.name, StateValue="ALARM", StateReason="demo", StateReasonData="{}")
    alarm = cw.describe_alarms(AlarmNames=[spec.name])["MetricAlarms"][0]
    state = state_value(spec, "ALARM", 91.0, sim.clock())
    previous = {"reason": "", "reasonData": "{}", "timestamp": cw_time(sim.clock.start), "value": "OK"}
    event = as_member(alarm_state_change(alarm, state=state, previous=previous, at=sim.clock()), retail)
    _route(sim, router, event, retail, f"{spec.name} in 111111111111: OK → ALARM (CPUUtilization 91%)")
    shop_now = at(retail, "ecs").describe_services(cluster="prod", services=["shop"])["services"][0]
    sim.check("prod/shop in 111111111111 scaled from 2 to 4 tasks", 4, shop_now["desiredCount"])
    sim.expect_outcome("scale-out", count=1, target="prod/shop @ 111111111111/us-east-1")
    sim.say("Four tasks bring the CPU down: the alarm returns to OK there (OK never triggers a rule).")
    cw.set_alarm_state(AlarmName=spec.name, StateValue="OK", StateReason="demo", StateReasonData="{}")
    ok = as_member(alarm_state_change(alarm, state=state_value(spec, "OK", 52.0, sim.clock()), previous=state,
                                      at=sim.clock()), retail)
    _route(sim, router, ok, retail, f"{spec.name} in 111111111111: ALARM → OK (CPUUtilization 52%)")

    sim.advance(30)
    sim.say("In the payments account, in eu-west-1, payments:1 has been serving for days: its deployment completed.")
    ecs_pay = at(payments, "ecs")
    first = ecs_pay.describe_services(cluster="prod", services=["payments"])["services"][0]["deployments"][0]
    completed = as_member(deployment_state_change(pay["service"].replace(f":{payments.region}:{payments.account}:",
                                                                         ":us-east-1:123456789012:"),
                                                  first["id"], "SERVICE_DEPLOYMENT_COMPLETED", at=sim.clock()),
                          payments)
    _route(sim, router, completed, payments, f"SERVICE_DEPLOYMENT_COMPLETED {first['id']} for prod/payments")
    sim.say("CI ships payments:2, which exits 1 on start. Three tasks crash within a minute.")
    broken = ecs_pay.register_task_definition(family="payments", containerDefinitions=[
        {"name": "payments", "image": "payments:2026.11.5", "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    ecs_pay.update_service(cluster="prod", service="payments", taskDefinition=broken)
    for n in range(3):
        sim.advance(15)
        crash = _crashed_task(payments, "payments", broken, n, sim)
        _route(sim, router, crash, payments, f"task {n + 1} of payments:2 STOPPED: container payments exited 1")
    running = ecs_pay.describe_services(cluster="prod", services=["payments"])["services"][0]["taskDefinition"]
    sim.check("prod/payments in 222222222222/eu-west-1 rolled back to payments:1", pay["rev1"], running)
    sim.expect_outcome("rollback", count=1, target="prod/payments @ 222222222222/eu-west-1")

    sim.advance(30)
    sim.say(f"An alarm named {spec.name} in account {STRANGER}, which is no member and which no policy names, "
            "reaches the hub (a forwarding rule someone pointed at its default bus).")
    stranger = Place(STRANGER, "us-east-1")
    # the stranger's own alarm of the same name: its ARN names its account, as the envelope does
    theirs = {**alarm, "AlarmArn": alarm["AlarmArn"].replace(f":{retail.region}:{retail.account}:",
                                                             f":{stranger.region}:{stranger.account}:")}
    foreign = as_member(alarm_state_change(theirs, state=state_value(spec, "ALARM", 99.0, sim.clock()),
                                           previous=previous, at=sim.clock()), stranger)
    foreign["id"] = "stranger-" + foreign["id"]
    sim.publish(foreign, "CloudWatch", f"{spec.name} in {STRANGER}: OK → ALARM (CPUUtilization 99%)")
    shop_after = at(retail, "ecs").describe_services(cluster="prod", services=["shop"])["services"][0]
    sim.check("the stranger's alarm changed nothing anywhere", 4, shop_after["desiredCount"])
    sim.expect_outcome("ignored:foreign-account", count=1)
    sim.expect_desired("prod", "web", 6)  # the hub's own services are untouched throughout
    _ = shop


def _members_registry(sim: Sim) -> None:
    """CloudFormation creates the hub stack's MemberRegistry resource (its parameters, written to the table)."""
    from autopilot_tools.demo import backdoor
    from autopilot_tools.demo.organisation import CloudFormation

    answers = backdoor.capture_cloudformation_answers()
    cfn = CloudFormation("autopilot-local", "arn:aws:lambda:us-east-1:123456789012:function:policy-resource:live")
    cfn.stack_id = sim.stack.ref("AWS::StackId")
    request = cfn.request("Create", "MemberRegistry", "Custom::EcsAutopilotMembers", {
        "Accounts": ORGANISATION_PARAMETERS["MemberAccounts"], "Regions": ORGANISATION_PARAMETERS["MemberRegions"],
        "OrganizationId": "", "RoleName": "ecs-autopilot-member", "ExternalId": ""})
    before = len(answers)
    sim.invoke("PolicyResourceFunction", request.event, actor="CFN",
               label="Create MemberRegistry (Custom::EcsAutopilotMembers) of the hub stack")
    request.answer = answers[before] if len(answers) > before else None
    sim.check("CloudFormation got SUCCESS for the member registry", "SUCCESS", request.status)


def _member_service(place: Any, name: str, desired: int) -> dict[str, str]:
    from autopilot_tools.demo.organisation import at

    ecs = at(place, "ecs")
    ecs.create_cluster(clusterName="prod")
    rev1 = ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": name, "image": f"{name}:2026.11.4", "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(cluster="prod", serviceName=name, taskDefinition=rev1,
                                 desiredCount=desired)["service"]["serviceArn"]
    return {"rev1": rev1, "service": service}


def _crashed_task(place: Any, service: str, task_definition: str, n: int, sim: Sim) -> dict[str, Any]:
    from autopilot_tools.demo.events import event_id, task_state_change

    arn = f"arn:aws:ecs:{place.region}:{place.account}"
    task = {"clusterArn": f"{arn}:cluster/prod", "taskArn": f"{arn}:task/prod/{event_id(f'{service}-{n}')[:32]}",
            "taskDefinitionArn": task_definition, "group": f"service:{service}", "startedBy": "ecs-svc/7039561123",
            "cpu": 256, "memory": 512, "createdAt": sim.clock(), "startedAt": sim.clock(), "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED", "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": service, "image": f"{service}:2026.11.5", "exitCode": 1}]}
    event = task_state_change(task, at=sim.clock(), version=3)
    event["account"], event["region"] = place.account, place.region
    return event


def _route(sim: Sim, router: Any, event: dict[str, Any], place: Any, label: str) -> None:
    """A member's event, through its forwarding rule and the hub bus's rules, to the functions."""
    from autopilot_tools.demo.timeline import Row

    functions = router.route(event, place)
    actor = "CloudWatch" if event["source"] == "aws.cloudwatch" else "ECS"
    sim._row(Row(sim.clock.elapsed, "event", actor, f"{label} (member's rule → hub's bus)", functions=functions))
    for function in functions:
        sim.invoke(function, event)


# ============================================================================ (j) policies in the teams' stacks
CHECKOUT_POLICY: dict[str, Any] = {
    "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "checkout"},
    "spec": {"scaling": {"minTasks": 2, "maxTasks": 20, "scaleOutCooldownSeconds": 60,
                         "rules": [{"alarm": "checkout-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 3}]}]}},
}


def policy_in_stack(sim: Sim) -> None:
    from autopilot_tools.demo import backdoor
    from autopilot_tools.demo.estate import alarm_spec, put_alarm
    from autopilot_tools.demo.organisation import CloudFormation

    answers = backdoor.capture_cloudformation_answers()
    ecs = client_ecs()
    ecs.register_task_definition(family="checkout", containerDefinitions=[
        {"name": "checkout", "image": "checkout:2026.11.4", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="checkout", taskDefinition="checkout", desiredCount=2)
    spec = alarm_spec("checkout-cpu-high")
    put_alarm(spec)
    sim.estate.alarms[spec.name] = spec
    sim.estate.services[("prod", "checkout")] = "checkout"
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:autopilot-local-PolicyResourceFunction:live"
    team = CloudFormation("team-checkout", function_arn)

    def send(request_type: str, properties: dict[str, Any] | None, what: str, logical: str = "CheckoutPolicy",
             stack: CloudFormation = team) -> Any:
        request = stack.request(request_type, logical, "Custom::EcsAutopilotPolicy", properties)
        before = len(answers)
        sim.invoke("PolicyResourceFunction", request.event, actor="CFN",
                   label=f"{request_type} {logical} (Custom::EcsAutopilotPolicy) in stack "
                         f"{stack.stack_id.split('/')[1]}: {what}")
        request.answer = answers[before] if len(answers) > before else None
        stack.settle(request)
        from autopilot_tools.demo.timeline import Row

        sim._row(Row(sim.clock.elapsed, "ecs", "CFN",
                     f"← {request.status}" + (f": {request.reason}" if request.reason else
                                              f" (physical id {request.answer.get('PhysicalResourceId')})"
                                              if request.answer else "")))
        return request

    sim.say("The checkout team declares its policy next to its ECS service, in its own stack "
            "(Type: Custom::EcsAutopilotPolicy, ServiceToken: !ImportValue ecs-autopilot-PolicyServiceToken). "
            "CloudFormation passes every number as a string; the function types them back and checks the policy "
            "as autopilot validate does.")
    created = send("Create", CHECKOUT_POLICY, "minTasks 2, maxTasks 20, +3 tasks on checkout-cpu-high")
    sim.check("the stack's Create succeeded", "SUCCESS", created.status)
    stored = sim.store.get_policy("SVC#prod#checkout")
    sim.check("the policy is stored, declared by the stack", True,
              stored is not None and (sim.store.policy_owner("SVC#prod#checkout") or "").endswith("#CheckoutPolicy"))
    sim.say("The policy is live at once: checkout's CPU alarm fires.")
    sim.alarm(spec.name, "ALARM", 88)
    sim.expect_desired("prod", "checkout", 5)
    sim.alarm(spec.name, "OK", 45)

    sim.advance(60)
    sim.say("The team lowers maxTasks to 12 in its template and deploys.")
    lower = {**CHECKOUT_POLICY, "spec": {"scaling": {**CHECKOUT_POLICY["spec"]["scaling"], "maxTasks": 12}}}
    updated = send("Update", lower, "maxTasks 20 → 12")
    sim.check("the Update succeeded", "SUCCESS", updated.status)
    sim.say("A later change has two mistakes: minTasks: two, and a misspelt maxTasks.")
    bad_scaling = {k: v for k, v in lower["spec"]["scaling"].items() if k != "maxTasks"}
    bad = {**lower, "spec": {"scaling": {**bad_scaling, "minTasks": "two", "maxTsks": 12}}}
    failed = send("Update", bad, "minTasks: two, maxTsks: 12")
    sim.check("the Update failed with autopilot validate's reasons", True, failed.status == "FAILED" and (
        "spec.scaling.minTasks: must be a whole number (got 'two')" in failed.reason
        and "spec.scaling.maxTsks: unknown field (did you mean maxTasks?)" in failed.reason))
    rolled = send("Update", lower, "CloudFormation rolls the stack back to the last good properties")
    sim.check("the rollback's Update succeeded and the policy still says maxTasks 12", True,
              rolled.status == "SUCCESS" and _max_tasks(sim, "SVC#prod#checkout") == 12)

    sim.say("Another team's stack declares a policy for prod/web, which the platform team applies with the CLI.")
    other = CloudFormation("team-web", function_arn)
    web = {**CHECKOUT_POLICY, "metadata": {"cluster": "prod", "service": "web"}}
    refused = send("Create", web, "prod/web", logical="WebPolicy", stack=other)
    sim.check("a stack cannot take over a policy the CLI applied", True,
              refused.status == "FAILED" and "declared by autopilot apply" in refused.reason)
    cleanup = send("Delete", None, "CloudFormation deletes the resource whose Create failed", logical="WebPolicy",
                   stack=other)
    sim.check("…and its cleanup leaves prod/web's policy alone", True,
              cleanup.status == "SUCCESS" and sim.store.get_policy("SVC#prod#web") is not None)

    sim.advance(60)
    sim.say("The checkout team removes the resource from its stack.")
    deleted = send("Delete", None, "remove CheckoutPolicy")
    sim.check("the Delete succeeded and the policy is gone", True,
              deleted.status == "SUCCESS" and sim.store.get_policy("SVC#prod#checkout") is None)
    sim.say("Checkout's CPU alarm fires again: no policy names it any more.")
    sim.alarm(spec.name, "ALARM", 90)
    sim.expect_outcome("ignored:unknown-alarm", count=1)
    sim.expect_desired("prod", "checkout", 5)
    sim.expect_outcome("policy:created", count=1, target="prod/checkout")
    sim.expect_outcome("policy:deleted", count=1, target="prod/checkout")


def _max_tasks(sim: Sim, key: str) -> int | None:
    policy = sim.store.get_policy(key)
    scaling = policy.spec.scaling if isinstance(policy, ServicePolicy) else None
    return scaling.maxTasks if scaling else None


def client_ecs() -> Any:
    from autopilot.aws.clients import client

    return client("ecs")


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
    Scenario("accounts", "A hub and two member accounts: scaled and rolled back there; a stranger's alarm ignored",
             "Member events reach the hub's bus through the member stack's rules; the hub acts through the member "
             "role; an account that is no member is ignored as ignored:foreign-account.",
             accounts, requires=("ScalerFunction", "HealerFunction", "RolloutFunction", "PolicyResourceFunction"),
             parameters=ORGANISATION_PARAMETERS),
    Scenario("policy-in-stack", "A policy declared in a team's stack: create, update, a bad update, delete",
             "Custom::EcsAutopilotPolicy: applied and deleted with the stack, refused with autopilot validate's "
             "words, never taking over another's policy.",
             policy_in_stack, requires=("PolicyResourceFunction", "ScalerFunction")),
]


def by_name() -> dict[str, Scenario]:
    return {s.name: s for s in SCENARIOS}


__all__ = ["SCENARIOS", "AssumptionFailed", "Behaviour", "Scenario", "TaskPolicy", "by_name"]
