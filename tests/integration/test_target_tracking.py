"""targetTracking rules through the reconciler on moto: GetMetricData (fed by put_metric_data) -> desired count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from autopilot.usecases import target_tracking as tt_usecase
from autopilot.usecases.reconcile import reconcile
from tests.aws_calls import as_function

DIMS = {"ClusterName": "prod", "ServiceName": "web"}


def policy(rule: dict[str, Any], mode: str = "enforce", min_tasks: int = 2, max_tasks: int = 40) -> ServicePolicy:
    return ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"mode": mode, "scaling": {"minTasks": min_tasks, "maxTasks": max_tasks, "scaleInCooldownSeconds": 60,
                                           "rules": [{"targetTracking": rule}]}},
    })


def cpu_rule(**extra: Any) -> dict[str, Any]:
    metric = {"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": DIMS, "stat": "Average", "period": 60}
    return {"metric": metric, "targetValue": 50, "sizing": "newest", **extra}  # HPA semantics, pinned by hand


def make_service(desired: int, running: int | None = None) -> None:
    """A service whose deployment completed (moto: all ``running``) or is still rolling (fewer running)."""
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_ECS_SERVICE_RUNNING", str(desired if running is None else running))
        ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=desired)


def put_cpu(clock: Any, values_newest_first: list[float]) -> None:
    """One datapoint per complete minute before the clock's minute (newest first)."""
    minute = clock.now.replace(second=0, microsecond=0)
    data = [{"MetricName": "CPUUtilization", "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS.items()],
             "Timestamp": minute - timedelta(minutes=i + 1), "Value": v, "Unit": "Percent"}
            for i, v in enumerate(values_newest_first)]
    client("cloudwatch").put_metric_data(Namespace="AWS/ECS", MetricData=data)


def desired() -> int:
    return client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"]


def run(deps: Any) -> dict[str, Any]:
    with as_function("ReconcilerFunction"):
        return reconcile(deps)


def outcomes(result: dict[str, Any]) -> list[str]:
    return [o["outcome"] for o in result["outcomes"]]


def test_scales_out_proportionally_from_the_metric(deps, clock):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule()), clock())
    put_cpu(clock, [100.0, 40.0])
    result = run(deps)
    assert outcomes(result) == ["scale-out"]
    assert desired() == 8  # ceil(4 x 100 / 50)
    entry = deps.store.history(cluster="prod", service="web", now=clock())[0]
    assert entry.outcome == "scale-out" and entry.calls[0] == "ecs:UpdateService"
    assert "100 vs target 50" in entry.reason and "4 to 8" in entry.reason


def test_trend_aware_rule_scales_out_before_the_breach(deps, clock):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule(scaleOutLookaheadSeconds=120, trendDatapoints=2)), clock())
    put_cpu(clock, [45.0, 35.0])  # within the band, but rising 10 a minute: 65 two minutes on
    result = run(deps)
    assert outcomes(result) == ["scale-out"]
    assert desired() == 6  # ceil(4 x 65 / 50)
    entry = deps.store.history(cluster="prod", service="web", now=clock())[0]
    assert "45 (trend: 65 in 120s) vs target 50" in entry.reason


def test_within_tolerance_and_missing_data_change_nothing_quietly(deps, clock):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule()), clock())
    assert outcomes(run(deps)) == []  # no datapoint at all: missing data never scales in
    put_cpu(clock, [54.0])  # 8 % above target, within the 10 % tolerance
    clock.advance(60)
    assert outcomes(run(deps)) == []
    assert desired() == 4
    assert deps.store.history(cluster="prod", service="web", now=clock()) == []  # quiet skips are not audited


def test_scale_in_waits_for_the_stabilization_window(deps, clock):
    make_service(8)
    deps.store.put_policy(policy(cpu_rule(scaleInStabilizationSeconds=180)), clock())
    put_cpu(clock, [50.0])  # on target: recommendation 8
    assert outcomes(run(deps)) == []
    for _ in range(2):  # 20 %: recommendation ceil(8 x 20 / 50) = 4, but the 8 of less than 180 s ago wins
        clock.advance(60)
        put_cpu(clock, [20.0])
        assert outcomes(run(deps)) == []
        assert desired() == 8
    clock.advance(60)  # the 8 is now 180 s old: out of the window (HPA: strictly newer than now - window)
    put_cpu(clock, [20.0])
    assert outcomes(run(deps)) == ["scale-in"]
    assert desired() == 4


