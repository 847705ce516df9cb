"""Healing decisions (pure): crash loops, image-pull rollbacks, OOM right-sizing, Spot fallback and restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.classify import classify
from autopilot.decide.healing import (
    Facts,
    Need,
    decide_oom,
    decide_service_action,
    decide_service_stop,
    decide_spot_restore,
    derivation_id,
    grow,
)
from autopilot.models.actions import DeriveRevision, Notify, RollBack, SetCapacityStrategy, SetDesiredCount
from autopilot.models.policy import Oom, ServicePolicy
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState
from autopilot.models.task_events import parse_healer_event, parse_task_event
from autopilot.ports import ServiceView
from tests.conftest import sample, variant

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"
LKG = TD.format(6)
FARGATE = [{"capacityProvider": "FARGATE", "weight": 1, "base": 2}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]


def policy(**healing: Any) -> ServicePolicy:
    spec: dict[str, Any] = {"healing": healing or {"crashLoop": {"failures": 3, "windowSeconds": 600}}}
    if "rollout" in healing:
        spec["rollout"] = healing.pop("rollout")
    return ServicePolicy.model_validate({"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                                         "metadata": {"cluster": "prod", "service": "web"}, "spec": spec})


def crash(n: int, *, rev: int = 7, stopped: datetime | None = None, name: str = "healer-crash.json", version: int = 7):
    moment = (stopped or NOW - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}"
    event = variant(sample(name), **{"detail.taskArn": arn, "detail.taskDefinitionArn": TD.format(rev),
                                     "detail.stoppedAt": moment, "detail.version": version, "id": f"evt-{n}-{version}"})
    return parse_task_event(event)


def service(rev: int = 7, strategy: list[dict[str, Any]] | None = None) -> ServiceView:
    return ServiceView(cluster="prod", service="web", desired_count=10, task_definition=TD.format(rev),
                       capacity_provider_strategy=strategy if strategy is not None else [])


def with_lkg(lkg: str | None = LKG) -> ServiceState:
    return ServiceState(rollout=RolloutState(lkg=lkg))


def decide(task, pol, state, view: ServiceView | None = None, td: dict[str, Any] | None = None,
           now: datetime = NOW, fetched: bool = True):
    """Decide as the shell does: fetch what is asked for; returns (decision, state, needs asked)."""
    facts, asked = Facts(), []
    for _ in range(3):
        out = decide_service_stop(task=task, cls=classify(task), policy=pol, state=state, facts=facts, now=now)
        if not isinstance(out, Need):
            return out[0], out[1], asked
        asked.append(out)
        if out == Need.SERVICE:
            facts = Facts(service=view, service_fetched=fetched, task_definition=facts.task_definition,
                          task_definition_fetched=facts.task_definition_fetched)
        else:
            facts = Facts(service=facts.service, service_fetched=facts.service_fetched, task_definition=td,
                          task_definition_fetched=True)
    raise AssertionError("kept asking")


# --------------------------------------------------------------------------- crash loop

def test_failures_below_the_threshold_are_counted_without_any_aws_call():
    pol, state = policy(), with_lkg()
    for n in range(2):
        decision, state, asked = decide(crash(n), pol, state)
        assert decision.outcome == "counted" and not decision.actions and asked == []
    assert len(state.healing.crash["web:7"].failures) == 2


def test_the_third_failure_rolls_back_to_lkg_and_marks_the_revision_bad():
    pol, state = policy(), with_lkg()
    for n in range(2):
        _, state, _ = decide(crash(n), pol, state)
    decision, state, asked = decide(crash(2), pol, state, view=service(7))
    assert asked == [Need.SERVICE]
    assert decision.outcome == "rollback"
    (action,) = decision.actions
    assert isinstance(action, RollBack) and action.to_task_definition == LKG
    assert state.rollout.is_bad(TD.format(7)) and state.healing.crash["web:7"].tripped_at == NOW


def test_later_failures_of_a_bad_revision_change_nothing_and_call_nothing():
    pol, state = policy(), with_lkg()
    for n in range(3):
        _, state, _ = decide(crash(n), pol, state, view=service(7))
    for n in range(3, 10):
        decision, state2, asked = decide(crash(n), pol, state, view=service(7))
        assert decision.outcome == "skipped:revision-bad" and not decision.actions and asked == []
        assert state2 == state


def test_a_task_counts_once_however_often_its_events_arrive():
    pol, state = policy(), with_lkg()
    for version in (7, 7, 8, 9):
        decision, state, _ = decide(crash(1, version=version), pol, state)
    assert decision.outcome == "skipped:not-counted"
    assert len(state.healing.crash["web:7"].failures) == 1


def test_failures_older_than_the_window_do_not_count():
    pol, state = policy(), with_lkg()
    for n in range(3):
        decision, state, asked = decide(crash(n, stopped=NOW - timedelta(seconds=601)), pol, state)
        assert decision.outcome == "skipped:not-counted" and asked == []
    assert state.healing.crash["web:7"].failures == []


def test_the_window_slides():
    pol, state = policy(), with_lkg()
    _, state, _ = decide(crash(0, stopped=NOW - timedelta(seconds=500)), pol, state)
    _, state, _ = decide(crash(1, stopped=NOW - timedelta(seconds=400)), pol, state)
    later = NOW + timedelta(seconds=150)  # the first failure is now 650 s old
    decision, state, asked = decide(crash(2, stopped=later), pol, state, now=later)
    assert decision.outcome == "counted" and asked == []


def test_failures_of_an_older_revision_never_roll_back_the_new_one():
    pol, state = policy(), with_lkg()
    for n in range(2):
        _, state, _ = decide(crash(n, rev=5), pol, state)
    decision, state, asked = decide(crash(2, rev=5), pol, state, view=service(7))
    assert asked == [Need.SERVICE] and decision.outcome == "skipped:not-current-revision" and not decision.actions
    assert state.healing.crash["web:5"].failures == []  # emptied: the next trip needs `failures` new failures
    assert not state.rollout.is_bad(TD.format(5))


def test_windows_are_per_revision():
    pol, state = policy(), with_lkg()
    _, state, _ = decide(crash(0, rev=7), pol, state)
    _, state, _ = decide(crash(1, rev=8), pol, state)
    decision, state, asked = decide(crash(2, rev=7), pol, state)
    assert decision.outcome == "counted" and asked == []


def test_notify_action_announces_once_per_window():
    pol = policy(crashLoop={"failures": 2, "windowSeconds": 300, "action": "notify"})
    state = with_lkg()
    _, state, _ = decide(crash(0), pol, state)
    decision, state, _ = decide(crash(1), pol, state, view=service(7))
    assert decision.outcome == "crash-loop:notify" and isinstance(decision.actions[0], Notify)
    assert not state.rollout.is_bad(TD.format(7))  # notify only announces
    decision, state, asked = decide(crash(2), pol, state, view=service(7))
    assert decision.outcome == "counted" and asked == [] and not decision.actions
    later = NOW + timedelta(seconds=301)
    _, state, _ = decide(crash(3, stopped=later), pol, state, now=later)
    decision, state, _ = decide(crash(4, stopped=later), pol, state, view=service(7), now=later)
    assert decision.outcome == "crash-loop:notify"


def test_without_lkg_only_a_notification():
    pol, state = policy(), with_lkg(None)
    for n in range(2):
        _, state, _ = decide(crash(n), pol, state)
    decision, state, _ = decide(crash(2), pol, state, view=service(7))
    assert decision.outcome == "skipped:no-lkg"
    assert [a.kind for a in decision.actions] == ["notify"]


def test_service_gone_is_recorded_not_guessed():
    pol, state = policy(crashLoop={"failures": 1, "windowSeconds": 600}), with_lkg()
    decision, _, asked = decide(crash(0), pol, state, view=None)
    assert asked == [Need.SERVICE] and decision.outcome == "skipped:service-missing" and not decision.actions


@pytest.mark.parametrize("name", ["healer-health-check-elb.json", "healer-health-check-container.json",
                                  "healer-resource-init.json", "healer-cannot-start.json",
                                  "healer-start-failure-other.json", "healer-oom.json"])
def test_every_failure_kind_counts_toward_the_crash_loop(name):
    pol, state = policy(crashLoop={"failures": 1, "windowSeconds": 600}), with_lkg()
    decision, _, _ = decide(crash(0, name=name), pol, state, view=service(7))
    assert decision.outcome == "rollback"


@pytest.mark.parametrize("name", ["healer-normal-scale-in.json", "healer-normal-user-stop.json",
                                  "healer-normal-sigterm-143.json", "healer-unknown-stop-code.json",
                                  "healer-infrastructure.json", "healer-no-containers.json",
                                  "healer-long-reason.json"])
def test_normal_and_unknown_stops_never_count(name):
    pol, state = policy(crashLoop={"failures": 1, "windowSeconds": 600}), with_lkg()
    decision, new, asked = decide(crash(0, name=name), pol, state, view=service(7))
    assert decision.outcome.startswith("ignored:") and not decision.actions and asked == [] and new == state


@settings(max_examples=150, deadline=None)
@given(order=st.permutations(list(range(12))), dups=st.lists(st.integers(0, 11), max_size=12),
       failures=st.integers(1, 5))
def test_a_storm_in_any_order_rolls_back_exactly_once(order, dups, failures):
    pol, state = policy(crashLoop={"failures": failures, "windowSeconds": 600}), with_lkg()
    rollbacks = 0
    for n in list(order) + dups:
        decision, state, _ = decide(crash(n, stopped=NOW - timedelta(seconds=n)), pol, state, view=service(7))
        rollbacks += sum(isinstance(a, RollBack) for a in decision.actions)
        assert not any(isinstance(a, SetDesiredCount) for a in decision.actions)
    assert rollbacks == 1


# --------------------------------------------------------------------------- image pull

def image_pull_policy(enabled: bool = True) -> ServicePolicy:
    return policy(crashLoop={"failures": 3, "windowSeconds": 600}, rollout={"rollbackOnImagePullFailure": enabled})


def test_an_image_pull_failure_of_a_new_revision_rolls_back_at_once():
    decision, state, asked = decide(crash(0, name="healer-image-pull.json"), image_pull_policy(), with_lkg(),
                                    view=service(7))
    assert asked == [Need.SERVICE] and decision.outcome == "rollback"
    assert state.rollout.is_bad(TD.format(7))


def test_an_image_pull_failure_of_lkg_only_counts():
    decision, _, asked = decide(crash(0, name="healer-image-pull.json", rev=6), image_pull_policy(), with_lkg(),
                                view=service(6))
    assert decision.outcome == "counted" and asked == []


@pytest.mark.parametrize("pol", [image_pull_policy(False), policy()])
def test_image_pull_rollback_off_or_not_configured_only_counts(pol):
    decision, _, asked = decide(crash(0, name="healer-image-pull.json"), pol, with_lkg(), view=service(7))
    assert decision.outcome == "counted" and asked == []


def test_an_image_pull_failure_of_an_old_revision_does_not_roll_back():
    decision, state, _ = decide(crash(0, name="healer-image-pull.json", rev=5), image_pull_policy(), with_lkg(),
                                view=service(7))
    assert not decision.actions and not state.rollout.is_bad(TD.format(5))
    assert "now runs web:7" in decision.reason and decision.outcome == "counted"  # still counts for its own window


# --------------------------------------------------------------------------- OOM right-sizing

def fargate_td(cpu: str = "256", memory: str = "1024", web: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"taskDefinitionArn": TD.format(7), "family": "web", "revision": 7, "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": cpu, "memory": memory,
            "containerDefinitions": [{"name": "web", "image": "nginx", **(web if web is not None else {"memory": 512})},
                                     {"name": "aws-otel-collector", "image": "otel", "memoryReservation": 128}]}


def oom(n: int = 0, rev: int = 7):
    return crash(n, rev=rev, name="healer-oom.json")


def test_oom_grows_the_container_and_the_task_to_a_valid_fargate_size():
    decision, state, asked = decide(oom(), policy(oom={"growPercent": 25, "maxMemoryMiB": 8192}), with_lkg(),
                                    view=service(7), td=fargate_td())
    assert asked == [Need.SERVICE, Need.TASK_DEFINITION]
    (action,) = decision.actions
    assert isinstance(action, DeriveRevision)
    assert action.container_memory == {"web": 640}  # 512 + 25 %
    assert (action.task_memory, action.task_cpu) == (2048, None)  # 1280 -> next size 256 CPU allows: 2048
    assert action.derivation_id == derivation_id("oom", TD.format(7))
    assert state.healing.oom["web:7"].outcome == "derived"


def test_oom_raises_cpu_where_fargate_requires_it():
    td = fargate_td(cpu="256", memory="2048", web={"memory": 1900})
    decision, _, _ = decide(oom(), policy(oom={"growPercent": 25, "maxMemoryMiB": 8192}), with_lkg(),
                            view=service(7), td=td)
    (action,) = decision.actions
    assert (action.task_memory, action.task_cpu) == (3072, 512)  # 2560 does not fit 256 CPU
    assert action.container_memory == {"web": 2375}


def test_oom_grows_hard_and_soft_limits():
    td = fargate_td(memory="2048", web={"memory": 1024, "memoryReservation": 512})
    decision, _, _ = decide(oom(), policy(oom={"growPercent": 50, "maxMemoryMiB": 8192}), with_lkg(),
                            view=service(7), td=td)
    (action,) = decision.actions
    assert action.container_memory == {"web": 1536} and action.container_memory_reservation == {"web": 768}
    assert action.task_memory == 3072 and action.task_cpu == 512


def test_ec2_keeps_its_cpu_and_may_have_no_task_memory():
    td = {"family": "web", "requiresCompatibilities": ["EC2"], "cpu": "0",
          "containerDefinitions": [{"name": "web", "memory": 512, "memoryReservation": 256}]}
    task = parse_task_event(variant(sample("healer-crash.json"), **{
        "detail.containers.0.reason": "OutOfMemoryError: Container killed due to memory usage",
        "detail.containers.0.exitCode": 137}))
    decision, _, _ = decide(task, policy(oom={"growPercent": 25, "maxMemoryMiB": 4096}), with_lkg(), view=service(7),
                            td=td)
    (action,) = decision.actions
    assert action.container_memory == {"web": 640} and action.container_memory_reservation == {"web": 320}
    assert action.task_memory is None and action.task_cpu is None


def test_ec2_task_memory_grows_without_fargate_rounding():
    td = {"family": "web", "requiresCompatibilities": ["EC2"], "cpu": "512", "memory": "1000",
          "containerDefinitions": [{"name": "web", "memory": 900}]}
    task = parse_task_event(variant(sample("healer-crash.json"), **{
        "detail.containers.0.reason": "OutOfMemoryError: Container killed due to memory usage"}))
    decision, _, _ = decide(task, policy(oom={"growPercent": 10, "maxMemoryMiB": 4096}), with_lkg(), view=service(7),
                            td=td)
    (action,) = decision.actions
    assert (action.task_memory, action.task_cpu, action.container_memory) == (1100, None, {"web": 990})


def test_growth_is_capped_at_max_memory():
    td = fargate_td(cpu="1024", memory="6144", web={"memory": 6000})
    decision, _, _ = decide(oom(), policy(oom={"growPercent": 50, "maxMemoryMiB": 8192}), with_lkg(),
                            view=service(7), td=td)
    (action,) = decision.actions
    assert action.task_memory == 8192 and action.task_cpu is None
    assert action.container_memory == {"web": 8064}  # what fits beside the 128 MiB sidecar reservation


def test_at_the_cap_notify_once_and_do_not_loop():
    pol = policy(oom={"growPercent": 25, "maxMemoryMiB": 2048})
    td = fargate_td(cpu="256", memory="2048", web={"memory": 2048})
    decision, state, _ = decide(oom(0), pol, with_lkg(), view=service(7), td=td)
    assert decision.outcome == "oom:at-cap" and [a.kind for a in decision.actions] == ["notify"]
    decision, _, asked = decide(oom(1), pol, state, view=service(7), td=td)
    assert not decision.actions and asked == []


def test_a_cap_between_sizes_stops_at_the_last_size_under_it():
    # 7000 MiB is no Fargate size: with 6144 MiB now, the next size (7168) is above the cap. The container
    # already fills the task beside the 128 MiB sidecar: nothing can grow, at the cap.
    full = fargate_td(cpu="1024", memory="6144", web={"memory": 6016})
    decision, record = decide_oom(task=oom(), cls=classify(oom()), oom=Oom(growPercent=25, maxMemoryMiB=7000),
                                  task_definition=full, cluster="prod", service="web", now=NOW)
    assert record.outcome == "at-cap" and decision.actions[0].kind == "notify"
    # A container with room in the task still grows inside it (the task size stays).
    roomy = fargate_td(cpu="1024", memory="6144", web={"memory": 512})
    decision, record = decide_oom(task=oom(), cls=classify(oom()), oom=Oom(growPercent=25, maxMemoryMiB=7000),
                                  task_definition=roomy, cluster="prod", service="web", now=NOW)
    (action,) = decision.actions
    assert record.outcome == "derived" and action.container_memory == {"web": 640} and action.task_memory is None


def test_one_bump_per_revision_however_many_tasks_oom():
    pol, state = policy(oom={"growPercent": 25, "maxMemoryMiB": 8192}), with_lkg()
    derived = 0
    for n in range(10):
        decision, state, asked = decide(oom(n), pol, state, view=service(7), td=fargate_td())
        derived += sum(isinstance(a, DeriveRevision) for a in decision.actions)
        if n:
            assert asked == []
    assert derived == 1


def test_no_right_sizing_of_an_old_revision():
    decision, state, asked = decide(oom(rev=5), policy(oom={"growPercent": 25, "maxMemoryMiB": 8192}), with_lkg(),
                                    view=service(7), td=fargate_td())
    assert asked == [Need.SERVICE] and decision.outcome == "skipped:not-current-revision" and not decision.actions
    assert "web:5" not in state.healing.oom


def test_oom_right_sizing_suppresses_the_crash_loop_trip_of_the_same_event():
    pol = policy(oom={"growPercent": 25, "maxMemoryMiB": 8192}, crashLoop={"failures": 1, "windowSeconds": 600})
    decision, state, _ = decide(oom(), pol, with_lkg(), view=service(7), td=fargate_td())
    assert [a.kind for a in decision.actions] == ["derive-revision"]
    assert not state.rollout.is_bad(TD.format(7))


def test_oom_at_cap_falls_through_to_the_crash_loop():
    pol = policy(oom={"growPercent": 25, "maxMemoryMiB": 2048}, crashLoop={"failures": 1, "windowSeconds": 600})
    td = fargate_td(cpu="256", memory="2048", web={"memory": 2048})
    decision, _, _ = decide(oom(), pol, with_lkg(), view=service(7), td=td)
    assert sorted(a.kind for a in decision.actions) == ["notify", "rollback"]
    assert decision.outcome == "rollback"


def test_grow_and_derivation_id():
    assert grow(512, 25) == 640 and grow(1, 1) == 2 and grow(100, 1) == 101
    assert derivation_id("oom", TD.format(7)) == derivation_id("oom", "web:7") != derivation_id("oom", TD.format(8))


# --------------------------------------------------------------------------- Spot fallback

SPOT = {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800, "onDemandProvider": "FARGATE"}


def spot(n: int, at: datetime = NOW):
    return crash(n, name="healer-spot-interruption.json", stopped=at)


def test_spot_interruptions_fall_back_to_on_demand_keeping_base():
    pol, state = policy(spotFallback=SPOT), ServiceState()
    decision, state, asked = decide(spot(0), pol, state, view=service(strategy=FARGATE))
    assert decision.outcome == "counted" and asked == []
    decision, state, asked = decide(spot(1), pol, state, view=service(strategy=FARGATE))
    assert asked == [Need.SERVICE] and decision.outcome == "spot-fallback"
    (action,) = decision.actions
    assert isinstance(action, SetCapacityStrategy)
    assert action.strategy == [{"capacityProvider": "FARGATE", "weight": 1, "base": 2}]
    assert action.previous == FARGATE
    hold = state.healing.spot.hold
    assert hold is not None and hold.saved_strategy == FARGATE and hold.until == NOW + timedelta(seconds=1800)


def test_spot_during_a_hold_changes_nothing():
    pol, state = policy(spotFallback=SPOT), ServiceState()
    for n in range(2):
        _, state, _ = decide(spot(n), pol, state, view=service(strategy=FARGATE))
    decision, state2, asked = decide(spot(2), pol, state, view=service(strategy=FARGATE))
    assert decision.outcome == "skipped:spot-hold" and asked == [] and state2 == state


def test_spot_placement_failures_count_and_other_placement_failures_do_not():
    pol, state = policy(spotFallback=SPOT), ServiceState()
    spot_failure = parse_healer_event(sample("healer-placement-failure-spot.json"))
    cpu_failure = parse_healer_event(sample("healer-placement-failure-ec2-cpu.json"))
    out = decide_service_action(action=cpu_failure, policy=pol, state=state, facts=Facts(), now=NOW)
    assert not isinstance(out, Need) and out[0].outcome == "ignored:not-spot"
    out = decide_service_action(action=spot_failure, policy=pol, state=state, facts=Facts(), now=NOW)
    assert not isinstance(out, Need) and out[0].outcome == "counted"
    state = out[1]
    out = decide_service_action(action=spot_failure, policy=pol, state=state, facts=Facts(), now=NOW)
    assert not isinstance(out, Need) and out[0].outcome == "skipped:not-counted"  # same event again
    second = parse_healer_event(variant(sample("healer-placement-failure-spot.json"), id="another"))
    assert decide_service_action(action=second, policy=pol, state=state, facts=Facts(), now=NOW) == Need.SERVICE


def test_spot_without_a_strategy_or_already_on_demand_does_nothing():
    pol = policy(spotFallback={**SPOT, "interruptions": 1})
    decision, _, _ = decide(spot(0), pol, ServiceState(), view=service(strategy=[]))
    assert decision.outcome == "skipped:no-capacity-strategy" and not decision.actions
    decision, _, _ = decide(spot(0), pol, ServiceState(), view=service(strategy=[{"capacityProvider": "FARGATE",
                                                                                  "weight": 1, "base": 0}]))
    assert decision.outcome == "skipped:already-on-demand" and not decision.actions


def test_spot_without_spot_fallback_policy_is_ignored():
    decision, _, asked = decide(spot(0), policy(), ServiceState())
    assert decision.outcome == "ignored:spot" and asked == []


def held_state() -> ServiceState:
    pol, state = policy(spotFallback=SPOT), ServiceState()
    for n in range(2):
        _, state, _ = decide(spot(n), pol, state, view=service(strategy=FARGATE))
    return state


def restore(state: ServiceState, now: datetime, view: ServiceView | None):
    out = decide_spot_restore(cluster="prod", service="web", state=state, facts=Facts(), now=now)
    if isinstance(out, Need):
        out = decide_spot_restore(cluster="prod", service="web", state=state,
                                  facts=Facts(service=view, service_fetched=True), now=now)
        assert not isinstance(out, Need)
    return out


def test_the_hold_is_restored_after_hold_seconds():
    state = held_state()
    on_demand = [{"capacityProvider": "FARGATE", "weight": 1, "base": 2}]
    decision, same = restore(state, NOW + timedelta(seconds=1799), service(strategy=on_demand))
    assert decision.outcome == "skipped:no-hold" and same == state
    decision, state = restore(state, NOW + timedelta(seconds=1800), service(strategy=on_demand))
    assert decision.outcome == "spot-restore"
    (action,) = decision.actions
    assert isinstance(action, SetCapacityStrategy) and action.strategy == FARGATE
    assert state.healing.spot.hold is None


def test_a_strategy_changed_during_the_hold_is_left_alone():
    state = held_state()
    decision, state = restore(state, NOW + timedelta(seconds=1800),
                              service(strategy=[{"capacityProvider": "FARGATE", "weight": 5, "base": 0}]))
    assert decision.outcome == "spot-restore:skipped-changed" and [a.kind for a in decision.actions] == ["notify"]
    assert state.healing.spot.hold is None


def test_windows_of_revisions_quiet_for_a_whole_window_are_dropped():
    pol, state = policy(), with_lkg()
    _, state, _ = decide(crash(0, rev=5), pol, state)
    later = NOW + timedelta(seconds=601)
    _, state, _ = decide(crash(1, rev=7, stopped=later), pol, state, now=later)
    assert set(state.healing.crash) == {"web:7"}


def test_state_stays_far_below_the_dynamodb_item_limit_at_the_policy_maximum():
    pol = policy(crashLoop={"failures": 1000, "windowSeconds": 86400})
    state = with_lkg()
    for n in range(1000):
        _, state, _ = decide(crash(n, rev=7 + n % 3, stopped=NOW - timedelta(seconds=n)), pol, state)
    assert len(state.model_dump_json()) < 200_000
