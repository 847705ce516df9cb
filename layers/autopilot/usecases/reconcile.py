"""ReconcilerFunction's use case, run every minute.

Alarms send no event while they stay in ALARM, but Application Auto Scaling repeats its actions
every minute; so must we. Each run: one DescribeAlarms call per 100 rule alarms, one GetMetricData
for the latest value of the alarms in ALARM, one DescribeServices per 10 services of a cluster, then
every rule whose alarm is still in ALARM goes through the same decision as the scaler (cooldowns
decide whether it acts). Desired counts that drifted outside [minTasks, maxTasks] are brought back.

Each service is decided and acted on on its own (``runner``: an isolating context), and each hook runs
on its own: one service or hook that fails is audited as ``failed:*`` and counted (ActionFailed), the
others still run, and the run then ends with an error (``PartialFailure``: the Errors alarm sees it).
Services whose mode is ``off`` are not looked at, and a paused or cooling-down service writes no audit
record each minute: only decisions that act, and failures, are recorded.

Places (issue 13): the policies are grouped by the account and region they name; each place is reconciled
with the ports acting there (a context of its own: its executor, its failures, its one read of the states),
on a thread of its own when there are several, so a member whose role cannot be assumed, whose API throttles
or whose region does not answer delays no other place's decisions. A place with a failure is logged, counted
(``PlaceFailed``) and, once every other place is done, fails the invocation (``PlacesFailed``, the
ReconcilerFunction errors alarm); the next run tries it again. Above a size the run is fanned out over SQS
(``usecases.shards``): a shard is every (place, policy) whose key hashes to it, grouped by place here again.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from autopilot.decide.scaling import decide_bounds
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.events import AlarmChange, InvalidEvent, parse_reason_data
from autopilot.models.place import Place
from autopilot.models.policy import ServicePolicy, effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.observability import MetricUnit, logger, metrics
from autopilot.ports import AlarmView, Dependencies, ServiceView
from autopilot.usecases.observe import count_failure, count_outcomes, counts_failures, mark_counted
from autopilot.usecases.rollbacks import reconcile_rollbacks
from autopilot.usecases.runner import Context, PartialFailure, act, context, raise_failures, record
from autopilot.usecases.scale import apply_rule
from autopilot.usecases.services import describe_or_record
from autopilot.usecases.spot_holds import restore_spot_holds
from autopilot.usecases.target_tracking import reconcile_target_tracking

ReconcileHook = Callable[[Context, Dependencies, list[ServicePolicy]], list[AuditEntry]]
"""A pass of the reconciler after the alarm rules: gets the run's context, the dependencies and every
service policy; returns the audit entries of what it decided (a quiet pass returns none)."""

HOOKS: tuple[ReconcileHook, ...] = (
    reconcile_rollbacks,  # rollouts: retry rollbacks the service did not follow
    restore_spot_holds,  # healing: end Spot fallback holds after holdSeconds
    reconcile_target_tracking,  # targetTracking rules: every rule, every minute (issue 7)
)


MAX_PLACES_IN_PARALLEL = 8


class PlacesFailed(PartialFailure):
    """Some places had failures (each audited and counted where it happened; the other places were reconciled):
    the invocation fails so the errors alarm fires."""

    def __init__(self, failed: list[AuditEntry], message: str) -> None:
        super().__init__(failed)
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class PlaceRun:
    """What reconciling one place gave: its context (its isolated failures), its entries, or the error that
    kept it from running at all."""

    label: str
    ctx: Context | None = None
    entries: list[AuditEntry] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def failures(self) -> list[AuditEntry]:
        if self.error is not None:
            return self.entries[-1:]  # its failed:place record
        return self.ctx.failures if self.ctx is not None else []

    @property
    def errors(self) -> list[BaseException]:
        if self.error is not None:
            return [self.error]
        return self.ctx.errors if self.ctx is not None else []

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@counts_failures
def reconcile(deps: Dependencies, event_id: str = "reconcile", hooks: tuple[ReconcileHook, ...] = HOOKS,
              policies: list[ServicePolicy] | None = None) -> dict[str, Any]:
    """One run over ``policies`` (default: every stored service policy), place by place; raises at the end if
    a service, a pass or a place failed (after the others were done)."""
    ctx = context(deps, source="reconciler", event_id=event_id)
    if policies is None:
        policies = [p for p in deps.store.list_policies() if isinstance(p, ServicePolicy)]
    groups: dict[Place | None, list[ServicePolicy]] = {}
    for policy in policies:
        groups.setdefault(policy.metadata.place, []).append(policy)
    if len(groups) <= 1:  # one place (a single-account deployment): as before places existed, no thread
        place = next(iter(groups), None)
        runs = [_run_place(ctx, deps, place, groups.get(place, []), hooks)]
    else:
        runs = _in_parallel(ctx, deps, groups, hooks)
    entries = [e for run in runs for e in run.entries]
    count_outcomes(entries, ctx.started)
    if len(runs) == 1:
        only = runs[0]
        if only.error is not None:
            raise only.error
        assert only.ctx is not None
        raise_failures(only.ctx)  # the error itself when there was one, else a PartialFailure naming them all
    else:
        _raise_place_failures(runs)
    return {"status": "ok", "policies": len(policies),
            "outcomes": [{"target": e.target, "outcome": e.outcome, "reason": e.reason} for e in entries]}


def context_at(ctx: Context, placed: Dependencies, place: Place | None) -> Context:
    """The run's context for one place (``placed``: the dependencies acting there): its own executor, its own
    isolated failures and read of the states, the run's time and event id."""
    placed_ctx = context(placed, source=ctx.source, event_id=ctx.event_id, isolate=True)
    placed_ctx.now, placed_ctx.started = ctx.now, ctx.started
    placed_ctx.snapshots = {}  # the passes share one read of the states (runner.states)
    placed_ctx.place = str(place) if place is not None else None
    return placed_ctx


