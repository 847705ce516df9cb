"""`autopilot backtest` / `autopilot recommend` as a user runs them (run_backtest / run_recommend)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from autopilot.models.policy import ScalingRule, ServicePolicy
from autopilot_tools.backtest.cli import run_backtest, run_recommend, select_rules

POLICY = """\
apiVersion: autopilot/v1
kind: ServicePolicy
metadata: {cluster: prod, service: web}
spec:
  scaling:
    minTasks: 1
    maxTasks: 50
    scaleOutCooldownSeconds: 60
    rules:
      - targetTracking: {metric: web-cpu, targetValue: 70, tolerance: 0, scaleInStabilizationSeconds: 600}
      - alarm: web-cpu-high
        steps: [{lowerBound: 0, adjustment: 2}]
"""

ALARMS = {"MetricAlarms": [{
    "AlarmName": "web-cpu-high", "Threshold": 90.0, "ComparisonOperator": "GreaterThanThreshold",
    "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Period": 60, "Statistic": "Average",
    "Namespace": "AWS/ECS", "MetricName": "CPUUtilization"}]}


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """Two days of 5-minute points: a daily wave with a burst."""
    start = datetime(2014, 4, 10, tzinfo=UTC)
    lines = ["timestamp,value"]
    for i in range(2 * 288):
        value = 100 + 60 * ((i % 288) / 288 > 0.5) + (200 if i % 97 == 0 else 0)
        lines.append(f"{(start + timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{value}")
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_backtest_policy_and_references_as_json(trace, tmp_path, capsys):
    policy = write(tmp_path, "p.yaml", POLICY)
    alarms = write(tmp_path, "alarms.json", json.dumps(ALARMS))
    html = tmp_path / "chart.html"
    code = run_backtest([str(trace), "--policy", str(policy), "--alarms", str(alarms), "--json", "--html", str(html)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    names = [r["policy"] for r in out["results"]]
    assert names == ["policy prod/web", "aws-target-tracking (model)", "step pair (typical)",
                     "oracle (knows demand ahead)"]
    assert out["setup"]["start_delay_minutes"] == 2 and out["setup"]["minutes"] == 2 * 288 * 5 - 4
    assert out["results"][3]["overload_minutes"] == 0
    assert html.read_text().count("<svg") == 4


def test_backtest_table_with_one_rule(trace, tmp_path, capsys):
    policy = write(tmp_path, "p.yaml", POLICY)
    assert run_backtest([str(trace), "--policy", str(policy), "--rule", "web-cpu", "--no-references",
                         "--capacity-per-task", "20", "--start-delay", "60"]) == 0
    out = capsys.readouterr().out
    assert "capacity per task 20 (given), start delay 1 min" in out
    assert "(5-minute datapoints held as steps)" in out  # coarse data is held, and said to be
    assert out.splitlines()[1].startswith("policy ") and "policy prod/web" in out


@pytest.mark.parametrize(("args", "code", "message"), [
    ([], 2, "give a trace file"),
    (["missing.csv"], 2, "no such file"),
    (["TRACE", "--no-references"], 2, "nothing to replay"),
    (["TRACE", "--policy", "POLICY"], 2, "need their alarms (web-cpu-high)"),
    (["TRACE", "--policy", "POLICY", "--rule", "nope", "--alarms", "ALARMS"], 2, "matches no rule"),
    (["TRACE", "--policy", "BAD"], 1, "minTasks"),
    (["TRACE", "--capacity-per-task", "0"], 2, "must be positive"),
])
def test_backtest_errors(trace, tmp_path, capsys, args, code, message):
    paths = {"TRACE": str(trace), "POLICY": str(write(tmp_path, "p.yaml", POLICY)),
             "ALARMS": str(write(tmp_path, "a.json", json.dumps(ALARMS))),
             "BAD": str(write(tmp_path, "bad.yaml", POLICY.replace("minTasks: 1", "minTasks: -1")))}
    assert run_backtest([paths.get(a, a) for a in args]) == code
    assert message in capsys.readouterr().err


def test_select_rules_by_index_alarm_or_metric():
    rules = [ScalingRule.model_validate({"targetTracking": {"metric": "cpu", "targetValue": 70}}),
             ScalingRule.model_validate({"alarm": "hi", "steps": [{"lowerBound": 0, "adjustment": 1}]})]
    assert select_rules(rules, []) == rules
    assert select_rules(rules, ["1"]) == [rules[1]]
    assert select_rules(rules, ["cpu", "hi", "0"]) == rules


def test_recommend_prints_paste_ready_snippets(trace, capsys):
    assert run_recommend([str(trace), "--budget", "0", "--workers", "1", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "references: aws-target-tracking (model):" in out and "oracle" in out
    snippets = [block.split("\n", 1)[1] for block in out.split("\n# ")[1:]]
    assert 1 <= len(snippets) <= 3
    for text in snippets:
        block = yaml.safe_load(text.split("\n\n")[0])
        policy = ServicePolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                                               "metadata": {"cluster": "c", "service": "s"}, "spec": block})
        assert policy.spec.scaling is not None and policy.spec.scaling.rules[0].targetTracking is not None


def test_recommend_json(trace, capsys):
    assert run_recommend([str(trace), "--budget", "0", "--workers", "1", "--json", "--target", "60"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == 60 and out["evaluated"] == 1 and out["skipped"] > 0
    assert out["pareto"][0]["snippet"].startswith("scaling:")


def test_recommend_holdout_and_fill(trace, capsys):
    args = [str(trace), "--workers", "1", "--rounds", "1", "--holdout", "--fill", "hold", "--json"]
    assert run_recommend(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deterministic"] and out["skipped"] == 0 and out["rounds"] == 1
    picked = [e for e in out["pareto"] if e["pick"]]
    assert len(picked) <= 1 and all(set(e["vs_aws"]) == {"overload_minutes", "task_hours", "scaling_actions"}
                                    for e in out["pareto"])
    assert all(e["scaling_actions"] <= out["max_actions"] for e in out["pareto"])  # the churn limit
    held = out["holdout"]
    assert held["tuned_on"]["minutes"] + held["evaluated_on"]["minutes"] == out["setup"]["minutes"]
    assert run_recommend([str(trace), "--workers", "1", "--rounds", "0", "--holdout"]) == 0
    text = capsys.readouterr().out
    assert "hold-out" in text and "<= 35 %" in text


def test_backtest_from_cloudwatch(aws, capsys):
    from autopilot.aws.clients import client

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    data = [{"MetricName": "RequestCount", "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/1"}],
             "Timestamp": end - timedelta(minutes=m), "Value": float(100 + (m % 7) * 10)} for m in range(1, 181)]
    cw = client("cloudwatch")
    for start in range(0, len(data), 100):
        cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[start:start + 100])
    code = run_backtest(["--from-cloudwatch", "--dimension", "LoadBalancer=app/web/1", "--days", "0.125",
                         "--end", end.isoformat(), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["setup"]["minutes"] == 180 and out["setup"]["trace"] == "AWS/ApplicationELB/RequestCount"
