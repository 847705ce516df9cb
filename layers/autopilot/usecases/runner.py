"""The one path every decision about a service takes: load, decide, claim, execute, record.

Claim-then-act: the new state (cooldowns, counters, "event applied") is written with a condition on
the version that was read *before* any AWS mutation, so of two concurrent invocations only one acts;
the other backs off (jittered) and decides again on the new state. If the mutation then fails, the
claim is reverted (so a failed action does not consume a cooldown) and the error propagates so the
event is retried and, in the end, dead-lettered.

Two guarantees live here, in one place, so every use case and every reconciler hook has them:

- **Failures are isolated, audited and counted.** Whatever fails while deciding or acting for one
  service (a DescribeServices throttled, a claim that kept losing, an UpdateService refused) is
  audited as ``failed:*``, logged and counted (metric ``ActionFailed``, alarmed). A context that
  ``isolate``s (the reconciler, the scaler's alarm naming several services) then goes on with the
  other services and ``raise_failures`` fails the invocation at the end, after the others were done:
  the failure is visible (Errors alarm) and retried, and a retry does not act twice on the services
  that succeeded (their event is remembered; the reconciler's next run decides afresh).
- **A notification decided is published or counted.** A decision that only notifies (a crash loop
  with ``action: notify``, OOM at the size cap, a restart give-up) publishes *before* its state is
  committed: if the invocation dies in between, the retry decides and notifies again (at least once)
  instead of finding the event applied and staying silent. A publish that fails (after botocore's
  retries) is counted as ``NotificationFailed`` (alarmed) and audited by the executor, never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from autopilot.backoff import Sleep, pause, real_sleep
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import InvalidEvent
from autopilot.models.place import Place
from autopilot.models.policy import effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import logger
from autopilot.ports import ConcurrentUpdate, Dependencies, ExecutorPort, StateStorePort
from autopilot.usecases.observe import count_failure, count_invalid, count_outcomes, mark_counted
from autopilot.usecases.places import FOREIGN, Refused, admission

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
    sleep: Sleep = real_sleep  # back-off between attempts after a lost conditional write
    # Per-service isolation: a failure is audited, counted and kept in ``failures`` (``act`` returns its
    # entry instead of raising); ``raise_failures`` fails the invocation once every service was done.
    isolate: bool = False
    failures: list[AuditEntry] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)  # the exception behind each of ``failures``
    # The reconciler's passes each look at the states of many services: read once a run (``states``).
    snapshots: dict[str, Snapshot] | None = None
    place: str | None = None  # "account/region" when the event or pass is a member place's (issue 13)

    def failed(self, entry: AuditEntry, error: BaseException) -> AuditEntry:
        """Keep an isolated failure (already audited and counted) for ``raise_failures``."""
        self.failures.append(entry)
        self.errors.append(error)
        return entry


def context(deps: Dependencies, *, source: str, event_id: str, isolate: bool = False) -> Context:
    """The context of one invocation: the time is read once, so every decision of it sees the same now."""
    return Context(store=deps.store, executor=deps.executor, now=deps.clock(), global_mode=deps.settings.mode,
                   source=source, event_id=event_id, sleep=deps.sleep, isolate=isolate)


class PartialFailure(RuntimeError):
    """Some services of an invocation failed (each audited as ``failed:*`` and counted); the others were done."""

    def __init__(self, failed: list[AuditEntry]) -> None:
        self.failed = list(failed)
        names = ", ".join(f"{e.target} ({e.error or e.outcome})"[:200] for e in self.failed[:5])
        more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        super().__init__(f"{len(self.failed)} failed: {names}{more}"[:1000])


def states(ctx: Context, keys: Iterable[str]) -> dict[str, Snapshot]:
    """The states of ``keys`` for a pass that *selects* services (one BatchGetItem per 100 keys, once a run when
    the context keeps ``snapshots``). A pass only chooses from these; ``act`` reads the state it decides on
    again, strongly consistent, so a state another pass changed meanwhile is never decided on stale."""
    wanted = list(dict.fromkeys(keys))
    if ctx.snapshots is None:
        return ctx.store.load_states(wanted)
    missing = [k for k in wanted if k not in ctx.snapshots]
    if missing:
        ctx.snapshots.update(ctx.store.load_states(missing))
    return {k: ctx.snapshots[k] for k in wanted}


def raise_failures(ctx: Context) -> None:
    """End an isolating invocation with an error if any service failed (after every other one was done):
    the error itself when there was one (Lambda reports its type), else a PartialFailure naming them all."""
    if len(ctx.errors) == 1:
        raise ctx.errors[0]
    if ctx.failures:
        failure = PartialFailure(ctx.failures)
        mark_counted(failure)  # each failure was counted where it happened
        raise failure from (ctx.errors[0] if ctx.errors else None)


@dataclass(frozen=True)
class Rejected:
    """An event a use case refused to act on (invalid; or ``ignored``: from a place this deployment does not act
    in); ``response`` is what the handler answers."""

    reason: str
    status: str = "rejected"
    entry: AuditEntry | None = None  # the audit record of an ignored event (its outcome in the response)

    @property
    def response(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status, "reason": self.reason}
        if self.entry is not None:
            answer["outcomes"] = [{"target": self.entry.target, "outcome": self.entry.outcome,
                                   "reason": self.entry.reason}]
        return answer


class Opened[Parsed](NamedTuple):
    """An admitted event: the invocation's context, the parsed event, its place (None: the hub's own) and the
    dependencies acting there (the context's executor and place follow them)."""

    ctx: Context
    parsed: Parsed
    place: Place | None
    deps: Dependencies


def open_event[Parsed](deps: Dependencies, event: Any, *, source: str, what: str, parse: Callable[[Any], Parsed],
                       event_id: str | None = None, trigger: Callable[[Parsed], str] | None = None,
                       unnamed_is_home: bool = False) -> Opened[Parsed] | Rejected:
    """The opening every event-driven use case shares: a context, ``parse``, then the one admission check.

    An event ``parse`` refuses (``InvalidEvent``) is rejected: one log line, one InvalidEvent metric, one
    ``rejected:invalid-event`` audit record, and no AWS mutation. An event whose place (the parsed event's
    ``account`` and ``region``) is not admitted (``usecases.places.admission``: the hub's own, a registered
    member's, or one a stored policy names) is ignored: one ``ignored:foreign-account`` audit record, counted
    (Skipped), no policy read and no AWS call. ``event_id`` defaults to the event's ``id``; ``trigger`` says
    what happened in the audit record of an ignored event; ``unnamed_is_home``: an event naming no place at all
    is the hub's own (our own restart messages; AWS's events always name theirs).
    """
    if event_id is None:
        event_id = str(event.get("id", "-")) if isinstance(event, dict) else "-"
    ctx = context(deps, source=source, event_id=event_id)
    try:
        parsed = parse(event)
    except InvalidEvent as exc:
        reason = str(exc)
        count_invalid(reason)
        record(ctx, target="-", trigger=f"invalid {what}", outcome="rejected:invalid-event", reason=reason)
        return Rejected(reason)
    ctx.event_id = str(getattr(parsed, "event_id", None) or event_id)  # e.g. the alarm-action form has no "id"
    place = admission(deps.home, ctx.store, getattr(parsed, "account", None), getattr(parsed, "region", None),
                      what=what, unnamed_is_home=unnamed_is_home)
    if isinstance(place, Refused):
        said = trigger(parsed) if trigger is not None else what
        entry = record(ctx, target="-", trigger=f"{said} (from another account or region)"[:500], outcome=FOREIGN,
                       reason=place.reason, place=place.place)
        count_outcomes([entry], ctx.started)
        logger.warning("ignored an event from another account or region", extra={"reason": place.reason})
        return Rejected(place.reason, status="ignored", entry=entry)
    placed = deps.at(place)
    if place is not None:
        ctx.executor = placed.executor
        ctx.place = str(place)
    return Opened(ctx, parsed, place, placed)


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

    ``audit_skips=False`` is for the reconciler: it re-checks every minute, and a "still in cooldown" (or
    "paused", "mode off") record each minute would bury the decisions that matter.

    A failure is audited as ``failed:*`` and counted (``ActionFailed``); then it propagates, or, in an
    isolating context, is kept in ``ctx.failures`` and its entry returned.
    """
    mode = effective_mode(ctx.global_mode, policy_mode)
    if mode == "off":
        entry = _entry(ctx, key, trigger, Decision(outcome="ignored:mode-off", reason="mode is off"), mode)
        if audit_skips:
            ctx.store.audit(entry)
        return entry
    try:
        return _act(ctx, key=key, mode=mode, trigger=trigger, event_key=event_key, decide=decide,
                    audit_skips=audit_skips)
    except _ActionError as failed:  # the executor failed: claim released, failure audited
        count_failure(failed.entry, failed.cause)
        if not ctx.isolate:
            raise failed.cause from None
        return ctx.failed(failed.entry, failed.cause)
    except _AuditError as failed:  # the action was done, its record could not be written (the table is down)
        logger.exception("the action was done but its audit record could not be written", extra={"key": key})
        count_failure(failed.entry, failed.cause)
        if not ctx.isolate:
            raise failed.cause from None
        return ctx.failed(failed.entry, failed.cause)
    except Exception as exc:  # failed before acting: reading AWS, deciding, claiming
        entry = _entry(ctx, key, trigger, Decision(outcome="failed:error", reason="could not decide or claim"), mode)
        entry.error = _error_text(exc)
        logger.exception("deciding failed", extra={"key": key, "trigger": trigger[:200]})
        _best_effort_audit(ctx, entry)
        count_failure(entry, exc)
        if not ctx.isolate:
            raise
        return ctx.failed(entry, exc)


class _ActionError(Exception):
    """The executor failed after a claim; carries the audited entry and the original error."""

    def __init__(self, entry: AuditEntry, cause: Exception) -> None:
        super().__init__(str(cause))
        self.entry = entry
        self.cause = cause


class _AuditError(Exception):
    """The action was done and its claim stands, but its audit record could not be written: the invocation
    fails (an event is retried, finds itself applied and records that; the reconciler's next run decides anew)."""

    def __init__(self, entry: AuditEntry, cause: Exception) -> None:
        super().__init__(str(cause))
        self.entry = entry
        self.cause = cause


def _act(ctx: Context, *, key: str, mode: str, trigger: str, event_key: str | None, decide: Decide,
         audit_skips: bool) -> AuditEntry:
    published: dict[str, list[str]] = {}  # notify-only actions already published by this call (no repeats)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            pause(ctx.sleep, attempt - 1)  # another invocation won the conditional write: let it finish
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
            if audit_skips:
                ctx.store.audit(entry)
            return entry
        decision, new_state = decide(snap)
        if event_key and decision.mutating:
            new_state = new_state.remember(event_key)
        entry = _entry(ctx, key, trigger, decision, mode)
        if not decision.mutating:
            # Notify first, commit after: a notification is at least once, never lost to a commit that
            # marked the event applied before it went out. (The executor counts a failed publish.)
            for action in decision.actions:
                signature = action.model_dump_json()
                if signature not in published:
                    published[signature] = ctx.executor.execute((action,), mode)
                entry.calls += published[signature]
            quiet = not audit_skips and not decision.actions
            try:
                if new_state != snap.state:
                    ctx.store.save_state(key, new_state, snap.version, audit=None if quiet else [entry])
                elif not quiet:
                    ctx.store.audit(entry)
            except ConcurrentUpdate:
                continue
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
            entry.error = _error_text(exc)
            entry.outcome = f"failed:{decision.outcome}"
            logger.exception("action failed", extra={"key": key, "outcome": decision.outcome})
            _best_effort_audit(ctx, entry)
            raise _ActionError(entry, exc) from exc
        try:
            ctx.store.audit(entry)
        except Exception as exc:  # done, claimed, not recorded: the retry finds the event applied and records that
            raise _AuditError(entry, exc) from exc
        return entry
    raise ConcurrentUpdate(f"{key}: state kept changing for {MAX_ATTEMPTS} attempts")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


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
        logger.exception("could not write an audit entry", extra={"target": entry.target, "outcome": entry.outcome})


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
    best_effort: bool = False, place: object | None = None,
) -> AuditEntry:
    """Audit something that concerned no managed service (ignored or rejected events), or a failure
    (``best_effort``: a failure to write the record is logged, the failure it records matters more)."""
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
    if best_effort:
        _best_effort_audit(ctx, entry)
    else:
        ctx.store.audit(entry)
    return entry
