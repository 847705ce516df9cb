"""Robust targetTracking (the default sizing) and its predictive lever through the reconciler on moto."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.decide.forecast import SeasonalForecast
from autopilot.models.policy import ServicePolicy
from autopilot.usecases import predictive as predictive_usecase
from autopilot.usecases.reconcile import reconcile
from tests.aws_calls import as_function
from tests.integration.test_target_tracking import DIMS, desired, make_service, outcomes, put_cpu

LOAD = {"namespace": "AWS/ApplicationELB", "name": "RequestCount", "dimensions": {"LoadBalancer": "app/web/1"},
        "stat": "Sum"}


def policy(rule: dict[str, Any]) -> ServicePolicy:
    return ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "rules": [{"targetTracking": rule}]}}})


def cpu_rule(**extra: Any) -> dict[str, Any]:
    metric = {"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": DIMS, "stat": "Average", "period": 60}
    return {"metric": metric, "targetValue": 50, **extra}


def run(deps: Any) -> dict[str, Any]:
    with as_function("ReconcilerFunction"):
        return reconcile(deps)


class CountingSeries:
    """Counts GetMetricData rounds (each ``metric_series`` is one call per 500 queries) and their queries."""

    def __init__(self, deps: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        original = deps.alarms.metric_series

        def counted(queries: list[dict[str, Any]], start: Any, end: Any) -> Any:
            self.calls.append(len(queries))
            return original(queries, start, end)

        monkeypatch.setattr(deps.alarms, "metric_series", counted)


def test_robust_default_scales_out_at_once_beyond_the_noise_and_counts_a_datapoint_once(deps, clock):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule()), clock())
    put_cpu(clock, [100.0])  # load 4 x 100 / 50 = 8 tasks: no noise seen yet, so not noise: act at once
    result = run(deps)
    assert outcomes(result) == ["scale-out"] and desired() == 8
    entry = deps.store.history(cluster="prod", service="web", now=clock())[0]
    assert "asks for 8" in entry.reason and "beyond 3 noise deviations" in entry.reason
    clock.advance(20)  # the same minute again: CloudWatch has nothing newer; the window keeps one entry
    run(deps)
    window = deps.store.load_state("SVC#prod#web").state.target_tracking.loads
    assert [len(v) for v in window.values()] == [1]


def test_robust_default_holds_on_a_dip_and_scales_in_on_the_window(deps, clock):
    make_service(8)
    deps.store.put_policy(policy(cpu_rule()), clock())
    for _ in range(5):  # five minutes on target
        put_cpu(clock, [50.0])
        assert outcomes(run(deps)) == []
        clock.advance(60)
    put_cpu(clock, [20.0])  # one low minute is not a window
    assert outcomes(run(deps)) == [] and desired() == 8
    for _ in range(14):
        clock.advance(60)
        put_cpu(clock, [20.0])
        run(deps)
    assert desired() < 8  # the window's 80th percentile fell: scaled in, once the dip was most of it


def history(clock: Any, days: int = 4) -> None:
    """``days`` of 5-minute RequestCount sums with a daily wave (peak at 14:00)."""
    end = clock.now.replace(second=0, microsecond=0)
    points = []
    for i in range(days * 288):
        at = end - timedelta(minutes=5 * (i + 1))
        hour = at.hour + at.minute / 60
        points.append({"MetricName": "RequestCount", "Timestamp": at, "Unit": "Count",
                       "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/1"}],
                       "Value": 1000 + 800 * math.exp(-((hour - 14) / 4) ** 2)})
    cloudwatch = client("cloudwatch")
    for start in range(0, len(points), 500):
        cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=points[start:start + 500])


def test_predictive_refreshes_once_stores_and_then_reuses_its_forecast(deps, clock, monkeypatch):
    make_service(4)
    rule = cpu_rule(predictive={"loadMetric": LOAD, "refreshSeconds": 3600})
    deps.store.put_policy(policy(rule), clock())
    history(clock)
    counting = CountingSeries(deps, monkeypatch)
    put_cpu(clock, [50.0])
    run(deps)
    assert counting.calls == [1, 1]  # the recent datapoints, then ONE history call for the due refresh
    stored = deps.store.load_forecasts([("SVC#prod#web", policy(rule).spec.scaling.rules[0].targetTracking.key)])
    assert len(stored) == 1
    forecast = SeasonalForecast.from_item(next(iter(stored.values())))
    assert forecast.days >= 3 and forecast.error < 0.3
    assert max(forecast.daily) > 1.2 * min(forecast.daily)  # it learnt the wave
    clock.advance(60)
    put_cpu(clock, [50.0])
    run(deps)
    assert counting.calls == [1, 1, 1]  # within refreshSeconds: no history call
    clock.advance(3600)
    put_cpu(clock, [50.0])
    run(deps)
    assert counting.calls[-2:] == [1, 1]  # due again


def test_a_failed_refresh_never_blocks_scaling(deps, clock, monkeypatch):
    make_service(4)
    deps.store.put_policy(policy(cpu_rule(predictive={"loadMetric": LOAD})), clock())
    original = deps.alarms.metric_series

    def failing_history(queries: list[dict[str, Any]], start: Any, end: Any) -> Any:
        if queries[0]["Id"].startswith("h"):
            raise RuntimeError("throttled")
        return original(queries, start, end)

    monkeypatch.setattr(deps.alarms, "metric_series", failing_history)
    from autopilot.observability import metrics

    metrics.clear_metrics()
    put_cpu(clock, [100.0])
    assert outcomes(run(deps)) == ["scale-out"] and desired() == 8  # reactive, as if there were no forecast
    assert "ForecastRefreshFailed" in metrics.metric_set, "counted (the dashboard charts it), not only logged"
    metrics.clear_metrics()


def test_the_predictive_module_is_loaded_only_for_policies_that_use_it():
    import subprocess
    import sys

    code = ("import sys, autopilot.usecases.reconcile as r; "
            "print('autopilot.usecases.predictive' in sys.modules, 'autopilot.decide.forecast' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert predictive_usecase.MAX_REFRESHES * 14 * 288 <= 100_800  # one GetMetricData answer holds them all
