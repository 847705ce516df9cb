"""Stop classification: every documented stop code and reason, every published task sample, odd input."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.classify import FAILURES, RESTARTABLE, StopKind, classify
from autopilot.models.events import InvalidEvent
from autopilot.models.task_events import parse_healer_event, parse_task_event
from tests.conftest import EVENTS, PUBLISHED_EVENTS, published, variant

STOPPED = "ecs-task-state-change-stopped-user-initiated-ec2-service.json"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


def stopped(code: str | None, reason: str | None, containers: list[dict[str, Any]] | None = None,
            **changes: Any) -> dict[str, Any]:
    """The published STOPPED sample with its stop code, reason and containers changed."""
    event = published(STOPPED)
    detail = event["detail"]
    if code is None:
        detail.pop("stopCode", None)
    else:
        detail["stopCode"] = code
    if reason is None:
        detail.pop("stoppedReason", None)
    else:
        detail["stoppedReason"] = reason
    if containers is not None:
        base = detail["containers"][0]
        detail["containers"] = []
        for i, c in enumerate(containers):
            item = dict(base, name=c.get("name", f"c{i}"))
            item.pop("exitCode", None)
            item.update({k: v for k, v in c.items() if k != "name"})
            detail["containers"].append(item)
    return variant(event, **{f"detail.{k}": v for k, v in changes.items()})


def kind_of(event: dict[str, Any]) -> StopKind:
    return classify(parse_task_event(event)).kind


# Every documented stop code and stopped reason (aws-facts section 1), with the exit codes that matter.
CASES = [
    # normal: scale-in / deployment replacement, user stop, clean exits
    ("ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/5888882704497679006)",
     [{"exitCode": 143}], StopKind.NORMAL),
    ("ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/1)", [{"exitCode": 137}],
     StopKind.NORMAL),  # SIGKILL after stopTimeout during a scale-in is the stop itself
    ("UserInitiated", "Task stopped by user", [{"exitCode": 0}], StopKind.NORMAL),
    ("UserInitiated", "Task stopped by user", [{"exitCode": 137}], StopKind.NORMAL),
    ("UserInitiated", "cleanup by the deploy pipeline", [{"exitCode": 1}], StopKind.NORMAL),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 0}], StopKind.NORMAL),
    ("EssentialContainerExited", "Essential container in task exited",
     [{"name": "app", "exitCode": 0}, {"name": "sidecar", "exitCode": 143}], StopKind.NORMAL),
    ("EssentialContainerExited", "Essential container in task exited",
     [{"name": "app", "exitCode": 0}, {"name": "sidecar", "exitCode": 137}], StopKind.NORMAL),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 143}], StopKind.NORMAL),
    (None, "Essential container in task exited", [{"exitCode": 0}], StopKind.NORMAL),  # older events: no stopCode
    # crash: non-zero exit of an essential container
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 1}], StopKind.CRASH),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 139}], StopKind.CRASH),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 255}], StopKind.CRASH),
    ("EssentialContainerExited", "Essential container in task exited",
     [{"name": "app", "exitCode": 2}, {"name": "sidecar", "exitCode": 143}], StopKind.CRASH),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": 137}], StopKind.CRASH),
    (None, "Essential container in task exited", [{"exitCode": 3}], StopKind.CRASH),
    # OOM
    ("EssentialContainerExited", "Essential container in task exited",
     [{"exitCode": 137, "reason": OOM_REASON}], StopKind.OOM),
    ("EssentialContainerExited", "Essential container in task exited",
     [{"name": "app", "exitCode": 137, "reason": OOM_REASON}, {"name": "sidecar", "exitCode": 143}], StopKind.OOM),
    ("EssentialContainerExited", OOM_REASON, [{"exitCode": 137}], StopKind.OOM),
    # health checks
    ("ServiceSchedulerInitiated", "Task failed ELB health checks in (elb my-elb)", [{"exitCode": 143}],
     StopKind.HEALTH_CHECK),
    ("ServiceSchedulerInitiated",
     "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:"
     "targetgroup/web/73e2d6bc24d8a067)", [{"exitCode": 137}], StopKind.HEALTH_CHECK),
    ("ServiceSchedulerInitiated", "Task failed container health checks", [{"exitCode": 143}], StopKind.HEALTH_CHECK),
    ("EssentialContainerExited", "Task failed container health checks", [{"exitCode": 1}], StopKind.HEALTH_CHECK),
    # start failures
    ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
     [], StopKind.IMAGE_PULL),
    ("TaskFailedToStart", "Task failed to start",
     [{"reason": "CannotPullContainerError: Error response from daemon: manifest unknown"}], StopKind.IMAGE_PULL),
    ("TaskFailedToStart", "ResourceInitializationError: unable to pull secrets or registry auth", [],
     StopKind.RESOURCE_INIT),
    ("TaskFailedToStart", "CannotStartContainerError: Error response from daemon: OCI runtime create failed",
     [], StopKind.CANNOT_START),
    ("TaskFailedToStart", "Task failed to start",
     [{"reason": "CannotStartContainerError: exec format error"}], StopKind.CANNOT_START),
    ("TaskFailedToStart", "Timeout waiting for network interface provisioning to complete.", [],
     StopKind.START_FAILURE),
    ("TaskFailedToStart", None, None, StopKind.START_FAILURE),
    # Spot
    ("SpotInterruption", "Your Spot Task was interrupted.", [{"exitCode": 143}], StopKind.SPOT),
    ("SpotInterruption", None, None, StopKind.SPOT),
    ("TerminationNotice", "Your Spot Task was interrupted.", [{"exitCode": 143}], StopKind.SPOT),
    # infrastructure, unknown
    ("TerminationNotice", "Host EC2 (instance i-0b1c2d3e4f5a6b7c8) stopped/terminated.", [{"exitCode": 143}],
     StopKind.INFRASTRUCTURE),
    ("InfrastructureHealth", "Task stopped due to a problem with the underlying infrastructure", [],
     StopKind.INFRASTRUCTURE),
    ("ServiceSchedulerInitiated", "Some scheduler reason added in 2027", [{"exitCode": 1}], StopKind.UNKNOWN),
    ("SomethingNewFromAws2027", "Essential container in task exited", [{"exitCode": 1}], StopKind.UNKNOWN),
    (None, None, [{"exitCode": 1}], StopKind.UNKNOWN),
    ("EssentialContainerExited", "Essential container in task exited", [], StopKind.UNKNOWN),
    ("EssentialContainerExited", "Essential container in task exited", [{"exitCode": None}], StopKind.UNKNOWN),
    # the published sample's own container (exit 0)
    ("EssentialContainerExited", "Essential container in task exited", None, StopKind.NORMAL),
]


@pytest.mark.parametrize(("code", "reason", "containers", "expected"), CASES)
def test_documented_codes_and_reasons(code, reason, containers, expected):
    assert kind_of(stopped(code, reason, containers)) == expected


def test_published_stopped_sample_is_a_normal_user_stop():
    cls = classify(parse_task_event(published(STOPPED)))
    assert cls.kind == StopKind.NORMAL and not cls.failure


def test_the_oom_culprit_and_its_exit_code_are_reported():
    cls = classify(parse_task_event(stopped("EssentialContainerExited", "Essential container in task exited", [
        {"name": "sidecar", "exitCode": 143}, {"name": "app", "exitCode": 137, "reason": OOM_REASON}])))
    assert (cls.kind, cls.container, cls.exit_code, cls.oom_containers) == (StopKind.OOM, "app", 137, ("app",))


def test_the_crash_culprit_is_the_container_with_the_bad_exit():
    cls = classify(parse_task_event(stopped("EssentialContainerExited", "Essential container in task exited", [
        {"name": "sidecar", "exitCode": 143}, {"name": "app", "exitCode": 3}])))
    assert (cls.kind, cls.container, cls.exit_code) == (StopKind.CRASH, "app", 3)


def test_spot_by_capacity_provider_even_with_another_reason():
    event = stopped("TerminationNotice", "Task is being retired", [{"exitCode": 143}],
                    capacityProviderName="FARGATE_SPOT")
    assert kind_of(event) == StopKind.SPOT


def test_missing_containers_key_is_handled():
    event = stopped("EssentialContainerExited", "Essential container in task exited")
    del event["detail"]["containers"]
    assert kind_of(event) == StopKind.UNKNOWN


def test_a_1024_character_reason_is_classified_and_shortened_in_the_explanation():
    reason = ("CannotPullContainerError: " + "x" * 2000)[:1024]
    cls = classify(parse_task_event(stopped("TaskFailedToStart", reason, [])))
    assert cls.kind == StopKind.IMAGE_PULL and len(cls.explanation) < 300


def test_failure_sets():
    assert StopKind.UNKNOWN not in FAILURES and StopKind.NORMAL not in FAILURES
    assert StopKind.SPOT not in FAILURES and StopKind.SPOT in RESTARTABLE
    assert StopKind.UNKNOWN not in RESTARTABLE and StopKind.NORMAL not in RESTARTABLE


PUBLISHED_TASK_SAMPLES = sorted(Path(p).name for p in glob.glob(str(PUBLISHED_EVENTS / "ecs-task-state-change-*.json")))


@pytest.mark.parametrize("name", PUBLISHED_TASK_SAMPLES)
def test_every_published_task_sample_parses_and_classifies(name):
    event = json.loads((PUBLISHED_EVENTS / name).read_text(encoding="utf-8-sig"))
    task = parse_task_event(event)
    cls = classify(task)
    if task.last_status == "STOPPED":
        assert cls.kind == StopKind.NORMAL  # the only published STOPPED sample is a user stop
    else:  # running tasks have no stop code: never a failure
        assert cls.kind == StopKind.UNKNOWN and not cls.failure


# Each events/healer-*.json sample is named for the class it exercises.
EXPECTED_SAMPLES = {
    "healer-cannot-start.json": StopKind.CANNOT_START, "healer-crash.json": StopKind.CRASH,
    "healer-health-check-container.json": StopKind.HEALTH_CHECK, "healer-health-check-elb.json": StopKind.HEALTH_CHECK,
    "healer-image-pull.json": StopKind.IMAGE_PULL, "healer-infrastructure.json": StopKind.INFRASTRUCTURE,
    "healer-long-reason.json": StopKind.UNKNOWN, "healer-no-containers.json": StopKind.UNKNOWN,
    "healer-normal-scale-in.json": StopKind.NORMAL, "healer-normal-sigterm-143.json": StopKind.NORMAL,
    "healer-normal-standalone-exit-0.json": StopKind.NORMAL, "healer-normal-user-stop.json": StopKind.NORMAL,
    "healer-oom.json": StopKind.OOM, "healer-resource-init.json": StopKind.RESOURCE_INIT,
    "healer-spot-interruption-stop-code.json": StopKind.SPOT, "healer-spot-interruption.json": StopKind.SPOT,
    "healer-standalone-crash.json": StopKind.CRASH, "healer-standalone-oom.json": StopKind.OOM,
    "healer-start-failure-other.json": StopKind.START_FAILURE, "healer-unknown-stop-code.json": StopKind.UNKNOWN,
}


def test_every_task_sample_in_events_is_covered():
    names = {Path(p).name for p in glob.glob(str(EVENTS / "healer-*.json"))}
    task_samples = {n for n in names if json.loads((EVENTS / n).read_text())["detail-type"] == "ECS Task State Change"}
    assert task_samples == set(EXPECTED_SAMPLES)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_SAMPLES.items()))
def test_project_samples_classify_as_named(name, expected):
    assert classify(parse_task_event(json.loads((EVENTS / name).read_text()))).kind == expected


def _paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        out = {prefix} if prefix else set()
        for key, value in node.items():
            out |= _paths(value, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(node, list):
        out = {prefix}
        for item in node:
            out |= _paths(item, prefix + "[]")
        return out
    return {prefix}


# Fields the ECS docs give for task events that none of the published samples happens to carry.
DOCUMENTED_EXTRA = {"detail.containers[].reason"}


@pytest.mark.parametrize("name", sorted(Path(p).name for p in glob.glob(str(EVENTS / "healer-*.json"))))
def test_project_samples_only_use_fields_of_published_samples(name):
    """events/ samples are variants of published ones: no invented field (containers[].reason is documented)."""
    event = json.loads((EVENTS / name).read_text())
    kind = "ecs-task-state-change-*.json" if event["detail-type"] == "ECS Task State Change" else "ecs-service-action-*"
    known: set[str] = set(DOCUMENTED_EXTRA)
    for path in glob.glob(str(PUBLISHED_EVENTS / kind)):
        known |= _paths(json.loads(Path(path).read_text(encoding="utf-8-sig")))
    assert _paths(event) - known == set()


@settings(max_examples=300, deadline=None)
@given(code=st.one_of(st.none(), st.sampled_from(["EssentialContainerExited", "TaskFailedToStart", "UserInitiated",
                                                  "ServiceSchedulerInitiated", "SpotInterruption",
                                                  "TerminationNotice", "InfrastructureHealth"]), st.text(max_size=40)),
       reason=st.one_of(st.none(), st.text(max_size=1024)),
       exits=st.lists(st.one_of(st.none(), st.integers(-1, 300)), max_size=4),
       reasons=st.lists(st.one_of(st.none(), st.text(max_size=80)), max_size=4))
def test_never_raises_and_unknown_codes_are_never_a_crash(code, reason, exits, reasons):
    containers = [{"name": f"c{i}", "exitCode": e, **({"reason": r} if r is not None else {})}
                  for i, (e, r) in enumerate(zip(exits, reasons + [None] * len(exits), strict=False))]
    cls = classify(parse_task_event(stopped(code or None, reason, containers)))
    known = {"EssentialContainerExited", "TaskFailedToStart", "UserInitiated", "ServiceSchedulerInitiated",
             "SpotInterruption", "TerminationNotice", "InfrastructureHealth", None, ""}
    start_errors = ("CannotPullContainerError", "ResourceInitializationError", "CannotStartContainerError",
                    "OutOfMemoryError", "Task failed ELB health checks", "Task failed container health checks")
    texts = [reason or ""] + [r or "" for r in reasons]
    if code not in known and not any(t.startswith(start_errors) for t in texts):
        assert cls.kind == StopKind.UNKNOWN


@pytest.mark.parametrize("bad", [
    None, [], "text", {"detail-type": "ECS Task State Change"},
    {"detail-type": "Something Else", "source": "aws.ecs", "id": "x", "time": "2026-01-01T00:00:00Z", "detail": {}},
])
def test_bad_input_is_invalid_event(bad):
    with pytest.raises(InvalidEvent):
        parse_healer_event(bad)


def test_task_event_without_task_arn_is_invalid():
    event = published(STOPPED)
    del event["detail"]["taskArn"]
    with pytest.raises(InvalidEvent, match="taskArn"):
        parse_healer_event(event)


def test_service_and_standalone_groups():
    service = parse_task_event(published(STOPPED))
    assert (service.service, service.standalone, service.cluster, service.family, service.revision) == (
        "Webapp", False, "Features", "webapp", 15)
    standalone = parse_task_event(published("ecs-task-state-change-running-fargate-2025.json"))
    assert (standalone.service, standalone.standalone, standalone.family) == (None, True, "webserver")
    no_revision = parse_task_event(published("ecs-task-state-change-running-ec2-2025.json"))
    assert (no_revision.family, no_revision.revision) == ("webserver", None)


def test_service_action_names_service_from_both_arn_formats():
    event = published("ecs-service-action-service-task-placement-failure-fargate-spot.json")
    action = parse_healer_event(event)
    assert (action.cluster, action.service, action.capacity_providers) == ("default", "servicetest", ("FARGATE_SPOT",))
    old = variant(event, **{"resources": ["arn:aws:ecs:us-west-2:111122223333:service/servicetest"]})
    assert parse_healer_event(old).service == "servicetest"
