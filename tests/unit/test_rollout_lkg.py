"""LKG bookkeeping (decide.rollout), pure: ordering by the deployment's own data, duplicates, bad marks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.rollout import (
    ObservedDeployment,
    mark_bad,
    merge_observed,
    needs_describe,
    on_completed,
    on_in_progress,
    recompute_lkg,
)
from autopilot.models.rollout_state import MAX_DEPLOYMENTS, RolloutState, revision_id, same_revision
from autopilot.models.state import ServiceState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"


def td(n: int) -> str:
    return ARN.format(n)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def observed(dep: str, rev: int, start: float, state: str = "IN_PROGRESS",
             status: str = "PRIMARY") -> ObservedDeployment:
    return ObservedDeployment(id=dep, task_definition=td(rev), status=status, rollout_state=state,
                              created_at=at(start), updated_at=at(start))


@dataclass(frozen=True)
class Ev:
    """A deployment event and what DescribeServices would list at that moment."""

    kind: str  # "in-progress" | "completed"
    dep: str
    at: float  # minutes (the event's updatedAt)
    seen: tuple[ObservedDeployment, ...] = ()


def apply(state: RolloutState, ev: Ev) -> RolloutState:
    if ev.kind == "in-progress":
        return on_in_progress(rollout=state, deployment_id=ev.dep, updated_at=at(ev.at), reason=None,
                              ecs_rollback=False, observed=ev.seen, trigger="t")[1]
    seen = ev.seen if needs_describe(state, ev.dep) else None
    return on_completed(rollout=state, deployment_id=ev.dep, updated_at=at(ev.at), reason=None, observed=seen,
                        trigger="t")[1]


def run(events: list[Ev], state: RolloutState | None = None) -> RolloutState:
    state = state or RolloutState()
    for ev in events:
        state = apply(state, ev)
    return state


# Deployment A (web:1) starts at 0 and completes at 5; B (web:2) starts at 10 and completes at 15.
A_IN = Ev("in-progress", "ecs-svc/A", 0, (observed("ecs-svc/A", 1, 0),))
A_DONE = Ev("completed", "ecs-svc/A", 5, (observed("ecs-svc/A", 1, 0, "COMPLETED"),))
B_IN = Ev("in-progress", "ecs-svc/B", 10,
          (observed("ecs-svc/B", 2, 10), observed("ecs-svc/A", 1, 0, "COMPLETED", "ACTIVE")))
B_DONE = Ev("completed", "ecs-svc/B", 15, (observed("ecs-svc/B", 2, 10, "COMPLETED"),))
# A COMPLETED delivered late, when DescribeServices no longer lists A (drained).
A_DONE_LATE = Ev("completed", "ecs-svc/A", 5, (observed("ecs-svc/B", 2, 10, "COMPLETED"),))


@pytest.mark.parametrize(("events", "lkg", "why"), [
    ([], None, "nothing seen"),
    ([A_IN], None, "in progress is not good yet"),
    ([A_IN, A_DONE], td(1), "completed becomes LKG"),
    ([A_IN, A_DONE, B_IN], td(1), "a newer deployment in progress does not change LKG"),
    ([A_IN, A_DONE, B_IN, B_DONE], td(2), "the newer completed deployment becomes LKG"),
    ([A_IN, A_DONE, B_IN, B_DONE, A_DONE], td(2), "a late COMPLETED of the older one never moves LKG backwards"),
    ([A_IN, B_IN, B_DONE, A_DONE_LATE], td(2), "A completes after B (by arrival), B started later"),
    ([B_IN, B_DONE, A_IN, A_DONE], td(2), "A's events all arrive after B's"),
    ([B_DONE, B_IN], td(2), "COMPLETED before IN_PROGRESS: found by DescribeServices"),
    ([B_IN], td(1), "bootstrap: DescribeServices lists the previous deployment as COMPLETED"),
    ([A_DONE_LATE], td(2), "A no longer listed (recorded, not guessed); B listed as COMPLETED is real data"),
])
def test_lkg_bookkeeping(events, lkg, why):
    assert run(events).lkg == lkg, why


def test_no_matching_deployment_is_recorded_without_a_task_definition():
    decision, state = on_in_progress(rollout=RolloutState(), deployment_id="ecs-svc/X", updated_at=at(0), reason=None,
                                     ecs_rollback=False, observed=(observed("ecs-svc/other", 1, 0),), trigger="t")
    assert decision.outcome == "recorded:no-matching-deployment"
    record = state.deployment("ecs-svc/X")
    assert record is not None and record.task_definition is None and record.started_at == at(0)
    assert not decision.actions


def test_late_completed_of_a_drained_deployment_gets_no_guessed_task_definition():
    state = run([A_DONE_LATE])
    assert state.deployment("ecs-svc/A").task_definition is None


def test_completed_of_an_unknown_deployment_reports_no_match():
    decision, state = on_completed(rollout=RolloutState(), deployment_id="ecs-svc/X", updated_at=at(5), reason=None,
                                   observed=(), trigger="t")
    assert decision.outcome == "recorded:no-matching-deployment"
    assert state.lkg is None and state.deployment("ecs-svc/X").status == "COMPLETED"


def test_ecs_rollback_in_progress_is_recorded_and_flagged():
    seen = (observed("ecs-svc/R", 1, 20), observed("ecs-svc/B", 2, 10, "FAILED", "ACTIVE"))
    decision, state = on_in_progress(rollout=run([A_IN, A_DONE]), deployment_id="ecs-svc/R", updated_at=at(20),
                                     reason="ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/A.",
                                     ecs_rollback=True, observed=seen, trigger="t")
    assert decision.outcome == "recorded:ecs-rollback" and not decision.actions
    assert state.deployment("ecs-svc/R").ecs_rollback
    assert state.current_deployment.id == "ecs-svc/R"
    assert state.lkg == td(1)


def test_start_time_comes_from_describe_services_not_the_event():
    # The event arrived (updatedAt) a minute after the deployment was created.
    state = run([Ev("in-progress", "ecs-svc/A", 1, (observed("ecs-svc/A", 1, 0),))])
    assert state.deployment("ecs-svc/A").started_at == at(0)


@pytest.mark.parametrize("events", [
    [A_IN, A_DONE, B_IN, B_DONE],
    [B_IN, B_DONE, A_IN, A_DONE_LATE],
    [A_IN, A_IN, A_DONE, A_DONE, B_IN, B_DONE, B_DONE],
])
def test_duplicates_change_nothing(events):
    once = run(events)
    twice = run(events + events)
    assert twice == once


def test_completed_bad_revision_is_not_lkg():
    state = mark_bad(run([A_IN, A_DONE, B_IN]), td(2), "crash loop", at(11))
    decision, state = on_completed(rollout=state, deployment_id="ecs-svc/B", updated_at=at(15), reason=None,
                                   observed=None, trigger="t")
    assert decision.outcome == "recorded:completed-bad"
    assert state.lkg == td(1)


def test_marking_lkg_bad_moves_lkg_to_the_previous_good_revision():
    state = mark_bad(run([A_IN, A_DONE, B_IN, B_DONE]), td(2), "5xx alarm in bake window", at(16))
    assert state.lkg == td(1) and state.lkg_deployment == "ecs-svc/A"
    assert state.is_bad(td(2)) and not state.is_bad(td(1))


def test_marking_the_only_good_revision_bad_leaves_no_lkg():
    state = mark_bad(run([A_IN, A_DONE]), td(1), "bad", at(6))
    assert state.lkg is None


def test_a_redeploy_started_after_the_mark_rehabilitates_the_revision():
    state = mark_bad(run([A_IN, A_DONE, B_IN]), td(2), "failed", at(12))
    redeploy_in = Ev("in-progress", "ecs-svc/C", 30, (observed("ecs-svc/C", 2, 30),))
    redeploy_done = Ev("completed", "ecs-svc/C", 35, (observed("ecs-svc/C", 2, 30, "COMPLETED"),))
    state = run([redeploy_in, redeploy_done], state)
    assert not state.is_bad(td(2))
    assert state.lkg == td(2)


def test_a_deployment_that_started_before_the_mark_does_not_rehabilitate():
    state = mark_bad(run([A_IN, A_DONE, B_IN]), td(2), "crash loop", at(12))
    state = run([B_DONE], state)  # B started at 10, before the mark at 12
    assert state.is_bad(td(2)) and state.lkg == td(1)


def test_revision_ids_compare_arns_and_short_forms():
    assert revision_id(td(3)) == "web:3"
    assert same_revision(td(3), "web:3")
    assert not same_revision(td(3), td(4))
    assert not same_revision(None, None)


def test_deployments_are_bounded_and_lkg_survives_pruning():
    state = run([A_IN, A_DONE])
    for i in range(MAX_DEPLOYMENTS + 5):
        state = run([Ev("in-progress", f"ecs-svc/N{i}", 100 + i, (observed(f"ecs-svc/N{i}", 10 + i, 100 + i),))], state)
    assert len(state.deployments) == MAX_DEPLOYMENTS
    assert state.deployment("ecs-svc/A") is None
    assert state.lkg == td(1)  # carried over: no newer deployment completed


def test_state_round_trips_through_json_with_current_deployment_shown():
    state = run([A_IN, A_DONE, B_IN])
    dumped = ServiceState(rollout=state).model_dump(mode="json")
    assert dumped["rollout"]["current_deployment"]["id"] == "ecs-svc/B"
    assert dumped["rollout"]["lkg"] == td(1)
    assert ServiceState.model_validate(dumped).rollout == state


def test_merge_never_moves_a_terminal_status_back():
    state = run([A_IN, A_DONE])
    state = merge_observed(state, [observed("ecs-svc/A", 1, 0, "IN_PROGRESS")])
    assert state.deployment("ecs-svc/A").status == "COMPLETED"


def test_recompute_is_idempotent():
    state = run([A_IN, A_DONE, B_IN, B_DONE])
    assert recompute_lkg(recompute_lkg(state)) == recompute_lkg(state)


# ---------------------------------------------------------------------------- properties


def _deployment_events(n: int) -> list[Ev]:
    """n deployments, each started 10 minutes after the previous one and completed 5 minutes later."""
    events = []
    for i in range(n):
        dep = f"ecs-svc/{i}"
        events.append(Ev("in-progress", dep, 10 * i, (observed(dep, i + 1, 10 * i),)))
        events.append(Ev("completed", dep, 10 * i + 5, (observed(dep, i + 1, 10 * i, "COMPLETED"),)))
    return events


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda n: st.tuples(st.just(n), st.permutations(_deployment_events(n)),
                        st.lists(st.integers(min_value=0, max_value=2 * n - 1), max_size=4))))
def test_any_arrival_order_with_duplicates_ends_on_the_newest_completed(case):
    n, order, duplicates = case
    events = list(order) + [order[i] for i in duplicates]
    state = run(events)
    assert state.lkg == td(n)  # the deployment that started last


@settings(max_examples=100, deadline=None)
@given(st.permutations(_deployment_events(3)), st.sampled_from([1, 2, 3]))
def test_lkg_is_never_a_bad_revision(order, bad):
    state = mark_bad(RolloutState(), td(bad), "bad", at(-1))  # marked before any deployment started...
    state = run(list(order), state)
    # ...so a later deployment of it that completes rehabilitates it: only revisions completed after the
    # mark count, and LKG is the newest of them.
    assert state.lkg == td(3)
    state = mark_bad(state, td(3), "bad again", at(1000))
    assert state.lkg == td(2) and not state.is_bad(state.lkg)


def test_all_orders_of_two_deployments_agree():
    finals = {run(list(p)).lkg for p in itertools.permutations([A_IN, A_DONE, B_IN, B_DONE])}
    assert finals == {td(2)}
