"""The use cases run on ports alone: in-memory fakes of the state store, ECS, alarms and the executor are enough.

Also the small shared pieces the use cases lean on: the parse-or-reject opening, per-cluster describe
batching, the reconciler's typed hooks, AWS timestamps, botocore's throttling codes, and idempotency built
once per container.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.retries.standard import ThrottledRetryableChecker

from autopilot.aws.errors import is_throttling, is_transient
from autopilot.models.actions import Action
from autopilot.models.audit import AuditEntry
from autopilot.models.events import aware_time
from autopilot.models.place import Place, Registration
from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot.models.state import ServiceState, Snapshot
from autopilot.ports import (
    AlarmView,
    ConcurrentUpdate,
    Dependencies,
    EcsPort,
    RunTaskResult,
    ServiceView,
    StateStorePort,
)
from autopilot.settings import Settings
from autopilot.usecases.reconcile import reconcile
from autopilot.usecases.runner import Context
from autopilot.usecases.scale import handle_alarm_event
from autopilot.usecases.services import describe_policies
from tests.conftest import sample

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEB = ServicePolicy.model_validate({
    "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
    "spec": {"scaling": {"minTasks": 2, "maxTasks": 10, "scaleOutCooldownSeconds": 60,
                         "rules": [{"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 2}]}]}},
})


# ------------------------------------------------------------------------------------------ fakes


@dataclass
class MemoryStore:
    """StateStorePort in memory, with the same conditional-write rule as the state table."""

    policies: dict[str, ServicePolicy | TaskPolicy] = field(default_factory=dict)
    states: dict[str, tuple[int, ServiceState]] = field(default_factory=dict)
    audited: list[AuditEntry] = field(default_factory=list)
    forecasts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    derivations: dict[str, str] = field(default_factory=dict)

    def get_policy(self, key: str) -> ServicePolicy | TaskPolicy | None:
        return self.policies.get(key)

    def list_policies(self) -> list[ServicePolicy | TaskPolicy]:
        return list(self.policies.values())

    def policies_for_alarm(self, alarm: str) -> list[ServicePolicy]:
        return [p for p in self.policies.values() if isinstance(p, ServicePolicy) and alarm in p.alarm_names()]

    def names_place(self, place: Place) -> bool:
        return any(p.metadata.place == place for p in self.policies.values())

    def registration(self) -> Registration:
        return Registration()

    def load_state(self, key: str) -> Snapshot:
        version, state = self.states.get(key, (0, ServiceState()))
        return Snapshot(key=key, state=state, version=version)

    def load_states(self, keys: Iterable[str]) -> dict[str, Snapshot]:
        return {key: self.load_state(key) for key in keys}

    def save_state(self, key: str, state: ServiceState, expected_version: int,
                   audit: list[AuditEntry] | None = None) -> int:
        if self.states.get(key, (0, None))[0] != expected_version:
            raise ConcurrentUpdate(key)
        self.states[key] = (expected_version + 1, state)
        self.audited += audit or []
        return expected_version + 1

    def audit(self, *entries: AuditEntry) -> None:
        self.audited += entries

    def load_forecasts(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {key: self.forecasts[key] for key in keys if key in self.forecasts}

    def save_forecast(self, key: str, rule: str, document: dict[str, Any], now: datetime,
                      keep: timedelta = timedelta(days=3)) -> None:
        self.forecasts[(key, rule)] = document

    def find_derivation(self, derivation_id: str) -> str | None:
        return self.derivations.get(derivation_id)

    def record_derivation(self, derivation_id: str, arn: str, now: datetime) -> None:
        self.derivations.setdefault(derivation_id, arn)


@dataclass
class MemoryEcs:
    desired: dict[tuple[str, str], int] = field(default_factory=dict)
    described: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]:
        self.described.append((cluster, tuple(services)))
        return {s: ServiceView(cluster=cluster, service=s, desired_count=self.desired[(cluster, s)],
                               running_count=self.desired[(cluster, s)], task_definition=f"{s}:1")
                for s in services if (cluster, s) in self.desired}

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self.desired[(cluster, service)] = desired

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        raise AssertionError("not expected here")

    def run_task(self, request: dict[str, Any]) -> RunTaskResult:
        raise AssertionError("not expected here")


@dataclass
class Nobody:
    """Notifier, alarms and executor that record what they were asked."""

    executed: list[tuple[str, str]] = field(default_factory=list)
    ecs: MemoryEcs | None = None

    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None:
        pass

    def describe_alarms(self, names: list[str]) -> dict[str, AlarmView]:
        return {}

    def latest_values(self, alarms: list[AlarmView]) -> dict[str, float]:
        return {}

    def execute(self, actions: tuple[Action, ...] | list[Action], mode: str) -> list[str]:
        for action in actions:
            self.executed.append((action.kind, mode))
            if action.kind == "set-desired-count" and self.ecs is not None and mode == "enforce":
                self.ecs.set_desired_count(action.cluster, action.service, action.desired)  # type: ignore[union-attr]
        return [f"{kind}" for kind, _ in self.executed]


def fake_deps(store: StateStorePort, ecs: EcsPort) -> tuple[Dependencies, Nobody]:
    """Typed with the ports: `make mypy` checks this file, so the fakes must match the Protocols."""
    nobody = Nobody(ecs=ecs if isinstance(ecs, MemoryEcs) else None)
    deps = Dependencies(settings=Settings(table="memory"), store=store, ecs=ecs, notifier=nobody, alarms=nobody,
                        executor=nobody, clock=lambda: NOW)
    return deps, nobody


# ------------------------------------------------------------------------------------------ use cases on fakes


def test_an_alarm_scales_out_through_the_ports_alone() -> None:
    store, ecs = MemoryStore(policies={WEB.key: WEB}), MemoryEcs(desired={("prod", "web"): 4})
    deps, nobody = fake_deps(store, ecs)
    event = sample("scaler-alarm-high.json")
    answer = handle_alarm_event(event, deps)
    assert [o["outcome"] for o in answer["outcomes"]] == ["scale-out"]
    assert nobody.executed == [("set-desired-count", "enforce")]
    assert ecs.desired[("prod", "web")] == 6
    assert [e.outcome for e in store.audited] == ["scale-out"]
    assert handle_alarm_event(event, deps)["outcomes"][0]["outcome"] == "skipped:duplicate"


@pytest.mark.parametrize("event, reason", [
    ("not an event", "event is a str, not an object"),
    ({"source": "aws.cloudwatch"}, "neither an EventBridge alarm event nor an alarm-action payload"),
])
def test_an_invalid_event_is_rejected_audited_and_touches_nothing(event: Any, reason: str) -> None:
    store, ecs = MemoryStore(policies={WEB.key: WEB}), MemoryEcs(desired={("prod", "web"): 4})
    deps, nobody = fake_deps(store, ecs)
    assert handle_alarm_event(event, deps) == {"status": "rejected", "reason": reason}
    assert [(e.outcome, e.trigger, e.reason) for e in store.audited] == [
        ("rejected:invalid-event", "invalid alarm event", reason)]
    assert nobody.executed == [] and ecs.described == [] and store.states == {}


def test_describe_policies_batches_per_cluster() -> None:
    ecs = MemoryEcs(desired={("prod", "web"): 2, ("prod", "api"): 3, ("batch", "etl"): 1})

    def policy(cluster: str, service: str) -> ServicePolicy:
        return WEB.model_copy(update={"metadata": WEB.metadata.model_copy(update={"cluster": cluster,
                                                                                  "service": service})})

    views = describe_policies(ecs, [policy("prod", "web"), policy("batch", "etl"), policy("prod", "api"),
                                    policy("prod", "gone")])
    assert sorted(ecs.described) == [("batch", ("etl",)), ("prod", ("web", "api", "gone"))]
    assert sorted(views) == [("batch", "etl"), ("prod", "api"), ("prod", "web")]


@pytest.mark.parametrize(("failing", "asked", "failed", "skipped"), [
    # nothing fails: every batch asked once
    (set(), ["a0", "a1", "a2", "b0", "c0"], [], []),
    # one batch of a fails: the rest of a is not asked, b and c are
    ({"a1"}, ["a0", "a1", "b0", "c0"], ["a1"], ["a2"]),
    # a cluster that always fails costs only its own services
    ({"a0", "a1", "a2"}, ["a0", "b0", "c0"], ["a0"], ["a1", "a2"]),
    # two clusters failed (throttling, an outage): nothing more is asked this run
    ({"a0", "b0"}, ["a0", "b0"], ["a0", "b0"], ["a1", "a2", "c0"]),
])
def test_describe_policies_asks_ten_at_a_time_and_stops_asking_after_failures(
        failing: set[str], asked: list[str], failed: list[str], skipped: list[str]) -> None:
    """23 services in cluster a (batches a0-a2), 1 in b, 1 in c."""
    layout = {"a": [f"svc-{i:02d}" for i in range(23)], "b": ["svc-b"], "c": ["svc-c"]}
    ecs = MemoryEcs(desired={(c, n): 1 for c, names in layout.items() for n in names})
    real = ecs.describe_services
    seen: list[str] = []

    def batch_name(cluster: str, services: list[str]) -> str:
        return f"{cluster}{layout[cluster].index(services[0]) // 10}"

    def describe(cluster: str, services: list[str]) -> Any:
        assert len(services) <= 10
        seen.append(batch_name(cluster, services))
        if seen[-1] in failing:
            raise RuntimeError("throttled")
        return real(cluster, services)

    ecs.describe_services = describe  # type: ignore[method-assign]
    policies = [WEB.model_copy(update={"metadata": WEB.metadata.model_copy(update={"cluster": c, "service": n})})
                for c, names in layout.items() for n in names]
    handed: list[tuple[str, bool]] = []
    views = describe_policies(ecs, policies, lambda c, batch, exc, skip: handed.append((batch_name(c, batch), skip)))
    assert seen == asked
    assert [b for b, skip in handed if not skip] == failed and [b for b, skip in handed if skip] == skipped
    unread = {b for b, _ in handed}
    assert {batch_name(c, [s]) for c, s in views} == {b for b in asked if b not in unread}
    if failing:
        with pytest.raises(RuntimeError):  # without a handler a failure is the caller's
            describe_policies(ecs, policies)


def test_the_reconciler_runs_its_typed_hooks_with_every_service_policy() -> None:
    store, ecs = MemoryStore(policies={WEB.key: WEB}), MemoryEcs(desired={("prod", "web"): 4})
    deps, _ = fake_deps(store, ecs)
    seen: list[tuple[str, list[str]]] = []

    def hook(ctx: Context, got: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
        seen.append((ctx.source, [p.key for p in policies]))
        return [AuditEntry(at=ctx.now, target=WEB.key, event_id=ctx.event_id, source=ctx.source, trigger="hook",
                           outcome="scale-out", reason="from the hook")]

    answer = reconcile(deps, event_id="tick", hooks=(hook,))
    assert seen == [("reconciler", ["SVC#prod#web"])]
    assert [o["reason"] for o in answer["outcomes"]] == ["from the hook"]


# ------------------------------------------------------------------------------------------ small helpers


@pytest.mark.parametrize("text, expected", [
    ("2019-10-02T17:04:40.989+0000", datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=UTC)),
    ("2019-10-02T17:04:40Z", datetime(2019, 10, 2, 17, 4, 40, tzinfo=UTC)),
    ("2024-01-01T00:00:00.123456789Z", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ("2019-10-02T17:04:40.5-05:30", datetime(2019, 10, 2, 17, 4, 40, 500000,
                                             tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
    ("2019-10-02T17:04:40", None),  # naive: cannot be compared with an aware now
    ("yesterday", None),
    ("", None),
    (None, None),
])
def test_aware_time(text: str | None, expected: datetime | None) -> None:
    assert aware_time(text) == expected


def test_a_naive_task_event_time_is_rejected() -> None:
    from autopilot.models.events import InvalidEvent
    from autopilot.models.task_events import parse_healer_event

    event = sample("healer-crash.json")
    event["time"] = "2026-11-26T11:59:30"
    with pytest.raises(InvalidEvent, match="time: not a timestamp with a time zone"):
        parse_healer_event(event)


@pytest.mark.parametrize("code", getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES"))
def test_throttling_is_what_botocore_retries_as_throttling(code: str) -> None:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    assert is_throttling(response) and is_transient(response)


@pytest.mark.parametrize("response, throttled, transient", [
    ({"Error": {"Code": "InvalidParameterException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, False, False),
    ({"Error": {"Code": "AccessDeniedException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, False, False),
    ({"Error": {"Code": "ServerException"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, False, True),
    ({"Error": {"Code": "RequestTimeout"}, "ResponseMetadata": {"HTTPStatusCode": 408}}, False, True),
    ({}, False, False),
])
def test_transient_errors(response: dict[str, Any], throttled: bool, transient: bool) -> None:
    assert (is_throttling(response), is_transient(response)) == (throttled, transient)


class RecordingDynamoDB:
    """Enough of a DynamoDB client for Powertools' persistence layer on a first delivery."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("PutItem")
        return {}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("UpdateItem")
        return {}


def test_idempotency_is_built_once_per_client() -> None:
    from autopilot import idempotency

    idempotency._once.cache_clear()
    dynamodb = RecordingDynamoDB()
    for n in range(3):
        answer = idempotency.run_once(lambda e: {"seen": e["id"]}, {"id": f"e{n}"}, table="t", function="scaler",
                                      key_jmespath="id", client=dynamodb)
        assert answer == {"seen": f"e{n}"}
    assert idempotency._once.cache_info().misses == 1 and idempotency._once.cache_info().hits == 2
    assert dynamodb.calls == ["PutItem", "UpdateItem"] * 3
    idempotency.run_once(lambda e: {}, {"id": "x"}, table="t", function="scaler", key_jmespath="id",
                         client=RecordingDynamoDB())
    assert idempotency._once.cache_info().misses == 2  # another client (tests, the demo): another layer
