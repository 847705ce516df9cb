"""Issue 11, operations: the dashboard shows decisions and failures per function, dead letters, notification
failures, the reconciler's duration against its timeout, and throttles; every metric it charts is one that
exists (AWS's, or what the code emits: the EMF names come from usecases/observe.py and execute.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.usecases.observe import _COUNTED
from autopilot_tools.localstack import load_template
from tests.template.iam_policies import ResolvingStack

pytestmark = pytest.mark.template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = sorted(k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
EMITTED = set(_COUNTED.values()) | {"ActionFailed", "NotificationFailed", "InvalidEvent", "Skipped", "DecisionLatency",
                                    "PlaceFailed",  # usecases/reconcile.py: a member place with a failure
                                    "ForecastRefreshFailed"}  # usecases/predictive.py: a forecast not refreshed


def body() -> dict[str, Any]:
    stack = ResolvingStack.for_template(RESOURCES, {"ManagedClusters": "prod,batch"}, TEMPLATE["Parameters"],
                                        TEMPLATE.get("Conditions", {}))
    (dashboard,) = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    resolved = stack.resolve_all(dashboard["Properties"]["DashboardBody"])
    assert isinstance(resolved, str)
    return json.loads(resolved)  # type: ignore[no-any-return]


def charted() -> list[list[str]]:
    """Every metric line, with CloudWatch's "..." and "." shorthands expanded."""
    out: list[list[str]] = []
    for widget in body()["widgets"]:
        previous: list[str] = []
        for line in widget["properties"]["metrics"]:
            parts = [p for p in line if isinstance(p, str)]
            if parts and parts[0] == "...":
                parts = previous[:len(previous) - (len(parts) - 1)] + parts[1:]
            parts = [previous[i] if p == "." else p for i, p in enumerate(parts)]
            out.append(parts)
            previous = parts
    return out


def test_the_dashboard_body_is_json_with_metric_widgets() -> None:
    widgets = body()["widgets"]
    assert len(widgets) >= 6 and all(w["type"] == "metric" for w in widgets)


@pytest.mark.parametrize("metric", ["Invocations", "Errors", "Throttles"])
def test_per_function_lambda_metrics(metric: str) -> None:
    names = {line[3] for line in charted() if line[:3] == ["AWS/Lambda", metric, "FunctionName"]}
    assert names == {f"*-{f}" for f in FUNCTIONS}, f"{metric} of every function"


def test_decisions_and_failures_are_what_the_code_emits() -> None:
    ours = {line[1] for line in charted() if line[0] == "EcsAutopilot"}
    assert {"ActionFailed", "NotificationFailed", "ScaleOut", "ScaleIn", "RolledBack"} <= ours
    assert ours <= EMITTED, f"charted but never emitted: {ours - EMITTED}"
    for line in charted():
        if line[0] == "EcsAutopilot":
            assert line[2:] == ["service", "ecs-autopilot"], "the dimensions Powertools emits"


def test_dead_letters_reconciler_duration_and_ecs_throttling() -> None:
    lines = charted()
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "*-DeadLetterQueue"] in lines
    assert ["AWS/Lambda", "Duration", "FunctionName", "*-ReconcilerFunction"] in lines
    assert any(line[:2] == ["AWS/Usage", "CallCount"] and "UpdateService" in line for line in lines)
    (duration,) = [w for w in body()["widgets"] if "Reconciler" in w["properties"]["title"]]
    timeout_ms = RESOURCES["ReconcilerFunction"]["Properties"]["Timeout"] * 1000
    assert duration["properties"]["annotations"]["horizontal"][0]["value"] == timeout_ms
