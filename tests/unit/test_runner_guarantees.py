"""The runner's guarantees (issue 11), on the ports' in-memory fakes with the real executor.

- Finding 4: a notify-only decision is notified at least once, or counted as NotificationFailed: it is
  published before the state that marks its event applied is committed, and a failed publish is audited
  and counted, never raised (a retry would otherwise find the event applied and stay silent).
- Finding 1: a failure is audited as failed:*, counted (ActionFailed) wherever it happens, and an isolating
  context goes on with the other services.
- Finding 10: retries after a lost conditional write back off with jitter, through the injected sleeper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from autopilot import backoff
from autopilot.execute import Executor
from autopilot.models.actions import Decision, Notify, SetDesiredCount
from autopilot.models.state import ServiceState, Snapshot
from autopilot.ports import ConcurrentUpdate
from autopilot.usecases.runner import Context, act
from tests.unit.test_ports import MemoryEcs, MemoryStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEY = "SVC#prod#web"


class Died(BaseException):
    """The Lambda invocation was cut off (a timeout): not an Exception, nothing in the code catches it."""


@dataclass
class Notifier:
    fail: list[BaseException] = field(default_factory=list)  # raised by the next publishes, in order
    published: list[str] = field(default_factory=list)

    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.published.append(subject)


@dataclass
class Metrics:
    names: list[str] = field(default_factory=list)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.names.append(name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    from autopilot import observability

    recorder = Metrics()
    monkeypatch.setattr(observability.metrics, "add_metric", recorder.add_metric)
    return recorder


def ctx_for(store: MemoryStore, notifier: Notifier, ecs: Any = None, **kwargs: Any) -> Context:
    executor = Executor(ecs or MemoryEcs(desired={("prod", "web"): 4}), notifier)
    ctx = Context(store=store, executor=executor, now=NOW, global_mode="enforce", source="healer", event_id="evt-1")
    ctx.sleep = lambda seconds: None
    for name, value in kwargs.items():
        setattr(ctx, name, value)
    return ctx


def crash_loop_notify(snap: Snapshot) -> tuple[Decision, ServiceState]:
    """What the healer decides on the 3rd failure with ``action: notify``: count it, remember it, notify."""
    notify = Notify(subject="Crash loop in prod/web", reason="3 failures of web:7 in 600 s")
    state = snap.state.model_copy(update={"paused_reason": "counted"}).remember("task-1#3")
    return Decision(outcome="crash-loop:notify", reason="crash loop", actions=(notify,)), state


def run(ctx: Context) -> Any:
    return act(ctx, key=KEY, policy_mode="enforce", trigger="task stopped", event_key="task-1#3",
               decide=crash_loop_notify)


def test_a_notification_whose_invocation_dies_is_sent_by_the_retry() -> None:
    """The invocation is cut off while publishing: nothing was committed, so Lambda's retry decides again and
    notifies (before: the state was committed first, the retry was skipped:duplicate, nobody was told)."""
    store, notifier = MemoryStore(), Notifier(fail=[Died()])
    with pytest.raises(Died):
        run(ctx_for(store, notifier))
    assert not store.load_state(KEY).state.has_applied("task-1#3")
    entry = run(ctx_for(store, notifier))  # Lambda's retry of the event
    assert entry.outcome == "crash-loop:notify" and entry.calls == ["sns:Publish"]
    assert notifier.published == ["Crash loop in prod/web"]
    assert run(ctx_for(store, notifier)).outcome == "skipped:duplicate"
    assert notifier.published == ["Crash loop in prod/web"]


def test_a_failed_notification_is_counted_and_audited_not_raised(counted: Metrics) -> None:
    store, notifier = MemoryStore(), Notifier(fail=[ConnectionError("SNS unreachable")])
    entry = run(ctx_for(store, notifier))
    assert entry.outcome == "crash-loop:notify"
    assert entry.calls == ["sns:Publish failed (ConnectionError)"]
    assert counted.names.count("NotificationFailed") == 1
    assert [(e.outcome, e.calls) for e in store.audited] == [("crash-loop:notify", entry.calls)]
    assert store.load_state(KEY).state.has_applied("task-1#3")


def test_a_lost_commit_after_the_notification_does_not_notify_twice_in_one_invocation() -> None:
    """The commit loses to a concurrent writer: the runner decides again; the same notification is not sent
    again by the same invocation."""
    store, notifier = MemoryStore(), Notifier()
    real_save = store.save_state
    lost = {"n": 0}

    def save_state(key: str, state: ServiceState, expected_version: int, audit: Any = None) -> int:
        if lost["n"] == 0:
            lost["n"] += 1
            real_save(key, ServiceState(), expected_version)  # someone else wrote first
            raise ConcurrentUpdate(key)
        return real_save(key, state, expected_version, audit)

    store.save_state = save_state  # type: ignore[method-assign]
    entry = run(ctx_for(store, notifier))
    assert entry.outcome == "crash-loop:notify" and notifier.published == ["Crash loop in prod/web"]


def test_an_announcement_that_fails_keeps_the_action(counted: Metrics) -> None:
    store, notifier = MemoryStore(), Notifier(fail=[ConnectionError("SNS unreachable")])
    ecs = MemoryEcs(desired={("prod", "web"): 4})

    def scale(snap: Snapshot) -> tuple[Decision, ServiceState]:
        action = SetDesiredCount(cluster="prod", service="web", desired=6, previous=4, reason="alarm")
        return Decision(outcome="scale-out", reason="alarm", actions=(action,)), snap.state

    entry = act(ctx_for(store, notifier, ecs), key=KEY, policy_mode="enforce", trigger="t", event_key="e",
                decide=scale)
    assert entry.outcome == "scale-out" and ecs.desired[("prod", "web")] == 6
    assert entry.calls == ["ecs:UpdateService", "sns:Publish failed (ConnectionError)"]
    assert counted.names.count("NotificationFailed") == 1


# ------------------------------------------------------------------------------------------ failures counted
def failing(snap: Snapshot) -> tuple[Decision, ServiceState]:
    raise TimeoutError("DescribeServices timed out")


def test_a_failure_before_acting_is_audited_and_counted_then_raised(counted: Metrics) -> None:
    store = MemoryStore()
    with pytest.raises(TimeoutError):
        act(ctx_for(store, Notifier()), key=KEY, policy_mode="enforce", trigger="t", event_key=None, decide=failing)
    assert [(e.outcome, e.error) for e in store.audited] == [
        ("failed:error", "TimeoutError: DescribeServices timed out")]
    assert counted.names == ["ActionFailed"]


def test_an_isolating_context_keeps_the_failure_and_goes_on(counted: Metrics) -> None:
    store = MemoryStore()
    ctx = ctx_for(store, Notifier(), isolate=True)
    entry = act(ctx, key=KEY, policy_mode="enforce", trigger="t", event_key=None, decide=failing)
    assert entry.outcome == "failed:error" and ctx.failures == [entry]
    other = act(ctx, key="SVC#prod#api", policy_mode="enforce", trigger="t", event_key=None, decide=crash_loop_notify)
    assert other.outcome == "crash-loop:notify"
    from autopilot.usecases.runner import raise_failures

    with pytest.raises(TimeoutError):
        raise_failures(ctx)
    assert counted.names.count("ActionFailed") == 1


# ------------------------------------------------------------------------------------------ back-off
def test_a_lost_conditional_write_backs_off_with_jitter_before_deciding_again() -> None:
    store, slept = MemoryStore(), []
    real_save = store.save_state
    lost = {"n": 0}

    def save_state(key: str, state: ServiceState, expected_version: int, audit: Any = None) -> int:
        if lost["n"] < 3:
            lost["n"] += 1
            real_save(key, store.load_state(key).state, store.load_state(key).version)  # a concurrent writer
            raise ConcurrentUpdate(key)
        return real_save(key, state, expected_version, audit)

    store.save_state = save_state  # type: ignore[method-assign]
    ctx = ctx_for(store, Notifier())
    ctx.sleep = slept.append
    assert run(ctx).outcome == "crash-loop:notify"
    assert len(slept) == 3, "one pause before each new attempt"
    assert all(0 <= s <= backoff.BASE_SECONDS * 2 ** i for i, s in enumerate(slept))
    assert len(set(slept)) == 3, "jittered"


def test_back_off_is_full_jitter_capped() -> None:
    assert backoff.delay(0, rng=lambda: 1.0) == backoff.BASE_SECONDS
    assert backoff.delay(3, rng=lambda: 0.5) == 0.5 * backoff.BASE_SECONDS * 8
    assert backoff.delay(30, rng=lambda: 1.0) == backoff.CAP_SECONDS
    assert backoff.delay(5, rng=lambda: 0.0) == 0.0


def test_an_action_whose_audit_cannot_be_written_fails_the_invocation_and_the_retry_records_it(
        counted: Metrics) -> None:
    """Found by the soak: the table went down between the action and its audit record; the invocation returned
    as if all was well, and the event left no trace. Now it fails (counted); Lambda's retry finds the event
    applied (the claim stands: no second action) and records that."""
    store, notifier = MemoryStore(), Notifier()
    ecs = MemoryEcs(desired={("prod", "web"): 4})

    def scale(snap: Snapshot) -> tuple[Decision, ServiceState]:
        action = SetDesiredCount(cluster="prod", service="web", desired=6, previous=4, reason="alarm")
        return Decision(outcome="scale-out", reason="alarm", actions=(action,)), snap.state

    def down(*entries: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    store.audit = down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        act(ctx_for(store, notifier, ecs), key=KEY, policy_mode="enforce", trigger="t", event_key="e", decide=scale)
    assert ecs.desired[("prod", "web")] == 6 and counted.names.count("ActionFailed") == 1
    del store.audit  # the table is back
    retry = act(ctx_for(store, notifier, ecs), key=KEY, policy_mode="enforce", trigger="t", event_key="e",
                decide=scale)
    assert retry.outcome == "skipped:duplicate" and [e.outcome for e in store.audited] == ["skipped:duplicate"]
