"""EMF metrics for decisions: ScaleOut, ScaleIn, Skipped (by reason), InvalidEvent, ActionFailed, DecisionLatency."""

from __future__ import annotations

import time

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


def count_failure(entry: AuditEntry) -> None:
    """One ActionFailed per failed decision or action (alarmed in template.yaml), counted where it failed."""
    logger.warning("failed", extra={"target": entry.target, "outcome": entry.outcome, "error": entry.error})
    metrics.add_metric(name="ActionFailed", unit=MetricUnit.Count, value=1)


def count_invalid(reason: str) -> None:
    """One log line and one metric per rejected event; the caller makes no AWS mutation."""
    logger.warning("rejected invalid event", extra={"reason": reason})
    metrics.add_metric(name="InvalidEvent", unit=MetricUnit.Count, value=1)
