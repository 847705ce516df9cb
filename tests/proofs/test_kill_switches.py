"""Kill switches: the global ``Mode`` (AUTOPILOT_MODE, here ``deps.settings.mode`` as the function reads it),
a policy's ``spec.mode``, and ``autopilot pause`` each stop every mutating call of every path, within the
very next invocation, with no redeploy.

For each path (the scaler's step, rollback and recycle rules; the rollout's rollback of a FAILED
deployment; the healer's crash loop, OOM right-sizing, Spot fallback and standalone restart; the
restarter's RunTask of an already queued restart; the reconciler's scaling, Spot restore, rollback retry
and target tracking) the world is brought to the point where one more invocation acts. The state table
is saved there; each switch is then tried from that same point (table restored in between): no mutating
call at all for ``off`` and ``pause`` (not even a notification), and for ``dry-run`` nothing but the
``[dry-run] would have: ...`` notification. Last, the same invocation with no switch makes the mutation:
the proof that the switch, not the world, stopped it.

An already queued restart meets the switch when it comes due: under ``off`` or ``pause`` it is not run;
the message is consumed (retrying it would not help) and the decision audited, as for any event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot_tools.cli.main import main as autopilot
from tests.conftest import sample, variant
from tests.proofs.support import (
    ARN,
    AwsLog,
    dump_table,
    healer_world,
    invoke,
    reconciler_world,
    restarter_sample,
    restarter_world,
    restore_table,
    rollout_world,
    scaler_world,
    td,
)

SWITCHES = ["global-off", "global-dry-run", "policy-off", "policy-dry-run", "pause"]


@dataclass
class Path:
    build: Callable[[Any], Any]  # the world
    prepare: Callable[[Any, Any], None]  # enforce-mode steps up to the point where one invocation acts
    act: Callable[[Any, Any], Any]  # that invocation
    expect: set[str]  # the mutations it makes without a switch
    targets: tuple[tuple[str, str, str], ...] = (("prod", "--service", "web"),)  # what `autopilot pause` names


def nothing(deps: Any, world: Any) -> None:
    return None


def alarm(name: str, at: str) -> dict[str, Any]:
    arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    return variant(sample("scaler-alarm-high.json"), **{"id": f"{name}-{at}", "detail.alarmName": name,
                                                        "detail.state.timestamp": at, "resources": [arn]})


def stop(name: str, n: int, world: dict[str, Any]) -> dict[str, Any]:
    task = f"{ARN}:task/prod/{n + 200:032x}"
    return variant(sample(name), **{"id": f"{name}-{n}", "resources": [task], "detail.taskArn": task,
                                    "detail.taskDefinitionArn": world["web"][6]})


def tick(deps: Any, world: Any) -> Any:
    return invoke("reconciler", {"id": f"tick-{deps.clock().isoformat()}", "detail-type": "Scheduled Event"})


def crash_twice(deps: Any, world: Any) -> None:
    for n in range(2):
        invoke("healer", stop("healer-crash.json", n, world))


def spot_fell_back(deps: Any, world: Any) -> None:
    invoke("healer", stop("healer-spot-interruption.json", 0, world))
    invoke("healer", stop("healer-spot-interruption-stop-code.json", 1, world))
    deps.clock.advance(1800)  # holdSeconds


def rolled_back_then_overwritten(deps: Any, world: Any) -> None:
    invoke("rollout", sample("rollout-failed-circuit-breaker.json"))
    client("ecs").update_service(cluster="prod", service="web", taskDefinition=td("web", 2))  # a pipeline
    deps.clock.advance(180)  # ROLLBACK_RETRY_AFTER


def target_tracking_world(deps: Any) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=4)
    dims = {"ClusterName": "prod", "ServiceName": "web"}
    deps.store.put_policy(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "rules": [{"targetTracking": {
            "metric": {"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": dims, "stat": "Average",
                       "period": 60}, "targetValue": 50}}]}}}), deps.clock())
    minute = deps.clock().replace(second=0, microsecond=0)
    client("cloudwatch").put_metric_data(Namespace="AWS/ECS", MetricData=[
        {"MetricName": "CPUUtilization", "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
         "Timestamp": minute - timedelta(minutes=i + 1), "Value": value, "Unit": "Percent"}
        for i, value in enumerate([100.0, 90.0])])


UPDATE, PUBLISH = "ecs:UpdateService", "sns:Publish"
PATHS: dict[str, Path] = {
    "scaler-step-rule": Path(scaler_world, nothing, lambda d, w: invoke("scaler", sample("scaler-alarm-high.json")),
                             {UPDATE, PUBLISH}),
    "scaler-rollback-alarm": Path(rollout_world, nothing,
                                  lambda d, w: invoke("scaler", alarm("web-5xx-high", "2020-05-23T11:05:00.000+0000")),
                                  {UPDATE, PUBLISH}),
    "scaler-recycle-alarm": Path(
        rollout_world, nothing, lambda d, w: invoke("scaler", alarm("web-memory-leak", "2026-11-26T11:59:00.000+0000")),
        {UPDATE, PUBLISH}),
    "rollout-failed-rollback": Path(rollout_world, nothing,
                                    lambda d, w: invoke("rollout", sample("rollout-failed-circuit-breaker.json")),
                                    {UPDATE, PUBLISH}),
    "healer-crash-loop": Path(healer_world, crash_twice,
                              lambda d, w: invoke("healer", stop("healer-crash.json", 2, w)), {UPDATE, PUBLISH}),
    "healer-oom": Path(healer_world, nothing, lambda d, w: invoke("healer", stop("healer-oom.json", 0, w)),
                       {"ecs:RegisterTaskDefinition", UPDATE, PUBLISH}),
    "healer-spot-fallback": Path(
        healer_world, lambda d, w: invoke("healer", stop("healer-spot-interruption.json", 0, w)),
        lambda d, w: invoke("healer", stop("healer-spot-interruption-stop-code.json", 1, w)), {UPDATE, PUBLISH}),
    "healer-standalone-restart": Path(healer_world, nothing,
                                      lambda d, w: invoke("healer", sample("healer-standalone-crash.json")),
                                      {"sqs:SendMessage", PUBLISH}, (("batch", "--family", "nightly-etl"),)),
    "restarter-queued-restart": Path(
        restarter_world, nothing,
        lambda d, w: invoke("restarter", restarter_sample("restarter-restart-due.json", w["subnet"], w["group"])),
        {"ecs:RunTask", PUBLISH}, (("batch", "--family", "nightly-etl"),)),
    "reconciler-scaling": Path(reconciler_world, nothing, tick, {UPDATE, PUBLISH},
                               (("prod", "--service", "web"), ("prod", "--service", "worker"))),
    "reconciler-spot-restore": Path(healer_world, spot_fell_back, tick, {UPDATE, PUBLISH}),
    "reconciler-rollback-retry": Path(rollout_world, rolled_back_then_overwritten, tick, {UPDATE, PUBLISH}),
    "reconciler-target-tracking": Path(target_tracking_world, nothing, tick, {UPDATE, PUBLISH}),
}


def audited_since(deps: Any, saved: list[dict[str, Any]]) -> list[Any]:
    """The audit entries written after the table was saved (the switched invocation's decisions)."""
    from autopilot.store.table import AuditEntry

    before = {(i["PK"]["S"], i["SK"]["S"]) for i in saved}
    return [AuditEntry.model_validate_json(i["doc"]["S"]) for i in dump_table(deps)
            if i["PK"]["S"].startswith("AUDIT#") and (i["PK"]["S"], i["SK"]["S"]) not in before]


def set_policy_modes(deps: Any, mode: str) -> None:
    for policy in deps.store.list_policies():
        assert isinstance(policy, ServicePolicy | TaskPolicy)
        deps.store.put_policy(policy.model_copy(update={"spec": policy.spec.model_copy(update={"mode": mode})}),
                              deps.clock())


def switch_on(deps: Any, switch: str, targets: tuple[tuple[str, str, str], ...]) -> None:
    if switch.startswith("global-"):
        deps.settings.mode = switch.removeprefix("global-")
    elif switch.startswith("policy-"):
        set_policy_modes(deps, switch.removeprefix("policy-"))
    else:
        for cluster, flag, name in targets:
            assert autopilot(["pause", "--table", deps.settings.table, "--cluster", cluster, flag, name,
                              "--reason", "incident 42"]) == 0


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_switch_stops_every_mutation(deps: Any, path: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    case = PATHS[path]
    world = case.build(deps)
    log = AwsLog().attach()
    case.prepare(deps, world)
    saved, start = dump_table(deps), deps.clock.now

    for switch in SWITCHES:
        restore_table(deps, saved)
        deps.clock.now = start
        switch_on(deps, switch, case.targets)
        log.clear()
        with log.recording():
            result = case.act(deps, world)
        deps.settings.mode = "enforce"
        made = log.mutations()
        if path.startswith("restarter"):
            assert result == {"batchItemFailures": []}, "the queued restart is consumed, not retried"
        if not path.startswith("reconciler"):  # the reconciler passes over switched-off services quietly
            recent = audited_since(deps, saved)
            wanted = {"global-off": "ignored:mode-off", "policy-off": "ignored:mode-off", "pause": "skipped:paused"}
            if switch in wanted:
                assert any(e.outcome == wanted[switch] for e in recent), (switch, [e.outcome for e in recent])
            else:
                assert any(e.mode == "dry-run" and e.calls and all(c.startswith("dry-run:") for c in e.calls)
                           for e in recent), (switch, [(e.outcome, e.mode, e.calls) for e in recent])
        if switch.endswith("dry-run"):
            assert {c.short() for c in made} <= {PUBLISH}, (switch, [c.short() for c in made])
            assert all(c.params["Subject"].startswith("[dry-run] would have") for c in made), switch
        else:
            assert made == [], (switch, [c.short() for c in made])

    restore_table(deps, saved)
    deps.clock.now = start
    log.clear()
    with log.recording():
        case.act(deps, world)
    assert {c.short() for c in log.mutations()} == case.expect, "without a switch the same invocation acts"
    capsys.readouterr()