def reconcile_place(ctx: Context, deps: Dependencies, policies: list[ServicePolicy],
                    hooks: tuple[ReconcileHook, ...] = HOOKS) -> list[AuditEntry]:
    """Everything the reconciler does for the policies of one place, with ports acting there, pass by pass."""
    entries: list[AuditEntry] = []
    for hook in (_scaling_hook, *hooks):
        entries += run_hook(ctx, deps, hook, policies)
    return entries


def _run_place(ctx: Context, deps: Dependencies, place: Place | None, policies: list[ServicePolicy],
               hooks: tuple[ReconcileHook, ...]) -> PlaceRun:
    run = PlaceRun(label="home" if place is None else str(place))
    try:
        placed = deps.at(place)
        run.ctx = context_at(ctx, placed, place)
        run.entries = reconcile_place(run.ctx, placed, policies, hooks)
    except Exception as exc:  # the place could not even be set up (its member registry unreadable, say)
        entry = record(ctx, target="-", trigger="reconcile", outcome="failed:place", place=place,
                       reason=f"{run.label} could not be reconciled", error=f"{type(exc).__name__}: {exc}"[:500],
                       best_effort=True)
        count_failure(entry, exc)
        run.entries, run.error = [entry], exc
    return run


def _in_parallel(ctx: Context, deps: Dependencies, groups: dict[Place | None, list[ServicePolicy]],
                 hooks: tuple[ReconcileHook, ...]) -> list[PlaceRun]:
    ordered = sorted(groups, key=lambda p: (p is not None, p or Place("", "")))  # the hub's own first
    with ThreadPoolExecutor(max_workers=min(MAX_PLACES_IN_PARALLEL, len(ordered)),
                            thread_name_prefix="reconcile") as pool:
        futures = [pool.submit(_run_place, ctx, deps, place, groups[place], hooks) for place in ordered]
        return [future.result() for future in futures]


def _raise_place_failures(runs: list[PlaceRun]) -> None:
    """After every place was done: log and count (PlaceFailed) each place with a failure, then fail the run."""
    failed = [run for run in runs if run.failed]
    for run in failed:
        logger.error("a place could not be reconciled", extra={"place": run.label, "failures": len(run.failures)})
        metrics.add_metric(name="PlaceFailed", unit=MetricUnit.Count, value=1)
    if not failed:
        return
    errors = [e for run in failed for e in run.errors]
    entries = [e for run in failed for e in run.failures]
    first = errors[0] if errors else None
    detail = f"{type(first).__name__}: {first}" if first is not None else "; ".join(e.outcome for e in entries[:3])
    failure = PlacesFailed(entries, f"{len(failed)} of {len(runs)} places could not be reconciled "
                                    f"({', '.join(run.label for run in failed)}); the others were: {detail}"[:1000])
    mark_counted(failure)  # each failure was counted (ActionFailed) where it happened
    raise failure from first


