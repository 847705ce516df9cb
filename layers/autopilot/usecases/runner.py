"""The one path every decision about a service takes: load, decide, claim, execute, record.

Claim-then-act: the new state (cooldowns, counters, "event applied") is written with a condition on
the version that was read *before* any AWS mutation, so of two concurrent invocations only one acts;
the other reloads and decides again on the new state. If the mutation then fails, the claim is
reverted (so a failed action does not consume a cooldown) and the error propagates so the event is
retried and, in the end, dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import InvalidEvent
from autopilot.models.policy import effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import ConcurrentUpdate, Dependencies, ExecutorPort, StateStorePort
from autopilot.usecases.observe import count_invalid

MAX_ATTEMPTS = 5

Decide = Callable[[Snapshot], tuple[Decision, ServiceState]]


@dataclass
class Context:
    """What one invocation shares across its decisions."""

    store: StateStorePort
    executor: ExecutorPort
    now: datetime
    global_mode: str
    source: str  # the function deciding: scaler, reconciler, ...
    event_id: str
    started: float = field(default_factory=time.perf_counter)  # for the DecisionLatency metric
    place: str | None = None  # "account/region" when the event is a member's (usecases.places.enter)


def context(deps: Dependencies, *, source: str, event_id: str) -> Context:
    """The context of one invocation: the time is read once, so every decision of it sees the same now."""
    return Context(store=deps.store, executor=deps.executor, now=deps.clock(), global_mode=deps.settings.mode,
                   source=source, event_id=event_id)


@dataclass(frozen=True)
class Rejected:
    """An event a use case refused to act on; ``response`` is what the handler answers."""

    reason: str

    @property
    def response(self) -> dict[str, Any]:
        return {"status": "rejected", "reason": self.reason}


def open_event[Parsed](deps: Dependencies, event: Any, *, source: str, what: str, parse: Callable[[Any], Parsed],
                       event_id: str | None = None) -> tuple[Context, Parsed] | Rejected:
    """The opening every event-driven use case shares: a context, then ``parse``.

    An event ``parse`` refuses (``InvalidEvent``) is rejected: one log line, one InvalidEvent metric, one
    ``rejected:invalid-event`` audit record, and no AWS mutation. ``event_id`` defaults to the event's ``id``.
    """
    if event_id is None:
        event_id = str(event.get("id", "-")) if isinstance(event, dict) else "-"
    ctx = context(deps, source=source, event_id=event_id)
    try:
        return ctx, parse(event)
    except InvalidEvent as exc:
        reason = str(exc)
        count_invalid(reason)
        record(ctx, target="-", trigger=f"invalid {what}", outcome="rejected:invalid-event", reason=reason)
        return Rejected(reason)


def act(
    ctx: Context,
    *,
    key: str,
    policy_mode: str,
    trigger: str,
    event_key: str | None,
    decide: Decide,
    audit_skips: bool = True,
) -> AuditEntry:
    """Decide and act for one service or family; returns the audit entry (written unless a quiet skip).

    ``audit_skips=False`` is for the reconciler: it re-checks every minute, and a "still in cooldown"
    record each minute would bury the decisions that matter.
    """
    mode = effective_mode(ctx.global_mode, policy_mode)
    if mode == "off":
        entry = _entry(ctx, key, trigger, Decision(outcome="ignored:mode-off", reason="mode is off"), mode)
        ctx.store.audit(entry)
        return entry
    for _attempt in range(MAX_ATTEMPTS):
        snap = ctx.store.load_state(key)
        if event_key and snap.state.has_applied(event_key):
            entry = _entry(
                ctx,
                key,
                trigger,
                Decision(outcome="skipped:duplicate", reason=f"event {event_key} was already applied"),
                mode,
            )
            ctx.store.audit(entry)
            return entry
        if snap.state.paused:
            entry = _entry(
                ctx,
                key,
                trigger,
                Decision(
                    outcome="skipped:paused",
                    reason=f"paused by an operator ({snap.state.paused_reason or 'no reason'})",
                ),
                mode,
            )
            ctx.store.audit(entry)
            return entry
        decision, new_state = decide(snap)
        if event_key and decision.mutating:
            new_state = new_state.remember(event_key)
        entry = _entry(ctx, key, trigger, decision, mode)
        if not decision.mutating:
            quiet = not audit_skips and not decision.actions
            try:
                if new_state != snap.state:
                    ctx.store.save_state(key, new_state, snap.version, audit=None if quiet else [entry])
                elif not quiet:
                    ctx.store.audit(entry)
            except ConcurrentUpdate:
                continue
            entry.calls = ctx.executor.execute(decision.actions, mode)
            return entry
        try:
            claimed = ctx.store.save_state(key, new_state, snap.version)
        except ConcurrentUpdate:
            logger.info("state changed concurrently; deciding again", extra={"key": key})
            continue
        try:
            entry.calls = ctx.executor.execute(decision.actions, mode)
        except Exception as exc:
            _release(ctx, key, snap.state, claimed)
            entry.error = f"{type(exc).__name__}: {exc}"[:500]
            entry.outcome = f"failed:{decision.outcome}"
            _best_effort_audit(ctx, entry)
            raise
        ctx.store.audit(entry)
        return entry
    raise ConcurrentUpdate(f"{key}: state kept changing for {MAX_ATTEMPTS} attempts")


def _release(ctx: Context, key: str, previous: ServiceState, claimed_version: int) -> None:
    """Undo a claim whose action failed, unless someone wrote after us (then their state stands)."""
    try:
        ctx.store.save_state(key, previous, claimed_version)
    except ConcurrentUpdate:
        logger.warning("could not release the claim: state changed meanwhile", extra={"key": key})
    except Exception:  # the original error matters more; the event will be retried
        logger.exception("could not release the claim", extra={"key": key})


def _best_effort_audit(ctx: Context, entry: AuditEntry) -> None:
    try:
        ctx.store.audit(entry)
    except Exception:
        logger.exception("could not write the audit entry of a failed action")


def _entry(ctx: Context, key: str, trigger: str, decision: Decision, mode: str) -> AuditEntry:
    return AuditEntry(
        at=ctx.now,
        target=key,
        event_id=ctx.event_id,
        source=ctx.source,
        trigger=trigger,
        outcome=decision.outcome,
        reason=decision.reason,
        mode=mode,
        actions=[a.model_dump(mode="json") for a in decision.actions],
        place=ctx.place,
    )


def record(
    ctx: Context, *, target: str, trigger: str, outcome: str, reason: str, error: str | None = None,
    place: object | None = None,
) -> AuditEntry:
    """Audit something that concerned no managed service (ignored or rejected events)."""
    entry = AuditEntry(
        at=ctx.now,
        target=target,
        event_id=ctx.event_id,
        source=ctx.source,
        trigger=trigger,
        outcome=outcome,
        reason=reason,
        mode=ctx.global_mode,
        error=error,
        place=str(place) if place is not None else ctx.place,
    )
    ctx.store.audit(entry)
    return entry
