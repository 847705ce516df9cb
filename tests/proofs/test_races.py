"""Races: 20 concurrent invocations for one service, against the moto server (real HTTP; one request at a
time, so DynamoDB's conditional writes are the arbiter they are on AWS).

Each invocation is the real handler in its own thread, all released at once by a barrier. An invocation
may fail the way Lambda expects it to: Powertools' ``IdempotencyAlreadyInProgressError`` (the same event
is being processed right now) or ``ConcurrentUpdate`` (it lost the conditional write five times running).
Lambda retries those; the proof retries them too, after the storm, and then counts what reached AWS:
exactly what one serial delivery of the events makes.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from autopilot.aws.clients import client
from autopilot.store.table import ConcurrentUpdate
from tests.conftest import sample, variant
from tests.proofs.support import (
    ARN,
    WEB,
    healer_world,
    invoke,
    outcomes,
    restarter_sample,
    restarter_world,
    rollout_world,
    scaler_world,
    state_of,
    td,
)

N = 20
RETRIED = (IdempotencyAlreadyInProgressError, ConcurrentUpdate)


def storm(function: str, events: list[Any]) -> list[Any]:
    """Invoke ``function`` once per event, all at once; then retry (serially) what Lambda would retry."""
    barrier = threading.Barrier(len(events))
    results: list[Any] = []
    retry: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(event: Any) -> None:
        barrier.wait()
        try:
            result = invoke(function, event)
        except RETRIED:
            with lock:
                retry.append(event)
            return
        except BaseException as exc:  # surfaced below
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    results += [invoke(function, event) for event in retry]  # Lambda's retries, after the storm
    return results


def mutations(served: Any) -> list[str]:
    return [c.short() for c in served.log.mutations()]


def desired(service: str = "web") -> int:
    return int(client("ecs").describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


def running_task_definition() -> str:
    return str(client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"])


# ---------------------------------------------------------------------------------------- scaler
@pytest.mark.parametrize("same", [True, False], ids=["one-transition-20-times", "20-transitions"])
def test_one_scale_out_per_cooldown(served: Any, same: bool) -> None:
    scaler_world(served.deps)
    base = sample("scaler-alarm-high.json")  # breach of 25 over 50: +30 % of 4, at least 2 -> 6
    events = [base if same else variant(base, **{"id": f"transition-{n}",
                                                 "detail.state.timestamp": f"2026-11-26T11:59:{n:02d}.000+0000"})
              for n in range(N)]
    with served.log.recording():
        storm("scaler", events)
    assert mutations(served) == ["ecs:UpdateService", "sns:Publish"]
    (update,) = [c for c in served.log.mutations() if c.operation == "UpdateService"]
    assert update.params == {"cluster": "prod", "service": "web", "desiredCount": 6}
    assert desired() == 6
    history = outcomes(served.deps, "prod", "web")
    assert history.count("scale-out") == 1
    assert set(history) <= {"scale-out", "skipped:cooldown", "skipped:duplicate"}


# ---------------------------------------------------------------------------------------- healer
def stops(name: str, world: dict[str, Any], count: int = N) -> list[dict[str, Any]]:
    """``count`` different tasks of web:7 stopping the way events/<name> says."""
    out = []
    for n in range(count):
        task = f"{ARN}:task/prod/{n + 100:032x}"
        out.append(variant(sample(name), **{"id": f"{name}-{n}", "resources": [task], "detail.taskArn": task,
                                            "detail.taskDefinitionArn": world["web"][6]}))
    return out


def test_a_crash_loop_storm_rolls_back_once(served: Any) -> None:
    world = healer_world(served.deps)
    with served.log.recording():
        storm("healer", stops("healer-crash.json", world))
    assert mutations(served) == ["ecs:UpdateService", "sns:Publish"]
    (update,) = [c for c in served.log.mutations() if c.operation == "UpdateService"]
    assert update.params == {"cluster": "prod", "service": "web", "taskDefinition": world["web"][5]}
    assert running_task_definition() == world["web"][5]
    assert state_of(served.deps, WEB).rollout.is_bad(world["web"][6])
    assert outcomes(served.deps, "prod", "web").count("rollback") == 1


def test_an_oom_storm_registers_one_revision(served: Any) -> None:
    world = healer_world(served.deps)
    with served.log.recording():
        storm("healer", stops("healer-oom.json", world))
    assert mutations(served) == ["ecs:RegisterTaskDefinition", "ecs:UpdateService", "sns:Publish"]
    assert len(client("ecs").list_task_definitions(familyPrefix="web")["taskDefinitionArns"]) == 8
    assert running_task_definition() == td("web", 8)
    assert outcomes(served.deps, "prod", "web").count("oom-right-size") == 1


# ---------------------------------------------------------------------------------------- rollout
def test_a_failed_deployment_delivered_20_times_rolls_back_once(served: Any) -> None:
    rollout_world(served.deps)
    failed = sample("rollout-failed-circuit-breaker.json")
    # the same event (EventBridge redelivery) and the same change under other ids (another delivery path)
    events = [failed if n % 2 else failed | {"id": f"other-{n}"} for n in range(N)]
    with served.log.recording():
        storm("rollout", events)
    assert mutations(served) == ["ecs:UpdateService", "sns:Publish"]
    (update,) = [c for c in served.log.mutations() if c.operation == "UpdateService"]
    assert update.params == {"cluster": "prod", "service": "web", "taskDefinition": td("web", 1)}
    assert len(state_of(served.deps, WEB).rollout.rollbacks) == 1


# ---------------------------------------------------------------------------------------- restarter
def test_one_restart_message_delivered_20_times_starts_one_task(served: Any) -> None:
    net = restarter_world(served.deps)
    event = restarter_sample("restarter-restart-due.json", net["subnet"], net["group"])
    with served.log.recording():
        results = storm("restarter", [event] * N)
    assert mutations(served) == ["ecs:RunTask", "sns:Publish"]
    assert all(r == {"batchItemFailures": []} for r in results)
    assert len(client("ecs").list_tasks(cluster="batch")["taskArns"]) == 1



# ---------------------------------------------------------------------------------------- the race the storm found
def test_the_oom_storm_race_replayed_deterministically() -> None:
    """The interleaving behind the OOM storm's second rollback, replayed without threads: invocation A
    decided the right-sizing of web:7 and claimed it (state written) but its UpdateService has not reached
    ECS yet; invocation B, deciding now on a third failure of web:7, still sees web:7 running. B must not
    trip the crash loop and roll back to LKG (which would undo A's right-sizing); with no right-sizing
    under way, the same facts do roll back (the control)."""
    from datetime import UTC, datetime, timedelta

    from autopilot.decide.classify import classify
    from autopilot.decide.healing import Facts, decide_service_stop
    from autopilot.models.healing_state import CrashWindow, FailureMark, HealingState, OomRecord
    from autopilot.models.policy import ServicePolicy
    from autopilot.models.rollout_state import RolloutState
    from autopilot.models.state import ServiceState
    from autopilot.models.task_events import parse_healer_event
    from autopilot.ports import ServiceView
    from tests.proofs.support import HEALER_POLICY

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    web7, web6 = td("web", 7), td("web", 6)
    task = parse_healer_event(variant(sample("healer-crash.json"), **{"detail.taskDefinitionArn": web7}))
    marks = [FailureMark(key=f"t{n}", at=now - timedelta(seconds=30 + n), kind="crash") for n in range(2)]
    counted = ServiceState(rollout=RolloutState(lkg=web6),
                           healing=HealingState(crash={"web:7": CrashWindow(failures=marks)}))
    right_sizing = counted.model_copy(update={"healing": counted.healing.model_copy(update={"oom": {
        "web:7": OomRecord(outcome="derived", at=now - timedelta(seconds=2), derivation_id="oom-web7")}})})
    still_web7 = Facts(service=ServiceView(cluster="prod", service="web", desired_count=10, task_definition=web7),
                       service_fetched=True)
    policy = ServicePolicy.model_validate(HEALER_POLICY)

    def decide(state: ServiceState) -> Any:
        return decide_service_stop(task=task, cls=classify(task), policy=policy, state=state, facts=still_web7,
                                   now=now)

    decision, _ = decide(right_sizing)
    assert decision.outcome == "counted" and decision.actions == ()
    control, _ = decide(counted)
    assert control.outcome == "rollback"
    later, _ = decide(right_sizing.model_copy(update={"healing": right_sizing.healing.model_copy(update={"oom": {
        "web:7": OomRecord(outcome="derived", at=now - timedelta(seconds=601), derivation_id="oom-web7")}})}))
    assert later.outcome == "rollback", "once the crash window has passed, web:7 crash-looping again is handled"


def test_the_arbiter_is_sound(served: Any) -> None:
    """The moto server as these proofs run it lets exactly one of 20 concurrent conditional writes win
    (moto's own server, like in-process moto, checks and writes without a lock: several can win)."""
    dynamodb, table = client("dynamodb"), served.deps.settings.table
    for round_ in range(5):
        wins: list[int] = []
        barrier = threading.Barrier(N)

        def put(n: int, round_: int = round_, wins: list[int] = wins, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                dynamodb.put_item(TableName=table, Item={"PK": {"S": f"race-{round_}"}, "SK": {"S": "STATE"}},
                                  ConditionExpression="attribute_not_exists(PK)")
                wins.append(n)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=put, args=(n,)) for n in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1, f"round {round_}: {len(wins)} winners"