def test_no_scale_in_while_a_deployment_rolls(deps, clock):
    make_service(8, running=6)  # moto: deployment IN_PROGRESS until every task runs
    deps.store.put_policy(policy(cpu_rule(scaleInStabilizationSeconds=0)), clock())
    put_cpu(clock, [10.0])
    assert outcomes(run(deps)) == []
    assert desired() == 8


def test_stale_metric_is_missing_data(deps, clock):
    make_service(8)
    deps.store.put_policy(policy(cpu_rule(scaleInStabilizationSeconds=0)), clock())
    minute = clock.now.replace(second=0, microsecond=0)
    client("cloudwatch").put_metric_data(Namespace="AWS/ECS", MetricData=[{
        "MetricName": "CPUUtilization", "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS.items()],
        "Timestamp": minute - timedelta(minutes=6), "Value": 5.0}])
    assert outcomes(run(deps)) == []
    assert desired() == 8


def test_tracks_an_alarms_metric_and_respects_dry_run(deps, clock):
    make_service(4)
    client("cloudwatch").put_metric_alarm(
        AlarmName="web-cpu", Namespace="AWS/ECS", MetricName="CPUUtilization",
        Dimensions=[{"Name": k, "Value": v} for k, v in DIMS.items()], Statistic="Average", Period=60,
        EvaluationPeriods=1, Threshold=90, ComparisonOperator="GreaterThanThreshold")
    deps.store.put_policy(policy({"metric": "web-cpu", "targetValue": 50}, mode="dry-run"), clock())
    put_cpu(clock, [75.0])
    result = run(deps)
    assert outcomes(result) == ["scale-out"]
    assert desired() == 4  # dry-run: decided and audited, not applied
    entry = deps.store.history(cluster="prod", service="web", now=clock())[0]
    assert entry.mode == "dry-run" and entry.actions[0]["desired"] == 6


def test_one_get_metric_data_call_for_all_rules(deps, clock, monkeypatch):
    ecs = client("ecs")
    make_service(4)
    ecs.create_service(cluster="prod", serviceName="api", taskDefinition="web", desiredCount=2)
    deps.store.put_policy(policy(cpu_rule()), clock())
    api = policy(cpu_rule()).model_dump(mode="json")
    api["metadata"]["service"] = "api"
    api["spec"]["scaling"]["rules"][0]["targetTracking"]["metric"]["dimensions"]["ServiceName"] = "api"
    deps.store.put_policy(ServicePolicy.model_validate(api), clock())
    put_cpu(clock, [100.0])
    calls: list[int] = []
    original = deps.alarms.metric_series

    def counting(queries, start, end):
        calls.append(len(queries))
        return original(queries, start, end)

    monkeypatch.setattr(deps.alarms, "metric_series", counting)
    result = run(deps)
    assert calls == [2]
    assert outcomes(result) == ["scale-out"]  # web has data; api's metric has none: it holds


def test_paused_service_is_skipped_without_audit(deps, clock):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule()), clock())
    snap = deps.store.load_state("SVC#prod#web")
    deps.store.save_state("SVC#prod#web", snap.state.model_copy(update={"paused": True}), snap.version)
    put_cpu(clock, [100.0])
    assert outcomes(run(deps)) == []
    assert desired() == 4


@pytest.mark.parametrize("rule", [{"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 1}]}])
def test_alarm_rules_beside_target_tracking_keep_working(deps, clock, rule):
    make_service(4)
    doc = policy(cpu_rule()).model_dump(mode="json", exclude_none=True)
    doc["spec"]["scaling"]["rules"].append(rule)
    deps.store.put_policy(ServicePolicy.model_validate(doc), clock())
    assert ServicePolicy.model_validate(doc).alarm_names() == ["web-cpu-high"]
    assert outcomes(run(deps)) == []
    assert tt_usecase.TRIGGER == "reconcile: targetTracking"
