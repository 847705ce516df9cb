"""Reading many managed services at once: grouped per cluster, one DescribeServices per 10 services.

In the reconciler's passes a batch whose DescribeServices fails (after botocore's retries) costs only its own
services: each is audited ``failed:describe``, counted (ActionFailed) and kept for the end of the run, which
then fails; every other batch is read and decided as usual (``describe_or_record``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from autopilot.models.policy import ServicePolicy
from autopilot.ports import EcsPort, ServiceView
from autopilot.usecases.observe import count_failure
from autopilot.usecases.runner import Context, record

BATCH = 10  # DescribeServices' largest request
STOP_AFTER_CLUSTERS = 2  # failed clusters after which a pass reads no more: AWS is throttling or down
Views = dict[tuple[str, str], ServiceView]
OnFailure = Callable[[str, list[str], Exception, bool], None]


def describe_policies(ecs: EcsPort, policies: Iterable[ServicePolicy], on_failure: OnFailure | None = None) -> Views:
    """The services of ``policies`` as DescribeServices sees them, keyed by (cluster, service).

    A service AWS does not know (or INACTIVE) is absent from the answer. A batch that fails raises, or, with
    ``on_failure``, is handed to it (``skipped`` False) and left out of the answer. A failure that outlasted
    botocore's retries is rarely the batch's alone, and asking again would spend the invocation's time on
    retries: the rest of that cluster is not asked this run, nor, after ``STOP_AFTER_CLUSTERS`` clusters
    failed, anything else (those batches are handed over with ``skipped`` True). A cluster that always fails
    (a permission missing) costs only its own services.
    """
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for policy in policies:
        names = by_cluster[policy.metadata.cluster]
        if policy.metadata.service not in names:
            names.append(policy.metadata.service)
    found: Views = {}
    failed: dict[str, Exception] = {}
    last: Exception | None = None
    for cluster, services in by_cluster.items():
        for start in range(0, len(services), BATCH):
            batch = services[start:start + BATCH]
            cause = failed.get(cluster) or (last if len(failed) >= STOP_AFTER_CLUSTERS else None)
            if cause is not None and on_failure is not None:
                on_failure(cluster, batch, cause, True)
                continue
            try:
                answer = ecs.describe_services(cluster, batch)
            except Exception as exc:
                if on_failure is None:
                    raise
                failed[cluster] = last = exc
                on_failure(cluster, batch, exc, False)
                continue
            found.update({(cluster, name): view for name, view in answer.items()})
    return found


def describe_or_record(ctx: Context, ecs: EcsPort, policies: Sequence[ServicePolicy],
                       trigger: str) -> tuple[Views, set[str]]:
    """``describe_policies`` for a reconciler pass: the views, and the keys of the policies left unread.

    Each unread policy is audited ``failed:describe``, counted and kept on ``ctx`` (the run ends with the
    error once every other service is done); the pass must not decide it (a service missing from the views
    would read as deleted)."""
    unread: set[str] = set()

    def failed(cluster: str, batch: list[str], exc: Exception, skipped: bool) -> None:
        reason = ("not read: DescribeServices failed earlier in this run, not asked again until the next one"
                  if skipped else "DescribeServices failed for this service's batch: not decided this run")
        for policy in policies:
            if policy.metadata.cluster == cluster and policy.metadata.service in batch and policy.key not in unread:
                unread.add(policy.key)
                entry = record(ctx, target=policy.key, trigger=trigger, outcome="failed:describe", reason=reason,
                               error=f"{type(exc).__name__}: {exc}"[:500], best_effort=True)
                count_failure(entry, exc)
                ctx.failed(entry, exc)

    return describe_policies(ecs, policies, failed), unread
