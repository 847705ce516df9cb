"""The shared rollback decision, failed deployments, alarm rules, recycles and rollback retries (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.rollout import (
    ROLLBACK_MAX_RETRIES,
    ROLLBACK_RETRY_AFTER,
    ROLLBACK_STALE_AFTER,
    ObservedDeployment,
    ServiceFacts,
    decide_recycle,
    decide_rollback,
    decide_rollback_alarm,
    decide_rollback_retry,
    mark_bad,
    on_completed,
    on_failed,
    on_in_progress,
    rollback_due,
)
from autopilot.models.actions import Notify, Recycle, RollBack
from autopilot.models.rollout_state import RolloutState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"


def td(n: int) -> str:
    return ARN.format(n)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def obs(dep: str, rev: int, start: float, state: str = "IN_PROGRESS", status: str = "PRIMARY") -> ObservedDeployment:
    return ObservedDeployment(id=dep, task_definition=td(rev), status=status, rollout_state=state,
                              created_at=at(start), updated_at=at(start))


def history(*revs_completed: int) -> RolloutState:
    """Deployments of the given revisions, started 10 minutes apart, each completed."""
    state = RolloutState()
    for i, rev in enumerate(revs_completed):
        dep = f"ecs-svc/{i}"
        state = on_in_progress(rollout=state, deployment_id=dep, updated_at=at(10 * i), reason=None,
                               ecs_rollback=False, observed=(obs(dep, rev, 10 * i),), trigger="t")[1]
        state = on_completed(rollout=state, deployment_id=dep, updated_at=at(10 * i + 5), reason=None,
                             observed=None, trigger="t")[1]
    return state


def deploy(state: RolloutState, dep: str, rev: int, start: float) -> RolloutState:
    return on_in_progress(rollout=state, deployment_id=dep, updated_at=at(start), reason=None, ecs_rollback=False,
                          observed=(obs(dep, rev, start),), trigger="t")[1]


def rollback(state: RolloutState, running: int, failing: int, now: float = 30):
    return decide_rollback(cluster="prod", service="web", running_task_definition=td(running),
                           failing_revision=td(failing), rollout=state, reason="crash loop", now=at(now))


# ---------------------------------------------------------------------------- decide_rollback


@pytest.mark.parametrize(("state", "running", "failing", "outcome", "to"), [
    (history(1), 2, 2, "rollback", 1),
    (history(1, 2), 3, 3, "rollback", 2),
    (history(1, 2), 2, 2, "rollback", 1),  # LKG itself fails (e.g. an alarm in its bake window): the previous one
    (history(1), 1, 2, "skipped:already-on-lkg", None),
    (history(1), 3, 2, "skipped:service-moved-on", None),  # a late signal must not undo a newer deployment
    (RolloutState(), 2, 2, "skipped:no-lkg", None),
    (history(2), 2, 2, "skipped:no-lkg", None),  # the only known good revision is the failing one
])
def test_decide_rollback_table(state, running, failing, outcome, to):
    decision, new = rollback(state, running, failing)
    assert decision.outcome == outcome
    assert new.is_bad(td(failing))
    rollbacks = [a for a in decision.actions if isinstance(a, RollBack)]
    if to is None:
        assert not rollbacks and not new.rollbacks
    else:
        (action,) = rollbacks
        assert action.to_task_definition == td(to) and action.from_task_definition == td(running)
        assert f"web:{failing}" in action.reason and f"web:{to}" in action.reason  # names both revisions
        assert new.rollbacks[0].failing_revision == td(failing) and new.rollbacks[0].status == "pending"


def test_no_lkg_notifies_no_known_good_revision():
    decision, _ = rollback(RolloutState(), 2, 2)
    (notify,) = decision.actions
    assert isinstance(notify, Notify) and "no known good revision" in notify.subject


def test_second_rollback_for_the_same_failing_revision_is_skipped():
    decision, state = rollback(history(1), 2, 2)
    assert decision.outcome == "rollback"
    again, state2 = rollback(state, 2, 2, now=31)  # e.g. the healer noticed the same revision after the FAILED event
    assert again.outcome == "skipped:already-rolled-back" and not again.actions
    assert len(state2.rollbacks) == 1


def test_a_new_rollback_supersedes_a_pending_one():
    _, state = rollback(history(1), 2, 2)
    state = deploy(state, "ecs-svc/new", 3, 40)
    decision, state = rollback(state, 3, 3, now=45)
    assert decision.outcome == "rollback"
    assert [r.status for r in state.rollbacks] == ["pending", "superseded"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=12))
def test_never_rolls_to_a_bad_revision_and_at_most_once_per_failing_revision(calls):
    state = history(1, 2)
    rolled_from: list[str] = []
    for i, (running, failing) in enumerate(calls):
        decision, state = rollback(state, running, failing, now=30 + i)
        for action in decision.actions:
            if isinstance(action, RollBack):
                assert not state.is_bad(action.to_task_definition)
                rolled_from.append(td(failing))
    assert len(rolled_from) == len(set(rolled_from))


# ---------------------------------------------------------------------------- failed deployments


def failed(state: RolloutState, facts: ServiceFacts | None, rollback_on_failure: bool = True):
    return on_failed(cluster="prod", service="web", rollout=state, deployment_id="ecs-svc/new", updated_at=at(25),
                     reason="ECS deployment circuit breaker: task failed to start.", facts=facts,
                     rollback_on_failure=rollback_on_failure, now=at(26), trigger="SERVICE_DEPLOYMENT_FAILED")


def facts(running: int, breaker: bool = False, *deployments: ObservedDeployment) -> ServiceFacts:
    return ServiceFacts(running_task_definition=td(running), circuit_breaker_rollback=breaker,
                        deployments=deployments)


def test_failed_rolls_back_to_lkg():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = failed(state, facts(2, False, obs("ecs-svc/new", 2, 20, "FAILED")))
    assert decision.outcome == "rollback"
    (action,) = decision.actions
    assert isinstance(action, RollBack) and action.to_task_definition == td(1)
    assert new.is_bad(td(2)) and new.deployment("ecs-svc/new").status == "FAILED"


def test_failed_with_circuit_breaker_rollback_only_records_and_notifies():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = failed(state, facts(2, True, obs("ecs-svc/new", 2, 20, "FAILED")))
    assert decision.outcome == "recorded:ecs-rolls-back"
    assert [type(a) for a in decision.actions] == [Notify]
    assert new.is_bad(td(2)) and not new.rollbacks


def test_failed_with_rollback_disabled_only_notifies():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = failed(state, facts(2), rollback_on_failure=False)
    assert decision.outcome == "recorded:rollback-disabled" and [type(a) for a in decision.actions] == [Notify]
    assert new.is_bad(td(2))


def test_failed_deployment_nobody_can_name_is_recorded_not_guessed():
    decision, new = failed(history(1), facts(2))  # never seen, and DescribeServices does not list it
    assert decision.outcome == "recorded:no-matching-deployment"
    assert [type(a) for a in decision.actions] == [Notify]
    assert new.bad_revisions == [] and new.lkg == td(1)


def test_failed_task_definition_found_by_describe_services_when_in_progress_was_missed():
    decision, new = failed(history(1), facts(2, False, obs("ecs-svc/new", 2, 20, "FAILED"),
                                             obs("ecs-svc/0", 1, 0, "COMPLETED", "ACTIVE")))
    assert decision.outcome == "rollback" and new.is_bad(td(2))


def test_failed_redeploy_of_the_lkg_revision_is_not_the_revision_s_fault():
    state = deploy(history(1, 2), "ecs-svc/new", 2, 30)  # forceNewDeployment of LKG web:2, e.g. capacity ran out
    decision, new = failed(state, facts(2, False, obs("ecs-svc/new", 2, 30, "FAILED")))
    assert decision.outcome == "recorded:failed-same-revision"
    assert [type(a) for a in decision.actions] == [Notify]
    assert not new.is_bad(td(2)) and new.lkg == td(2)


def test_failed_for_a_missing_service_marks_bad_without_action():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = failed(state, None)
    assert decision.outcome == "skipped:service-missing" and not decision.actions and new.is_bad(td(2))


# ---------------------------------------------------------------------------- alarm rules


def alarm(state: RolloutState, alarm_minutes: float, running: int, *deployments: ObservedDeployment,
          bake: int = 1800):
    return decide_rollback_alarm(cluster="prod", service="web", alarm="web-5xx-high", alarm_at=at(alarm_minutes),
                                 rollout=state, facts=facts(running, False, *deployments), bake_seconds=bake,
                                 now=at(alarm_minutes + 0.1))


def test_rollback_alarm_within_bake_rolls_back_and_marks_the_new_revision_bad():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = alarm(state, 25, 2)
    assert decision.outcome == "rollback"
    (action,) = decision.actions
    assert isinstance(action, RollBack) and action.to_task_definition == td(1)
    assert new.is_bad(td(2)) and "300s after deployment ecs-svc/new" in decision.reason


def test_rollback_alarm_after_the_new_revision_completed_still_rolls_back_within_bake():
    state = history(1, 2)  # web:2 started at 10, completed at 15: LKG web:2
    decision, new = alarm(state, 20, 2)
    assert decision.outcome == "rollback" and decision.actions[0].to_task_definition == td(1)
    assert new.lkg == td(1)


def test_rollback_alarm_outside_the_bake_window_only_notifies():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    decision, new = alarm(state, 20 + 31, 2)
    assert decision.outcome == "skipped:outside-bake-window"
    assert [type(a) for a in decision.actions] == [Notify]
    assert not new.is_bad(td(2))


def test_rollback_alarm_uses_describe_services_when_the_deployment_event_was_missed():
    decision, _ = alarm(history(1), 25, 2, obs("ecs-svc/new", 2, 20), obs("ecs-svc/0", 1, 0, "COMPLETED", "ACTIVE"))
    assert decision.outcome == "rollback"


def test_rollback_alarm_for_a_deployment_that_did_not_change_the_revision_only_notifies():
    state = deploy(history(1), "ecs-svc/recycle", 1, 20)  # forceNewDeployment of the LKG
    decision, new = alarm(state, 25, 1)
    assert decision.outcome == "skipped:not-a-new-revision" and not new.is_bad(td(1))


def test_rollback_alarm_during_an_ecs_rollback_only_notifies():
    state = deploy(history(1), "ecs-svc/new", 2, 20)
    state = on_in_progress(rollout=state, deployment_id="ecs-svc/ecsrb", updated_at=at(30), reason="ECS deployment "
                           "circuit breaker: rolling back to deploymentId ecs-svc/0.", ecs_rollback=True,
                           observed=(obs("ecs-svc/ecsrb", 1, 30),), trigger="t")[1]
    decision, _ = alarm(state, 31, 1)
    assert decision.outcome == "skipped:not-a-new-revision"


def test_rollback_alarm_older_than_the_current_deployment_belongs_to_the_previous_one():
    state = deploy(history(1, 2), "ecs-svc/new", 3, 40)
    decision, new = alarm(state, 16, 3)  # fired at 16 (web:2's bake), delivered late; the service runs web:3
    assert decision.outcome == "skipped:service-moved-on" and new.is_bad(td(2)) and not new.is_bad(td(3))


def test_rollback_alarm_before_any_known_deployment_only_notifies():
    decision, _ = alarm(RolloutState(), 5, 1)
    assert decision.outcome == "skipped:no-deployment" and [type(a) for a in decision.actions] == [Notify]


def test_recycle_at_most_once_per_bake():
    first, state = decide_recycle(cluster="prod", service="web", alarm="leak", rollout=RolloutState(),
                                  bake_seconds=600, now=at(0))
    assert first.outcome == "recycle" and isinstance(first.actions[0], Recycle)
    second, state2 = decide_recycle(cluster="prod", service="web", alarm="leak", rollout=state, bake_seconds=600,
                                    now=at(9.9))
    assert second.outcome == "skipped:recycle-cooldown" and not second.actions and state2 == state
    third, _ = decide_recycle(cluster="prod", service="web", alarm="leak", rollout=state, bake_seconds=600, now=at(10))
    assert third.outcome == "recycle"


# ---------------------------------------------------------------------------- reconciler retries


def pending(state_minutes: float = 30) -> RolloutState:
    _, state = rollback(history(1), 2, 2, now=state_minutes)
    return state


def retry(state: RolloutState, running: int | None, minutes: float):
    return decide_rollback_retry(cluster="prod", service="web", rollout=state,
                                 running_task_definition=td(running) if running else None, now=at(minutes))


def test_retry_due_only_after_three_minutes():
    state = pending(30)
    assert not rollback_due(state, at(30) + ROLLBACK_RETRY_AFTER - timedelta(seconds=1))
    assert rollback_due(state, at(30) + ROLLBACK_RETRY_AFTER)
    assert not rollback_due(history(1), at(100))


def test_retry_marks_done_when_the_service_runs_lkg():
    decision, state = retry(pending(), 1, 34)
    assert decision.outcome == "recorded:rollback-done" and not decision.actions
    assert state.rollbacks[0].status == "done" and not rollback_due(state, at(60))


def test_retry_leaves_a_newer_deployment_alone():
    decision, state = retry(pending(), 3, 34)
    assert decision.outcome == "recorded:rollback-superseded" and not decision.actions
    assert state.rollbacks[0].status == "superseded"


def test_retries_are_bounded_then_give_up_with_a_notification():
    state = pending(30)
    now = 30.0
    for attempt in range(ROLLBACK_MAX_RETRIES):
        now += ROLLBACK_RETRY_AFTER.total_seconds() / 60
        decision, state = retry(state, 2, now)
        assert decision.outcome == "rollback-retry", attempt
        (action,) = decision.actions
        assert isinstance(action, RollBack) and action.to_task_definition == td(1)
        assert state.rollbacks[0].attempts == attempt + 2
    not_due, same = retry(state, 2, now + 1)
    assert not_due.outcome == "skipped:rollback-not-due" and same == state
    now += ROLLBACK_RETRY_AFTER.total_seconds() / 60
    decision, state = retry(state, 2, now)
    assert decision.outcome == "gave-up:rollback"
    assert [type(a) for a in decision.actions] == [Notify]
    assert state.rollbacks[0].status == "gave-up" and not rollback_due(state, at(now + 100))


def test_retry_targets_the_current_lkg_and_gives_up_without_one():
    state = mark_bad(pending(30), td(1), "LKG failed too", at(31))
    decision, state = retry(state, 2, 34)
    assert decision.outcome == "gave-up:rollback"


def test_a_stale_pending_rollback_is_never_acted_on():
    state = pending(30)
    late = 30 + ROLLBACK_STALE_AFTER.total_seconds() / 60 + 1
    decision, state = retry(state, 2, late)
    assert decision.outcome == "recorded:rollback-expired" and not decision.actions
    assert state.rollbacks[0].status == "expired"


def test_retry_for_a_missing_service_does_nothing():
    state = pending(30)
    decision, same = retry(state, None, 34)
    assert decision.outcome == "skipped:service-missing" and same == state
