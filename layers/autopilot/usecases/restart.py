"""RestarterFunction's use case: a queued re-run of a standalone task is due; start it, exactly once.

Per message: load the family's TaskPolicy -> claim the attempt in state (conditional write) -> RunTask
with the attempt's deterministic ``clientToken`` -> record it started. A redelivered message finds the
attempt started (or claimed moments ago) and does nothing; moto ignores ``clientToken``, AWS honours
it, and the state record covers both. A claim whose invocation died (older than
``STALE_CLAIM_SECONDS``, never confirmed) is retried with the same token, which AWS deduplicates.

A RunTask that starts nothing (``failures[]``: no capacity; or a refused request) releases the claim,
counts as a re-run and queues the next one with the back-off; after ``maxRestarts`` the lineage gives up
and notifies. Never a tight loop. Throttling and server errors that outlast botocore's retries count
nothing: the claim is released and the error fails the record, which SQS redelivers after its
visibility timeout (and dead-letters after five receives).

A message that is not yet due (back-offs above SQS's 900 s) is queued again for the rest of its delay.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from autopilot.decide.restarts import decide_launch_failed, decide_run, decide_started
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import InvalidEvent
from autopilot.models.healing_state import RestartMessage, RestartState
from autopilot.models.place import Place
from autopilot.models.policy import TaskPolicy, family_key
from autopilot.models.state import ServiceState, Snapshot
from autopilot.models.validation import first_error
from autopilot.observability import logger
from autopilot.ports import Dependencies, RunTaskFailed
from autopilot.usecases.observe import count_outcomes, counts_failures
from autopilot.usecases.runner import Context, Rejected, act, open_event, record


def parse_message(body: str) -> RestartMessage:
    """The message body as a RestartMessage; anything else raises InvalidEvent with a one-line reason."""
    try:
        return RestartMessage.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidEvent(first_error(exc, whole="body")) from None


@counts_failures
def handle_restart_message(body: str, deps: Dependencies, message_id: str = "-") -> dict[str, Any]:
    """One restart queue message. Raises only on errors worth a redelivery (store unreachable, ...)."""
    # A message names its place only when it is a member's (decide.restarts): one naming none is the hub's own.
    opened = open_event(deps, body, source="restarter", what="restart message", parse=parse_message,
                        event_id=f"sqs:{message_id}", trigger=_trigger, unnamed_is_home=True)
    if isinstance(opened, Rejected):
        return opened.response
    ctx, message = opened.ctx, opened.parsed
    entries = run_restart(ctx, message)
    count_outcomes(entries, ctx.started)
    for entry in entries:
        logger.info("decided", extra={"target": entry.target, "outcome": entry.outcome, "reason": entry.reason[:300]})
    return {"status": "ok", "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason}
                                         for e in entries]}


def _restarts(decided: tuple[Decision, RestartState], snap: Snapshot) -> tuple[Decision, ServiceState]:
    decision, restarts = decided
    return decision, snap.state.model_copy(update={"restarts": restarts})


def _trigger(message: RestartMessage) -> str:
    return f"restart #{message.sequence} of {message.cluster}/{message.family} due"


def run_restart(ctx: Context, message: RestartMessage) -> list[AuditEntry]:
    """Run a due restart (``ctx`` acts in the message's place: ``runner.open_event``)."""
    place = Place(message.account, message.region) if message.account and message.region else None
    key = family_key(message.cluster, message.family, place)
    trigger = _trigger(message)
    policy = ctx.store.get_policy(key)
    if not isinstance(policy, TaskPolicy):
        return [record(ctx, target=key, trigger=trigger, outcome="ignored:no-policy",
                       reason=f"no TaskPolicy for {message.cluster}/{message.family} any more: not re-run")]
    try:
        entry = act(ctx, key=key, policy_mode=policy.spec.mode, trigger=trigger, event_key=None,
                    decide=lambda snap: _restarts(decide_run(message=message, policy=policy,
                                                             state=snap.state.restarts, now=ctx.now), snap))
    except RunTaskFailed as exc:
        # The runner released the claim and audited the failure; count it and retry with the back-off.
        error = str(exc)
        retry = act(ctx, key=key, policy_mode=policy.spec.mode, trigger=f"{trigger}: RunTask failed", event_key=None,
                    decide=lambda snap: _restarts(decide_launch_failed(
                        message=message, error=error, policy=policy, state=snap.state.restarts, now=ctx.now), snap))
        return [retry]
    entries = [entry]
    if entry.outcome == "restart-run":
        entries.append(act(ctx, key=key, policy_mode=policy.spec.mode, trigger=f"{trigger}: started", event_key=None,
                           audit_skips=False,
                           decide=lambda snap: _restarts(decide_started(message=message, state=snap.state.restarts,
                                                                        now=ctx.now), snap)))
    return entries