def run_hook(ctx: Context, deps: Dependencies, hook: ReconcileHook, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """Run one pass; a pass that fails as a whole (its batch reads, say) is audited, counted and reported at
    the end of the run like a failed service, and does not keep the other passes from running."""
    try:
        return hook(ctx, deps, policies)
    except Exception as exc:
        name = getattr(hook, "__name__", type(hook).__name__)
        entry = record(ctx, target="-", trigger=f"reconcile: {name}", outcome="failed:hook",
                       reason=f"the {name} pass failed as a whole", error=f"{type(exc).__name__}: {exc}"[:500],
                       best_effort=True)
        count_failure(entry, exc)
        ctx.failed(entry, exc)
        return [entry]


def _scaling_hook(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    return reconcile_scaling(ctx, deps, [p for p in policies if p.spec.scaling is not None])


def reported(entry: AuditEntry) -> bool:
    """What a reconciler pass reports: decisions that acted, and failures (quiet skips are not)."""
    return bool(entry.actions) or entry.outcome.startswith("failed:")


def reconcile_scaling(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    # mode off (policy or global switch): nothing to decide, nothing to describe, no audit line each minute
    policies = [p for p in policies if effective_mode(ctx.global_mode, p.spec.mode) != "off"]
    if not policies:
        return []
    names = sorted({r.alarm for p in policies for r in (p.spec.scaling.rules if p.spec.scaling else [])
                    if r.alarm is not None})  # targetTracking rules have no alarm (usecases.target_tracking)
    alarms = deps.alarms.describe_alarms(names) if names else {}
    in_alarm = [a for a in alarms.values() if a.state == "ALARM"]
    latest = deps.alarms.latest_values(in_alarm) if in_alarm else {}
    views, _unread = describe_or_record(ctx, deps.ecs, policies, "reconcile: scaling")  # unread: no view
    entries: list[AuditEntry] = []
    for policy in policies:
        scaling = policy.spec.scaling
        assert scaling is not None
        view = views.get((policy.metadata.cluster, policy.metadata.service))
        if view is None:
            continue
        acted = False
        for rule in scaling.rules:
            if rule.alarm is None:
                continue  # a targetTracking rule: evaluated by its own hook
            alarm = alarms.get(rule.alarm)
            if alarm is None or alarm.state != "ALARM":
                continue
            change = _still_in_alarm(alarm, latest.get(alarm.name), ctx)
            if change is None:
                continue
            entry = apply_rule(ctx, policy, rule, change, deps.ecs, f"alarm {alarm.name} still in ALARM",
                               event_key=None, view=view, audit_skips=False)
            if reported(entry):
                entries.append(entry)
            if entry.actions or entry.outcome.startswith("failed:"):
                acted = True
                view = None  # desired count changed (or unknown after a failure); a later rule re-reads it
        if not acted and view is not None and not scaling.minTasks <= view.desired_count <= scaling.maxTasks:
            entry = _repair_bounds(ctx, policy, view)
            if reported(entry):
                entries.append(entry)
    return entries


def _still_in_alarm(alarm: AlarmView, latest: float | None, ctx: Context) -> AlarmChange | None:
    try:
        datapoint, threshold = parse_reason_data(alarm.state_reason_data)
    except InvalidEvent:
        datapoint, threshold = None, None
    return AlarmChange(
        alarm_name=alarm.name, state="ALARM", previous_state="ALARM", timestamp=alarm.state_updated or "",
        event_id=ctx.event_id, datapoint=latest if latest is not None else datapoint,
        threshold=alarm.threshold if alarm.threshold is not None else threshold, form="reconciler",
    )


def _repair_bounds(ctx: Context, policy: ServicePolicy, view: ServiceView) -> AuditEntry:
    scaling = policy.spec.scaling
    assert scaling is not None

    def decide(snap: Snapshot) -> tuple[Decision, ServiceState]:
        decision, state = decide_bounds(scaling=scaling, state=snap.state.scaling, capacity=view.desired_count,
                                        cluster=view.cluster, service=view.service, now=ctx.now, trigger="reconcile")
        return decision, snap.state.model_copy(update={"scaling": state})

    return act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: desired count out of bounds",
               event_key=None, decide=decide, audit_skips=False)
