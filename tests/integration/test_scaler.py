"""ScalerFunction against moto: every published alarm form, states, bad input, modes, faults, races."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from autopilot.models.state import ServiceState
from tests.conftest import at_home, load_handler, published, variant

POLICY: dict[str, Any] = {
    "apiVersion": "autopilot/v1", "kind": "ServicePolicy",
    "metadata": {"cluster": "prod", "service": "web"},
    "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "scaleOutCooldownSeconds": 60, "rules": [
        {"alarm": "ServerCpuTooHigh", "steps": [{"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                                {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2}]},
        {"alarm": "TotalNetworkTrafficTooHigh", "steps": [{"lowerBound": 0, "adjustment": 3}]},
        {"alarm": "EC2 CPU Utilization Anomaly", "steps": [{"upperBound": 0, "adjustment": -1}]},
        {"alarm": "ServiceAggregatedAlarm", "exactCapacity": 20},
        {"alarm": "lambda-demo-metric-alarm", "targetValue": 2.5},
        {"alarm": "Test alert", "steps": [{"upperBound": 0, "adjustment": -1}]},
        {"alarm": "CompositeDemo.Main", "exactCapacity": 10},
    ]}},
}


@pytest.fixture
def service(deps) -> Any:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=4)
    deps.store.put_policy(ServicePolicy.model_validate(POLICY), deps.clock())
    return deps


@pytest.fixture
def scaler():
    return load_handler("scaler")


def desired() -> int:
    return client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"]


def set_desired(n: int) -> None:
    client("ecs").update_service(cluster="prod", service="web", desiredCount=n)


def outcomes(deps) -> list[str]:
    return [h.outcome for h in deps.store.history(now=deps.clock())]


@pytest.mark.parametrize(
    ("sample", "expected_desired", "expected_outcome"),
    [
        # 99.5 vs 50: +49.5 -> 30 % of 4 = 1.2 -> 1, raised to minAdjustmentMagnitude 2
        ("cloudwatch-alarm-state-change-single-metric.json", 6, "scale-out"),
        ("cloudwatch-alarm-state-change-metric-math.json", 7, "scale-out"),
        # anomaly band: 0.0 below the lower band 0.0206 -> a scale-in step
        ("cloudwatch-alarm-state-change-anomaly-detection.json", 3, "scale-in"),
        # composite: no datapoint, exact capacity
        ("cloudwatch-alarm-state-change-composite-with-suppressor.json", 20, "scale-out"),
        # direct alarm action, no reasonData on the ALARM state: as if on the threshold... there is no threshold
        # either, so targetValue cannot be applied and nothing happens
        ("cloudwatch-alarm-lambda-action-payload-metric-alarm.json", 4, "skipped:no-step"),
        # direct, metric math: 1.0 below threshold 10 -> a scale-in step
        ("cloudwatch-alarm-lambda-action-payload-metric-math.powertools.json", 3, "scale-in"),
        ("cloudwatch-alarm-lambda-action-payload-composite-alarm.json", 10, "scale-out"),
    ],
)
def test_published_samples(service, scaler, lambda_context, sample, expected_desired, expected_outcome):
    result = scaler.lambda_handler(at_home(published(sample)), lambda_context)
    assert result["outcomes"][0]["outcome"] == expected_outcome, result
    assert desired() == expected_desired
    assert outcomes(service) == [expected_outcome]


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_ok_and_insufficient_data_never_trigger(service, scaler, lambda_context, state):
    event = variant(published("cloudwatch-alarm-state-change-anomaly-detection.json"), **{"detail.state.value": state})
    result = scaler.lambda_handler(event, lambda_context)
    assert desired() == 4
    assert result["outcomes"][0]["outcome"] == f"ignored:{state.lower()}"


def test_unknown_alarm_is_audited_as_ignored(service, scaler, lambda_context):
    event = variant(published("cloudwatch-alarm-state-change-single-metric.json"), **{"detail.alarmName": "nobody"})
    scaler.lambda_handler(event, lambda_context)
    assert outcomes(service) == ["ignored:unknown-alarm"]
    assert desired() == 4


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: variant(e, **{"detail.state.reasonData": "{not json"}),
        lambda e: variant(e, **{"detail.state.value": "PANIC"}),
        lambda e: variant(e, **{"detail-type": "ECS Task State Change"}),
        lambda e: {k: v for k, v in e.items() if k != "detail"},
        lambda e: variant(e, **{"detail.alarmName": None}),
        lambda e: variant(e, **{"detail.state": "ALARM"}),
        lambda e: [e],
        lambda e: "ALARM",
    ],
    ids=["reasonData-not-json", "unknown-state", "wrong-detail-type", "no-detail", "null-name", "state-not-object",
         "a-list", "a-string"],
)
def test_invalid_events_are_rejected_without_mutation(service, scaler, lambda_context, mutate, capsys):
    event = mutate(published("cloudwatch-alarm-state-change-single-metric.json"))
    result = scaler.lambda_handler(event, lambda_context)
    assert result["status"] == "rejected"
    assert desired() == 4
    assert outcomes(service) == ["rejected:invalid-event"]
    assert '"InvalidEvent"' in capsys.readouterr().out  # the EMF metric was emitted


def test_global_dry_run_decides_records_and_notifies_but_changes_nothing(service, lambda_context, monkeypatch,
                                                                          topic_messages):
    service.settings.mode = "dry-run"
    from autopilot.usecases.scale import handle_alarm_event

    result = handle_alarm_event(published("cloudwatch-alarm-state-change-single-metric.json"), service)
    assert result["outcomes"][0]["outcome"] == "scale-out"
    assert desired() == 4
    entry = service.store.history(now=service.clock())[0]
    assert entry.mode == "dry-run" and entry.calls == ["dry-run:ecs:UpdateService"]
    assert any(m.startswith("[dry-run] would have: Scaled out") for m in topic_messages())


def test_policy_mode_off_ignores(service):
    from autopilot.usecases.scale import handle_alarm_event

    off = dict(POLICY, spec=dict(POLICY["spec"], mode="off"))
    service.store.put_policy(ServicePolicy.model_validate(off), service.clock())
    handle_alarm_event(published("cloudwatch-alarm-state-change-single-metric.json"), service)
    assert desired() == 4
    assert outcomes(service) == ["ignored:mode-off"]


def test_paused_service_is_skipped(service):
    from autopilot.usecases.scale import handle_alarm_event

    service.store.save_state("SVC#prod#web", ServiceState(paused=True, paused_reason="incident 42"), 0)
    handle_alarm_event(published("cloudwatch-alarm-state-change-single-metric.json"), service)
    assert desired() == 4
    entry = service.store.history(now=service.clock())[0]
    assert entry.outcome == "skipped:paused" and "incident 42" in entry.reason


def test_failed_update_does_not_consume_the_cooldown(service, monkeypatch):
    """UpdateService fails after botocore's retries: the claim is released and the event can be retried."""
    from autopilot.usecases.scale import handle_alarm_event

    calls = {"n": 0}
    real = service.ecs.set_desired_count

    def flaky(cluster: str, name: str, desired_count: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateService")
        real(cluster, name, desired_count)

    monkeypatch.setattr(service.ecs, "set_desired_count", flaky)
    event = published("cloudwatch-alarm-state-change-single-metric.json")
    with pytest.raises(ClientError):
        handle_alarm_event(event, service)
    assert desired() == 4
    state = service.store.load_state("SVC#prod#web").state
    assert state.scaling.scale_out_until is None and state.applied_events == []
    assert outcomes(service) == ["failed:scale-out"]
    handle_alarm_event(event, service)  # Lambda's retry of the same event
    assert desired() == 6
    handle_alarm_event(event, service)  # and a duplicate after that changes nothing
    assert desired() == 6


def test_same_transition_via_eventbridge_and_alarm_action_applies_once(service):
    from autopilot.usecases.scale import handle_alarm_event

    eb = published("cloudwatch-alarm-state-change-single-metric.json")
    direct = at_home(published("cloudwatch-alarm-lambda-action-payload-metric-alarm.json"))
    direct = variant(direct, **{"alarmData.alarmName": "ServerCpuTooHigh",
                                "alarmData.state.timestamp": eb["detail"]["state"]["timestamp"],
                                "alarmData.state.reasonData": eb["detail"]["state"]["reasonData"]})
    handle_alarm_event(eb, service)
    handle_alarm_event(direct, service)
    assert desired() == 6
    assert sorted(outcomes(service)) == ["scale-out", "skipped:duplicate"]


def test_cooldown_skip_needs_no_describe_services(service, monkeypatch):
    from autopilot.usecases.scale import handle_alarm_event

    base = published("cloudwatch-alarm-state-change-single-metric.json")
    handle_alarm_event(base, service)
    seen: list[str] = []
    real = service.ecs.describe_services
    monkeypatch.setattr(service.ecs, "describe_services", lambda *a: seen.append("describe") or real(*a))
    again = variant(base, **{"detail.state.timestamp": "2019-10-02T17:05:40.989+0000", "id": "second"})
    service.clock.advance(30)
    handle_alarm_event(again, service)
    assert seen == []
    assert outcomes(service)[0] == "skipped:cooldown"


def test_concurrent_invocations_scale_once(service, atomic_dynamodb):
    """Ten threads deliver different transitions of the same alarm at once: one scale-out, the rest skip."""
    from autopilot.usecases.scale import handle_alarm_event

    base = published("cloudwatch-alarm-state-change-single-metric.json")
    events = [variant(base, **{"id": f"e{i}", "detail.state.timestamp": f"2019-10-02T17:04:{i:02d}.000+0000"})
              for i in range(10)]
    errors: list[BaseException] = []

    def run(event: dict[str, Any]) -> None:
        try:
            handle_alarm_event(event, service)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert desired() == 6
    history = outcomes(service)
    assert history.count("scale-out") == 1
    assert history.count("skipped:cooldown") == 9


def test_notification_is_a_sentence_plus_json(service, topic_messages):
    from autopilot.usecases.scale import handle_alarm_event

    handle_alarm_event(published("cloudwatch-alarm-state-change-single-metric.json"), service)
    (message,) = topic_messages()
    sentence, body = message.split("\n\n", 1)
    assert sentence.startswith("Scaled out prod/web from 4 to 6 tasks")
    detail = json.loads(body)
    assert detail["kind"] == "set-desired-count" and detail["desired"] == 6 and detail["previous"] == 4
