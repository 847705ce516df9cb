"""EMF metrics for decisions: ScaleOut, ScaleIn, Skipped (by reason), InvalidEvent, ActionFailed, DecisionLatency."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from functools import wraps

from aws_lambda_powertools.metrics import single_metric

from autopilot.models.audit import AuditEntry
from autopilot.observability import MetricUnit, logger, metrics

_COUNTED = {"scale-out": "ScaleOut", "scale-in": "ScaleIn", "repair-bounds": "BoundsRepaired",
            "rollback": "RolledBack", "rollback-retry": "RollbackRetried", "recycle": "Recycled",
            "crash-loop:notify": "CrashLoopNotified", "oom-right-size": "OomRightSized",
            "spot-fallback": "SpotFallback", "spot-restore": "SpotRestored", "restart-queued": "RestartQueued",
            "restart-run": "RestartRun", "gave-up": "GaveUp", "gave-up:rollback": "GaveUp"}


def count_outcomes(entries: list[AuditEntry], started: float) -> None:
    for entry in entries:
        name = _COUNTED.get(entry.outcome)
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        elif entry.outcome.startswith(("skipped:", "ignored:")):
            with single_metric(name="Skipped", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as m:
                m.add_dimension(name="reason", value=entry.outcome.split(":", 1)[1])
        # failed:* entries were counted where they failed (count_failure): a failure that propagates never
        # reaches this count, and must be counted all the same.
    metrics.add_metric(name="DecisionLatency", unit=MetricUnit.Milliseconds,
                       value=round((time.perf_counter() - started) * 1000, 3))


def count_failure(entry: AuditEntry, error: BaseException | None = None) -> None:
    """One ActionFailed per failed decision or action (alarmed in template.yaml), counted where it failed."""
    logger.warning("failed", extra={"target": entry.target, "outcome": entry.outcome, "error": entry.error})
    metrics.add_metric(name="ActionFailed", unit=MetricUnit.Count, value=1)
    if error is not None:
        mark_counted(error)


def mark_counted(error: BaseException) -> None:
    """``error`` was counted as ActionFailed already (``counts_failures`` does not count it again)."""
    with suppress(AttributeError):  # an exception type without a __dict__: counted twice at worst
        error.autopilot_counted = True  # type: ignore[attr-defined]


def counts_failures[**P, R](handle: Callable[P, R]) -> Callable[P, R]:
    """A use case's entry point: an error it raises that no decision counted yet (the policy could not be read,
    the table is unreachable) is counted as ActionFailed before it fails the invocation (Lambda retries it)."""
    @wraps(handle)
    def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handle(*args, **kwargs)
        except Exception as exc:
            if not getattr(exc, "autopilot_counted", False):
                logger.exception("the invocation failed", extra={"use_case": handle.__name__})
                metrics.add_metric(name="ActionFailed", unit=MetricUnit.Count, value=1)
                mark_counted(exc)
            raise

    return counted


def count_invalid(reason: str) -> None:
    """One log line and one metric per rejected event; the caller makes no AWS mutation."""
    logger.warning("rejected invalid event", extra={"reason": reason})
    metrics.add_metric(name="InvalidEvent", unit=MetricUnit.Count, value=1)
