"""Every stored state item fits its byte budget, at the policy maximums and with the longest names AWS allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.decide.restarts import client_token
from autopilot.models.healing_state import (
    MAX_ATTEMPTS_KEPT,
    MAX_LINEAGES,
    MAX_REVISIONS,
    Attempt,
    CrashWindow,
    FailureMark,
    HealingState,
    Lineage,
    OomRecord,
    RestartState,
    SpotHold,
    SpotState,
)
from autopilot.models.policy import CrashLoop, Restart, SpotFallback
from autopilot.models.rollout_state import (
    MAX_BAD_REVISIONS,
    MAX_DEPLOYMENTS,
    MAX_ROLLBACKS,
    BadMark,
    DeploymentRecord,
    RollbackRecord,
    RolloutState,
)
from autopilot.models.state import MAX_REMEMBERED_EVENTS, ServiceState
from autopilot.models.state_budget import STATE_BUDGET_BYTES, StateTooLarge, fit, size_of

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DYNAMODB_ITEM_LIMIT = 400 * 1024
CLUSTER = "c" * 255  # ECS allows 255 characters for cluster, service and family names
FAMILY = "f" * 255
ACCOUNT_REGION = "arn:aws:ecs:ap-southeast-2:123456789012"


def task_arn(n: int) -> str:
    return f"{ACCOUNT_REGION}:task/{CLUSTER}/{n:032x}"


def taskdef_arn(revision: int) -> str:
    return f"{ACCOUNT_REGION}:task-definition/{FAMILY}:{revision}"


def _maximum(field: str, model: type) -> int:
    """The ``le`` bound of a policy field: the tests use the maxima the policy model allows."""
    for meta in model.model_fields[field].metadata:
        if getattr(meta, "le", None) is not None:
            return int(meta.le)
    raise AssertionError(f"{model.__name__}.{field} has no maximum")


def worst_family_state() -> ServiceState:
    """A TaskPolicy family at its maxima: every lineage kept, each with every attempt and seen task kept."""
    lineages = {}
    for n in range(MAX_LINEAGES):
        lineage_id = f"{n:032x}"
        attempts = [Attempt(sequence=s, client_token=client_token(CLUSTER, FAMILY, lineage_id, s), status="failed",
                            queued_at=NOW, not_before=NOW + timedelta(seconds=300), claimed_at=NOW, started_at=NOW,
                            error="x" * 500)
                    for s in range(1, MAX_ATTEMPTS_KEPT + 1)]
        lineages[lineage_id] = Lineage(
            id=lineage_id, first_task=task_arn(n), restarts=_maximum("maxRestarts", Restart),
            sequence=10_000, seen_tasks=[task_arn(n * 100 + s) for s in range(20)],  # ARNs, as stored before
            attempts=attempts, status="waiting" if n % 2 else "gave-up", updated_at=NOW - timedelta(minutes=n))
    return ServiceState(restarts=RestartState(lineages=lineages),
                        applied_events=[f"task:{task_arn(n)}:{n}" for n in range(MAX_REMEMBERED_EVENTS)])


def worst_service_state() -> ServiceState:
    """A ServicePolicy service at its maxima: full crash windows for every kept revision, a full Spot window,
    every deployment, rollback and bad revision kept, with the longest ARNs."""
    failures = _maximum("failures", CrashLoop)
    interruptions = _maximum("interruptions", SpotFallback)
    crash = {f"{FAMILY}:{r}": CrashWindow(
        failures=[FailureMark(key=f"{r * 10_000 + n:032x}", at=NOW - timedelta(seconds=n), kind="crash")
                  for n in range(failures)], updated_at=NOW - timedelta(hours=r))
        for r in range(1, MAX_REVISIONS + 1)}
    oom = {f"{FAMILY}:{r}": OomRecord(outcome="derived", at=NOW - timedelta(hours=r), derivation_id="d" * 64,
                                      containers=["n" * 255] * 10, task_memory_from=512, task_memory_to=1024,
                                      note="y" * 300) for r in range(1, MAX_REVISIONS + 1)}
    spot = SpotState(marks=[FailureMark(key=f"task:{n:032x}", at=NOW - timedelta(seconds=n), kind="spot")
                            for n in range(interruptions)],
                     hold=SpotHold(saved_strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}],
                                   applied_strategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 0}],
                                   since=NOW, until=NOW + timedelta(hours=1)))
    deployments = [DeploymentRecord(id=f"ecs-svc/{n:019d}", task_definition=taskdef_arn(n), started_at=NOW,
                                    updated_at=NOW, status="COMPLETED", reason="r" * 300)
                   for n in range(MAX_DEPLOYMENTS)]
    rollbacks = [RollbackRecord(failing_revision=taskdef_arn(n), to_revision=taskdef_arn(n - 1), decided_at=NOW,
                                reason="z" * 500, last_attempt_at=NOW, status="pending" if n == 0 else "done")
                 for n in range(MAX_ROLLBACKS)]
    bad = [taskdef_arn(1000 + n) for n in range(MAX_BAD_REVISIONS)]
    rollout = RolloutState(lkg=taskdef_arn(7), lkg_deployment="ecs-svc/1", bad_revisions=bad,
                           bad_marks={b.rsplit("/", 1)[-1]: BadMark(marked_at=NOW, reason="q" * 300) for b in bad},
                           deployments=deployments, current_deployment=deployments[0], rollbacks=rollbacks)
    return ServiceState(paused=True, paused_reason="p" * 500, healing=HealingState(crash=crash, oom=oom, spot=spot),
                        rollout=rollout,
                        applied_events=[f"alarm:{'a' * 255}:ALARM:{n}" for n in range(MAX_REMEMBERED_EVENTS)])


@pytest.mark.parametrize("build", [worst_family_state, worst_service_state], ids=["family", "service"])
def test_the_worst_state_would_pass_dynamodbs_limit_and_is_fitted_under_budget(build) -> None:
    state = build()
    assert size_of(state) > DYNAMODB_ITEM_LIMIT, "the fixture must really be too big, or the test proves nothing"
    fitted, notes = fit(state)
    assert size_of(fitted) <= STATE_BUDGET_BYTES < 350 * 1024
    assert notes


def test_what_is_current_is_never_dropped() -> None:
    state = worst_service_state()
    fitted, _ = fit(state)
    assert fitted.paused and fitted.paused_reason == state.paused_reason
    assert fitted.rollout.lkg == state.rollout.lkg
    assert fitted.rollout.bad_revisions == state.rollout.bad_revisions
    assert fitted.rollout.pending_rollback() == state.rollout.pending_rollback()
    assert fitted.rollout.current_deployment == state.rollout.current_deployment
    assert fitted.healing.spot == state.healing.spot  # the window and the hold in force
    newest = max(state.healing.crash, key=lambda k: state.healing.crash[k].updated_at or NOW)
    assert fitted.healing.crash[newest] == state.healing.crash[newest]


def test_finished_lineages_go_before_active_ones() -> None:
    state = worst_family_state()
    fitted, notes = fit(state, budget=size_of(state) - 10_000)
    assert notes == [notes[0]] and "finished" in notes[0]
    active = {k for k, v in state.restarts.lineages.items() if v.status == "waiting"}
    assert active <= set(fitted.restarts.lineages)


def test_a_state_within_budget_is_returned_as_it_is() -> None:
    state = ServiceState(applied_events=["e1"])
    fitted, notes = fit(state)
    assert fitted is state and notes == []


def test_a_state_whose_current_part_cannot_fit_is_refused_clearly() -> None:
    window = CrashWindow(failures=[FailureMark(key="k" * 1000, at=NOW, kind="crash") for _ in range(400)])
    state = ServiceState(healing=HealingState(crash={"web:1": window}))
    with pytest.raises(StateTooLarge, match="budget"):
        fit(state)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(lineages=st.integers(0, 150), seen=st.integers(0, 25), attempts=st.integers(0, 12),
       budget=st.integers(60_000, 400_000))
def test_fit_always_ends_under_budget_or_refuses(lineages: int, seen: int, attempts: int, budget: int) -> None:
    state = ServiceState(restarts=RestartState(lineages={
        f"{n:032x}": Lineage(id=f"{n:032x}", first_task=task_arn(n), seen_tasks=[task_arn(s) for s in range(seen)],
                             attempts=[Attempt(sequence=s, client_token="t" * 64, queued_at=NOW, not_before=NOW,
                                               error="e" * 500) for s in range(attempts)],
                             status="done" if n % 3 == 0 else "active", updated_at=NOW - timedelta(seconds=n))
        for n in range(lineages)}))
    try:
        fitted, _ = fit(state, budget=budget)
    except StateTooLarge:
        return
    assert size_of(fitted) <= budget
