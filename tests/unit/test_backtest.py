"""The backtest's service model, reference models, trace readers and report, on small hand-computed traces."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autopilot.models.policy import Scaling, ScalingRule, ServicePolicy, TargetTracking
from autopilot_tools.backtest.cli import halves, holdout
from autopilot_tools.backtest.controllers import AlarmModel, Oracle, PolicyController, aws_target_tracking, step_pair
from autopilot_tools.backtest.model import Result, ServiceModel, simulate
from autopilot_tools.backtest.recommend import (
    Job,
    Limits,
    candidates,
    families,
    meets,
    next_percentile,
    pareto,
    pick,
    planned,
    refine,
    run_candidate,
    search,
    snippet,
)
from autopilot_tools.backtest.report import html_page, table
from autopilot_tools.backtest.trace import TraceError, read_trace, to_minutes

T0 = datetime(2014, 4, 10, tzinfo=UTC)


class Script:
    """A controller that sets a scripted desired count per minute and records what it saw."""

    name = "script"

    def __init__(self, desired: list[int]) -> None:
        self.script, self.seen = desired, []

    def decide(self, minute: int, now: datetime, seen: float | None, desired: int, running: int) -> int:
        self.seen.append(seen)
        return self.script[minute]


# ------------------------------------------------------------------ service model

def test_service_model_by_hand():
    demand = [10.0, 10.0, 30.0, 30.0, 30.0, 30.0, 10.0]
    script = Script([1, 1, 3, 3, 3, 3, 1])
    result = simulate(demand, T0, ServiceModel(capacity_per_task=10, start_delay_minutes=2), script, initial=1,
                      keep_series=True)
    assert result.running == [1, 1, 1, 1, 3, 3, 1]  # asked at minute 2, serving from minute 4
    assert result.overload_minutes == 2  # minutes 2 and 3: 30 on 10 of capacity
    assert result.hot_minutes == 7  # every minute is at or above 85 % (100 % is hot, not overloaded)
    assert result.dropped_pct == pytest.approx(100 * 40 / 150)
    assert result.task_hours == pytest.approx(15 / 60)  # billed from the moment they are asked for
    assert result.actions == 2
    assert script.seen == [None, 100.0, 100.0, 300.0, 300.0, 100.0, 100.0]  # one period late


def test_scale_in_cancels_starting_tasks_first():
    script = Script([5, 3, 3, 3])
    result = simulate([1.0] * 4, T0, ServiceModel(capacity_per_task=1, start_delay_minutes=2), script, initial=1,
                      keep_series=True)
    assert result.running == [1, 1, 3, 3]  # 4 asked at minute 0, 2 of them cancelled at minute 1
    assert result.desired == [5, 3, 3, 3]


def test_zero_start_delay_serves_at_once_and_per_task_metric():
    script = Script([2, 2, 4])
    model = ServiceModel(capacity_per_task=5, start_delay_minutes=0, metric="per-task")
    result = simulate([10.0, 20.0, 20.0], T0, model, script, initial=2, keep_series=True)
    assert result.running == [2, 2, 4]
    assert result.overload_minutes == 1
    assert script.seen == [None, 5.0, 10.0]


def test_utilization_metric_cap():
    model = ServiceModel(capacity_per_task=10, metric_cap=100)
    assert model.observe(30, 1) == 100
    assert model.observe(5, 1) == 50
    assert model.observe(5, 0) is None  # no task, no datapoint


# ------------------------------------------------------------------ reference models

def step_demand(high: float, minutes: int = 20, at: int = 5) -> list[float]:
    return [5.0] * at + [high] * (minutes - at)


def test_aws_target_tracking_model_waits_three_datapoints():
    # 10 tasks at 50 % (capacity 1 per task, target 50); demand jumps to 12 (120 %) at minute 5.
    model = ServiceModel(capacity_per_task=1, start_delay_minutes=2)
    result = simulate(step_demand(12.0), T0, model, aws_target_tracking(50, 1, 100), initial=10, keep_series=True)
    # seen > 50 at minutes 6, 7, 8 -> ALARM at 8 -> ceil(10 x 120 / 50) = 24, serving from minute 10
    assert result.desired[7] == 10 and result.desired[8] == 24
    assert result.overload_minutes == 5  # minutes 5..9
    assert result.actions == 1  # the cooldown's 24 already covers the repeated ALARM


def test_target_tracking_rule_acts_on_the_first_datapoint():
    rule = ScalingRule(targetTracking=TargetTracking(metric="cpu", targetValue=50))
    scaling = Scaling(minTasks=1, maxTasks=100, scaleOutCooldownSeconds=60, rules=[rule])
    model = ServiceModel(capacity_per_task=1, start_delay_minutes=2)
    result = simulate(step_demand(12.0), T0, model, PolicyController("tt", scaling, [rule], {}), initial=10,
                      keep_series=True)
    assert result.desired[5] == 10 and result.desired[6] == 24  # seen at 6, acted at 6
    assert result.overload_minutes == 3  # minutes 5, 6, 7


def test_aws_model_scales_in_after_fifteen_low_datapoints():
    demand = [10.0] * 5 + [2.0] * 30
    result = simulate(demand, T0, ServiceModel(capacity_per_task=1), aws_target_tracking(50, 1, 100), initial=20,
                      keep_series=True)
    # below 45 % from minute 5, seen from 6; the 15th low datapoint is seen at minute 20 -> ceil(20 x 10 / 50) = 4
    assert result.desired[19] == 20 and result.desired[20] == 4


def test_step_pair_adds_fifty_percent_on_a_big_breach():
    model = ServiceModel(capacity_per_task=1, start_delay_minutes=2)
    result = simulate(step_demand(12.0), T0, model, step_pair(50, 1, 100), initial=10, keep_series=True)
    assert result.desired[7] == 10 and result.desired[8] == 15  # 120 - 50 >= 0.4 x 50: +50 % of 10


def test_oracle_never_overloads_at_least_cost():
    demand = [5.0, 5.0, 12.0, 12.0, 5.0, 5.0, 5.0]
    oracle = Oracle(demand, capacity_per_task=1, start_delay=2, min_tasks=1, max_tasks=100)
    result = simulate(demand, T0, ServiceModel(capacity_per_task=1, start_delay_minutes=2), oracle, initial=12,
                      keep_series=True)
    assert result.overload_minutes == 0
    assert result.desired == [12, 12, 12, 12, 5, 5, 5]


@pytest.mark.parametrize(("values", "states"), [
    ([60, 40, 60, 60], ["INSUFFICIENT_DATA", "INSUFFICIENT_DATA", "ALARM", "ALARM"]),  # 2 of 3
    ([60, 40, 40, 60], ["INSUFFICIENT_DATA", "INSUFFICIENT_DATA", "OK", "OK"]),
    ([60, None, 60], ["INSUFFICIENT_DATA", "INSUFFICIENT_DATA", "ALARM"]),  # a missing datapoint is skipped
])
def test_alarm_model_m_of_n(values, states):
    alarm = AlarmModel("a", threshold=50, evaluation_periods=3, datapoints_to_alarm=2)
    assert [alarm.update(i, v) for i, v in enumerate(values)] == states


def test_alarm_model_from_describe_alarms_with_five_minute_period():
    alarm = AlarmModel.from_describe_alarms({"AlarmName": "hi", "Threshold": 50, "Period": 300,
                                             "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                                             "EvaluationPeriods": 1})
    states = [alarm.update(i, v) for i, v in enumerate([40, 40, 60, 60, 60, 40, 40, 40, 40, 40])]
    assert states[3] == "INSUFFICIENT_DATA" and states[4] == "ALARM"  # mean of 40,40,60,60,60 = 52
    assert states[9] == "OK"
    with pytest.raises(ValueError, match="anomaly"):
        AlarmModel.from_describe_alarms({"AlarmName": "x", "ThresholdMetricId": "ad1"})


def test_policy_controller_needs_alarm_definitions():
    rule = ScalingRule(alarm="web-cpu-high", steps=[{"lowerBound": 0, "adjustment": 1}])
    with pytest.raises(ValueError, match="no alarm definition for web-cpu-high"):
        PolicyController("p", Scaling(minTasks=1, maxTasks=5, rules=[rule]), [rule], {})


# ------------------------------------------------------------------ traces

def test_csv_holds_coarse_values_by_default_and_interpolates_on_request(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,value\n2014-04-10 00:00:00,10\n2014-04-10 00:05:00,20\n2014-04-10 00:10:00,0\n")
    trace = read_trace(path)
    assert trace.values == (10, 10, 10, 10, 10, 20, 20, 20, 20, 20, 0)
    assert (trace.start, trace.source_period, trace.minutes) == (T0, 300, 11)
    assert trace.filled == "5-minute datapoints held as steps"
    linear = read_trace(path, fill="linear")
    assert linear.values == (10, 12, 14, 16, 18, 20, 16, 12, 8, 4, 0)
    assert "interpolated linearly (optimistic" in linear.filled


def test_get_metric_data_json(tmp_path: Path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"MetricDataResults": [{"Id": "m1", "Label": "RequestCount", "StatusCode": "Complete",
                                                       "Timestamps": ["2014-04-10T00:02:00+00:00",
                                                                      "2014-04-10T00:01:00+00:00",
                                                                      "2014-04-10T00:00:00Z"],
                                                       "Values": [3.0, 2.0, 1.0]}], "Messages": []}))
    assert read_trace(path).values == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp,value\n2014-04-10 00:00:00,1\n", "at least two datapoints"),
    ("timestamp,value\nyesterday,1\n2014-04-10 00:05:00,2\n", "t.csv:2: unreadable timestamp"),
    ("timestamp,value\n2014-04-10 00:00:00,nan\n2014-04-10 00:05:00,2\n", "not a finite number"),
])
def test_bad_traces(tmp_path: Path, text: str, message: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        read_trace(path)


def test_duplicates_last_wins():
    trace = to_minutes([(T0, 1.0), (T0 + timedelta(minutes=1), 2.0), (T0, 5.0)], "d")
    assert trace.values == (5.0, 2.0)


# ------------------------------------------------------------------ recommend and report

def small_trace() -> list[float]:
    return ([10.0] * 30 + [40.0] * 30) * 4


def test_recommend_grid_snippet_is_a_valid_policy_block():
    demand = small_trace()
    model = ServiceModel(capacity_per_task=4, start_delay_minutes=2)
    job = Job(demand, T0, model, 1, 50, 4)
    grid = candidates(70, "web-cpu")[:6]
    evaluated = [(c, run_candidate(c, job)) for c in grid]
    front = pareto(evaluated)
    assert front and all(a[1].task_hours <= b[1].task_hours and a[1].overload_minutes > b[1].overload_minutes
                         for a, b in itertools.pairwise(front))
    for candidate, _ in front:
        block = yaml.safe_load(snippet(candidate, 1, 50))
        doc = {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "c", "service": "s"},
               "spec": block}
        policy = ServicePolicy.model_validate(doc)  # paste-ready
        assert policy.spec.scaling is not None and policy.spec.scaling.rules[0].targetTracking == candidate.rule


def test_families_cover_targets_windows_bands_and_the_predictive_lever():
    found = families(70, "cpu")
    assert len(found) == 3 * 3 * 2 and [f.family for f in found] == list(range(len(found)))
    assert {f.rule.targetValue for f in found} == {70, 75, 80}
    assert {(f.rule.window_seconds, f.rule.band_tolerance, f.rule.in_hysteresis) for f in found} == {
        (900, 0.15, 1.0), (1800, 0.15, 1.0), (3600, 0.15, 1.0), (900, 0.1, 0.5), (1800, 0.1, 0.5), (3600, 0.1, 0.5)}
    assert {f.rule.targetValue for f in families(95, "cpu")} == {95, 99}  # capped at 99, never twice
    assert all(f.rule.sizing == "robust" and f.rule.predictive is None for f in found)
    defaults = [f for f in found if f.rule.band_tolerance == 0.15]
    assert all(f.rule.tolerance is None and f.rule.scaleInHysteresis is None for f in defaults)  # snippets stay short
    predictive = families(70, "cpu", targets=[60], predictive=True, start_delay_minutes=3)
    assert len(predictive) == 3 * 2 * 3  # the lever off, on, and on without trusting the forecast for scale-in
    levers = [f.rule.predictive for f in predictive if f.rule.predictive is not None]
    assert len(levers) == 12 and all(p.taskStartSeconds == 180 for p in levers)
    assert sorted(p.trustedScaleInPercentile for p in levers) == [55] * 6 + [100] * 6
    grid = candidates(70, "cpu")
    assert len(grid) == 2 * len(found) and {c.percentile for c in grid} == {80, 95}
    assert planned(grid) == len(grid) + 4 * 5  # stage 2: the 5 most promising families, 4 rounds


def result(task_hours: float, overload: int = 0, actions: int = 0) -> Result:
    return Result("r", 1, overload, 0, 0.0, task_hours, actions)


@pytest.mark.parametrize(("tried", "budget", "expected"), [
    ({80: 90, 95: 110}, 100, 87.5),  # bisect between the affordable and the unaffordable percentile
    ({80: 90, 87.5: 99, 95: 110}, 100, 91.2),
    ({80: 90, 87.5: 99, 88: 101}, 100, None),  # less than one apart: done
    ({80: 110, 95: 120}, 100, 65.0),  # nothing affordable: halfway down to 50
    ({50: 110, 51: 120}, 100, None),  # ... until it cannot go lower
    ({80: 80, 95: 90}, 100, 97.0),  # everything affordable: halfway up to 99
    ({98.5: 80, 99: 90}, 100, None),  # ... until it cannot go higher
])
def test_next_percentile(tried, budget, expected):
    family = families(70, "cpu")[1]
    members = [(family.with_percentile(p), result(th)) for p, th in tried.items()]
    assert next_percentile(members, Limits(budget)) == expected


def test_churn_limit_excludes_settings_that_act_too_often():
    limits = Limits(100.0, actions=20)
    assert limits.allows(result(99, actions=20)) and not limits.allows(result(99, actions=21))
    family = families(70, "cpu")[0]
    calm, churny = (family.with_percentile(80), result(90, 10, actions=5)), (family.with_percentile(95),
                                                                           result(95, 1, actions=50))
    assert pareto([calm, churny], max_actions=20) == [calm]
    assert pick(pareto([calm, churny]), limits) == calm


def test_search_is_deterministic_whatever_the_workers():
    demand = small_trace()
    job = Job(demand, T0, ServiceModel(capacity_per_task=4), 1, 50, 4)
    grid = candidates(70, "web-cpu")[:4]
    runs = []
    for workers in (1, 2):
        found = search(job, grid, workers)
        refine(job, found, Limits(10.0), rounds=1, top=2, workers=workers)
        runs.append([(c.label(), r.summary()) for c, r in found.evaluated])
    assert runs[0] == runs[1] and len(runs[0]) > len(grid)
    cut = search(job, grid, 1, deadline=0.0)  # a wall-clock cut still replays one, and says what it left out
    assert (len(cut.evaluated), cut.skipped) == (1, len(grid) - 1)


def test_holdout_tunes_on_the_first_half_and_replays_on_the_second():
    values = tuple(small_trace())
    trace = to_minutes([(T0 + timedelta(minutes=i), v) for i, v in enumerate(values)], "small")
    first, second = halves(trace)
    assert first.values + second.values == trace.values and second.start == T0 + timedelta(minutes=first.minutes)
    doc = holdout(trace, ServiceModel(capacity_per_task=4), 70, 1, 50, workers=1, rounds=1)
    assert doc["tuned_on"]["minutes"] == doc["evaluated_on"]["minutes"] == 120
    held = doc["evaluated_on"]
    assert held["pick"] is not None and held["pick"]["minutes"] == 120
    assert held["meets_target"] == meets(held["pick"], held["aws"])


@pytest.mark.parametrize(("ours", "aws", "met"), [
    ((35, 100.0), (100, 100.0), True),
    ((36, 100.0), (100, 100.0), False),
    ((10, 100.1), (100, 100.0), False),  # more task-hours never meets the bar
    ((0, 99.0), (0, 100.0), True),  # no overload on either side
])
def test_issue_bar(ours, aws, met):
    assert meets(result(ours[1], ours[0]), result(aws[1], aws[0])) is met


def test_hold_fill_keeps_each_value_until_the_next():
    points = [(T0, 10.0), (T0 + timedelta(minutes=5), 20.0)]
    assert to_minutes(points, "x", fill="linear").values == (10.0, 12.0, 14.0, 16.0, 18.0, 20.0)
    assert to_minutes(points, "x").values == (10.0, 10.0, 10.0, 10.0, 10.0, 20.0)  # the default
    with pytest.raises(TraceError, match="unknown fill"):
        to_minutes(points, "x", fill="cubic")


def test_pick_respects_the_task_hour_budget():
    demand = small_trace()
    job = Job(demand, T0, ServiceModel(capacity_per_task=4), 1, 50, 4)
    family = families(70, "m")[0]
    a, b = (family.with_percentile(p) for p in (60, 99))
    front = pareto([(a, run_candidate(a, job)), (b, run_candidate(b, job))])
    cheapest = front[0]
    assert pick(front, Limits(cheapest[1].task_hours)) == cheapest
    assert pick(front, Limits(cheapest[1].task_hours - 1)) is None


def test_report_table_and_self_contained_html():
    demand = small_trace()
    model = ServiceModel(capacity_per_task=4)
    results = [simulate(demand, T0, model, c, 4, keep_series=True)
               for c in (aws_target_tracking(70, 1, 50), Oracle(demand, 4, 2, 1, 50))]
    text = table(results)
    assert text.splitlines()[0].split()[:3] == ["policy", "overload", "min"]
    assert "aws-target-tracking (model)" in text
    trace = to_minutes([(T0 + timedelta(minutes=i), v) for i, v in enumerate(demand)], "small")
    page = html_page(trace, model, results)
    assert "<script" not in page and "src=" not in page and "href=" not in page  # no external resources
    svgs = [s.split("</svg>")[0] + "</svg>" for s in page.split("<svg")[1:]]
    assert len(svgs) == 2
    ns = "{http://www.w3.org/2000/svg}"
    for svg, res in zip(svgs, results, strict=True):
        root = ET.fromstring("<svg" + svg)  # well-formed
        assert [p.findtext(f"{ns}title") for p in root.findall(f"{ns}path")] == [
            "demand / capacity per task", "running tasks", "desired count"]
        shaded = root.findall(f"{ns}rect")  # one span per slice with overload (every minute is a slice here)
        assert len(shaded) == res.overload_minutes


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_parts_add_up_to_the_whole(parts):
    demand = small_trace()
    result = simulate(demand, T0, ServiceModel(capacity_per_task=4), aws_target_tracking(70, 1, 50), 4,
                      keep_series=True, parts=parts)
    if parts == 1:
        assert result.parts == []
        return
    assert len(result.parts) == parts
    assert sum(o for o, _ in result.parts) == result.overload_minutes
    assert sum(h for _, h in result.parts) == pytest.approx(result.task_hours)
    size = len(demand) // parts  # each part counts its own minutes (here: equal parts)
    first = sum(1 for i in range(size) if demand[i] > result.running[i] * 4 * (1 + 1e-9))
    assert result.parts[0] == (first, pytest.approx(sum(result.desired[:size]) / 60))


def parted(task_hours: float, halves: tuple[float, float], overload: int = 0) -> Result:
    found = result(task_hours, overload)
    found.parts = [(0, halves[0]), (0, halves[1])]
    return found


@pytest.mark.parametrize(("candidate", "allowed"), [
    ((98.0, (49.0, 49.0)), True),
    ((99.0, (49.5, 49.5)), True),  # exactly at 99 % everywhere
    ((99.1, (49.5, 49.6)), False),  # over on the whole
    ((98.0, (44.0, 54.0)), False),  # cheap on average, over in the second half: not picked
])
def test_limits_hold_in_every_part(candidate, allowed):
    reference = parted(100.0, (50.0, 50.0))
    limits = Limits.within(reference, 0.01)
    assert limits.parts == (49.5, 49.5)
    assert limits.allows(parted(candidate[0], candidate[1])) is allowed


def test_pick_is_not_limited_to_the_front():
    family = families(70, "cpu")[0]
    uneven = (family.with_percentile(80), parted(90.0, (30.0, 60.0), overload=5))  # on the front, over in a part
    even = (family.with_percentile(90), parted(95.0, (47.0, 48.0), overload=8))  # dominated, within every part
    assert pareto([uneven, even]) == [uneven]
    assert pick([uneven, even], Limits.within(parted(100.0, (50.0, 50.0)), 0.01)) == even


def test_forecast_feed_refreshes_as_the_reconciler_does():
    from autopilot_tools.backtest.controllers import ForecastFeed
    from autopilot_tools.backtest.synthetic import daily_curve

    demand = [100 * daily_curve(t) for t in range(4 * 1440)]
    feed = ForecastFeed(demand[2 * 1440:], T0, history=demand[:2 * 1440])  # two days of history: a fit
    at = [T0 + timedelta(minutes=m) for m in range(0, 125, 5)]
    held = [feed.refreshed(m * 5, now, 0.3, 3600) for m, now in enumerate(at)]
    assert held[0] is not None and held[0].max_error == 0.3 and held[0].usable(at[0]) is None
    assert all(h is held[0] for h in held[:12])  # one object per refresh: minute 0 to 55
    assert held[12] is not held[0] and all(h is held[12] for h in held[12:24])  # refreshed at minute 60
    assert feed.refreshed(0, T0, 0.3, 3600) is not held[12]  # a replay that starts again refreshes again
    one_day = ForecastFeed(demand[1440:], T0, history=demand[:1440]).refreshed(0, T0, 0.3, 3600)
    assert one_day is not None and one_day.usable(T0) is not None  # a day to fit, none to score it: gated
    assert ForecastFeed(demand, T0).refreshed(0, T0, 0.3, 3600) is None  # no history at all


def test_result_summary_keys():
    result = simulate([1.0, 1.0], T0, ServiceModel(capacity_per_task=1), Script([1, 1]), 1)
    assert set(result.summary()) == {"policy", "overload_minutes", "minutes_over_85pct", "dropped_demand_pct",
                                     "task_hours", "scaling_actions", "task_starts", "task_stops", "minutes"}


def test_replaying_twice_gives_the_same_result():
    demand = small_trace()
    model = ServiceModel(capacity_per_task=4)
    first: Any = simulate(demand, T0, model, aws_target_tracking(70, 1, 50), 4).summary()
    assert simulate(demand, T0, model, aws_target_tracking(70, 1, 50), 4).summary() == first


def test_backtest_replays_the_lambdas_own_decision_functions():
    """Not a copy: the controllers call the very functions the scaler and reconciler call."""
    import autopilot.decide.scaling as scaling
    import autopilot.decide.target_tracking as target_tracking
    import autopilot.usecases.scale as scale
    import autopilot.usecases.target_tracking as usecase
    import autopilot_tools.backtest.controllers as controllers

    assert controllers.evaluate is target_tracking.evaluate
    assert usecase.decide_target_tracking is target_tracking.decide_target_tracking
    assert controllers.decide_scaling is scaling.decide_scaling is scale.decide_scaling
    assert controllers.cooldown_precheck is scaling.cooldown_precheck is scale.cooldown_precheck
