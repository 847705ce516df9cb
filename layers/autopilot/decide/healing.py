"""Self-healing of services from stopped tasks, as pure functions: crash loops, image-pull failures,
OOM right-sizing and Spot fallback (contract section 2; aws-facts sections 1, 3, 4).

Every function here is deterministic in its inputs; the caller passes ``now`` and the AWS facts it
fetched. A decision that needs a fact it was not given (the service's current task definition, the
task definition's sizes) returns ``Need`` instead of guessing; the shell fetches exactly that and
calls again. So the common case (a failure counted below the threshold, a duplicate, the tenth OOM of
a revision already right-sized) costs no AWS call at all.

Rules worth knowing:
- Failures count per task-definition revision and per task (a task's repeated events count once),
  by the time the task stopped, in a window of ``windowSeconds`` ending now. Late events older than
  the window do not count.
- Only failures of the service's *current* task definition act: a crash loop of an older revision
  being replaced must never roll back the new one. "Current" is checked with DescribeServices when a
  window trips, not on every event; a trip of a revision that is not current empties its window.
- A revision already marked bad (rolled back, failed deployment) changes nothing more.
- Rollbacks go through the rollouts capability's ``decide_rollback`` (LKG, once per revision).
- OOM: one right-sizing per revision, recorded before anything is executed; at the cap, one
  notification per revision and no loop. While a right-sizing of the revision is under way (decided
  within the crash window), its failures do not also trip the crash loop: a concurrent invocation may
  still see the old revision running, and must not roll back what the right-sizing just rolled out.
- Spot: after ``interruptions`` within ``windowSeconds``, the strategy becomes ``onDemandProvider``
  alone, keeping ``base``; the saved strategy comes back after ``holdSeconds`` (reconciler), unless
  someone changed the strategy meanwhile. The desired count is never touched.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from autopilot.decide.classify import Classification, StopKind
from autopilot.decide.fargate import NoFargateSize, parse_cpu, parse_memory, round_down, round_up
from autopilot.decide.rollout import decide_rollback
from autopilot.models.actions import Action, Decision, DeriveRevision, Notify, SetCapacityStrategy
from autopilot.models.healing_state import (
    MAX_REVISIONS,
    CrashWindow,
    FailureMark,
    HealingState,
    OomRecord,
    SpotHold,
    SpotState,
)
from autopilot.models.policy import CrashLoop, Healing, Oom, ServicePolicy, SpotFallback
from autopilot.models.rollout_state import revision_id, same_revision
from autopilot.models.state import ServiceState
from autopilot.models.task_events import ServiceAction, TaskStop
from autopilot.ports import ServiceView

SPOT_PROVIDER = "FARGATE_SPOT"


class Need(StrEnum):
    """A fact the decision needs before it can decide (the shell fetches it and decides again)."""

    SERVICE = "service"  # DescribeServices: current task definition, capacity provider strategy
    TASK_DEFINITION = "task-definition"  # DescribeTaskDefinition of the stopped task's revision


@dataclass(frozen=True)
class Facts:
    """What the shell fetched for this decision. ``*_fetched`` distinguishes "not asked" from "not found"."""

    service: ServiceView | None = None
    service_fetched: bool = False
    task_definition: dict[str, Any] | None = None  # DescribeTaskDefinition's ``taskDefinition``
    task_definition_fetched: bool = False


Outcome = tuple[Decision, ServiceState] | Need


# --------------------------------------------------------------------------- windows

def count_mark(marks: list[FailureMark], mark: FailureMark, *, now: datetime, window_seconds: int,
               keep: int) -> tuple[list[FailureMark], bool]:
    """Add ``mark`` to a sliding window; returns (marks within the window, oldest first; whether it counted).

    A mark whose key is already in the window, or that is older than the window, does not count.
    At most ``keep`` marks are kept (reaching ``keep`` is what trips a window, so older ones are moot).
    """
    start = now - timedelta(seconds=window_seconds)
    live = [m for m in marks if m.at > start]
    counted = mark.at > start and all(m.key != mark.key for m in live)
    if counted:
        live.append(mark)
        live.sort(key=lambda m: (m.at, m.key))
    return live[-keep:], counted


def _prune_revisions[V](items: dict[str, V], keep: str, order: Any) -> dict[str, V]:
    """At most MAX_REVISIONS entries, dropping the oldest by ``order`` (the current key always stays)."""
    if len(items) <= MAX_REVISIONS:
        return items
    ranked = sorted((k for k in items if k != keep), key=lambda k: order(items[k]), reverse=True)
    kept = set(ranked[:MAX_REVISIONS - 1]) | {keep}
    return {k: v for k, v in items.items() if k in kept}


# --------------------------------------------------------------------------- service task stops

def decide_service_stop(*, task: TaskStop, cls: Classification, policy: ServicePolicy, state: ServiceState,
                        facts: Facts, now: datetime) -> Outcome:
    """What to do about one stopped task of a managed service."""
    cluster, service = policy.metadata.cluster, policy.metadata.service
    healing = policy.spec.healing or Healing()
    if cls.kind == StopKind.SPOT:
        key = f"task:{task.task_id}"  # not the ARN: it carries the cluster name (state stays small)
        return decide_spot_signal(key=key, at=task.failed_at, what=f"task {task.task_id} interrupted",
                                  spot=healing.spotFallback, cluster=cluster, service=service, state=state,
                                  facts=facts, now=now)
    if not cls.failure:
        return Decision(outcome=f"ignored:{cls.kind.value}", reason=f"task {task.task_id}: {cls.explanation}"), state
    rev = revision_id(task.task_definition_arn) or task.task_definition_arn
    if state.rollout.is_bad(task.task_definition_arn):
        return Decision(outcome="skipped:revision-bad",
                        reason=f"task {task.task_id} of {rev}: {cls.explanation}; {rev} is already marked bad"), state

    parts: list[Decision] = []
    healing_state = state.healing
    rollout_state = state.rollout
    right_sizing = False

    # 1. OOM right-sizing: once per revision, only for the service's current revision.
    if cls.kind == StopKind.OOM and healing.oom is not None and rev not in healing_state.oom:
        if not facts.service_fetched:
            return Need.SERVICE
        if facts.service is None:
            return _missing(cluster, service, task), state
        if not same_revision(facts.service.task_definition, task.task_definition_arn):
            parts.append(Decision(outcome="skipped:not-current-revision", reason=(
                f"OOM kill of task {task.task_id} of {rev}, but the service now runs "
                f"{revision_id(facts.service.task_definition)}: no right-sizing of an old revision")))
        else:
            if not facts.task_definition_fetched:
                return Need.TASK_DEFINITION
            decision, record = decide_oom(task=task, cls=cls, oom=healing.oom, task_definition=facts.task_definition,
                                          cluster=cluster, service=service, now=now)
            oom_map = _prune_revisions({**healing_state.oom, rev: record}, rev, lambda r: r.at)
            healing_state = healing_state.model_copy(update={"oom": oom_map})
            parts.append(decision)
            right_sizing = record.outcome == "derived"

    # 2. An image that cannot be pulled will never start: roll back at once (unless it is LKG).
    rollout_policy = policy.spec.rollout
    if (cls.kind == StopKind.IMAGE_PULL and rollout_policy is not None and rollout_policy.rollbackOnImagePullFailure
            and not same_revision(rollout_state.lkg, task.task_definition_arn)):
        if not facts.service_fetched:
            return Need.SERVICE
        if facts.service is None:
            return _missing(cluster, service, task), state
        if not same_revision(facts.service.task_definition, task.task_definition_arn):
            parts.append(Decision(outcome="skipped:not-current-revision", reason=(
                f"image pull failed for task {task.task_id} of {rev}, but the service now runs "
                f"{revision_id(facts.service.task_definition)}")))
        else:
            decision, rollout_state = decide_rollback(
                cluster=cluster, service=service, running_task_definition=facts.service.task_definition,
                failing_revision=task.task_definition_arn, rollout=rollout_state,
                reason=f"image pull failed for {rev} ({cls.explanation}); it will never start", now=now)
            new_state = state.model_copy(update={"healing": healing_state, "rollout": rollout_state})
            return _merge([*parts, decision]), new_state

    # 3. Crash loop: failures of this revision within the window.
    if healing.crashLoop is not None:
        # A right-sizing of this revision decided within the window (by this event, or by a concurrent one
        # whose UpdateService may not have reached ECS yet, so DescribeServices still shows this revision)
        # is replacing its tasks: their failures must not also roll the service back to LKG.
        sized = healing_state.oom.get(rev)
        replacing = right_sizing or (sized is not None and sized.outcome == "derived"
                                     and now - sized.at < timedelta(seconds=healing.crashLoop.windowSeconds))
        decision, healing_state, rollout_state, need = _crash_loop(
            task=task, cls=cls, crash=healing.crashLoop, healing_state=healing_state, rollout_state=rollout_state,
            facts=facts, cluster=cluster, service=service, now=now, suppress=replacing)
        if need is not None:
            return need
        parts.append(decision)
    elif not parts:
        parts.append(Decision(outcome=f"ignored:{cls.kind.value}",
                              reason=f"task {task.task_id} of {rev}: {cls.explanation}; the policy has no "
                                     f"{'oom' if cls.kind == StopKind.OOM else 'crashLoop'} healing"))
    return _merge(parts), state.model_copy(update={"healing": healing_state, "rollout": rollout_state})


def _crash_loop(*, task: TaskStop, cls: Classification, crash: CrashLoop, healing_state: HealingState,
                rollout_state: Any, facts: Facts, cluster: str, service: str, now: datetime,
                suppress: bool) -> tuple[Decision, HealingState, Any, Need | None]:
    rev = revision_id(task.task_definition_arn) or task.task_definition_arn
    window = healing_state.crash.get(rev) or CrashWindow()
    mark = FailureMark(key=task.task_id, at=task.failed_at, kind=cls.kind.value)  # IDs are unique in a cluster
    marks, counted = count_mark(window.failures, mark, now=now, window_seconds=crash.windowSeconds,
                                keep=crash.failures)
    window = window.model_copy(update={"failures": marks, "updated_at": now})
    tally = f"{len(marks)} of {crash.failures} failures of {rev} within {crash.windowSeconds}s"
    what = f"task {task.task_id}: {cls.explanation}"

    def keep(w: CrashWindow) -> HealingState:
        # Windows of other revisions that saw nothing (and tripped nothing) for a whole window are moot.
        horizon = now - timedelta(seconds=crash.windowSeconds)
        live = {r: c for r, c in healing_state.crash.items()
                if (c.updated_at is not None and c.updated_at > horizon)
                or (c.tripped_at is not None and c.tripped_at > horizon)}
        crash_map = _prune_revisions({**live, rev: w}, rev, lambda c: c.updated_at or now)
        return healing_state.model_copy(update={"crash": crash_map})

    if not counted:
        why = "already counted" if mark.at > now - timedelta(seconds=crash.windowSeconds) else "older than the window"
        return (Decision(outcome="skipped:not-counted", reason=f"{what}; {why} ({tally})"),
                keep(window), rollout_state, None)
    armed = window.tripped_at is None or now - window.tripped_at >= timedelta(seconds=crash.windowSeconds)
    if len(marks) < crash.failures or not armed:
        note = "" if armed else f"; the crash loop was already handled at {window.tripped_at.isoformat()}"  # type: ignore[union-attr]
        return Decision(outcome="counted", reason=f"{what}; {tally}{note}"), keep(window), rollout_state, None
    if suppress:
        return (Decision(outcome="counted", reason=f"{what}; {tally}, but a right-sizing of {rev} was just decided"),
                keep(window), rollout_state, None)
    if not facts.service_fetched:
        return Decision(outcome="pending", reason=""), healing_state, rollout_state, Need.SERVICE
    if facts.service is None:
        return _missing(cluster, service, task), healing_state, rollout_state, None
    if not same_revision(facts.service.task_definition, task.task_definition_arn):
        emptied = window.model_copy(update={"failures": [], "verdict": "not-current"})
        return (Decision(outcome="skipped:not-current-revision", reason=(
            f"{what}; {tally}, but the service now runs {revision_id(facts.service.task_definition)}: "
            "an old revision's failures never roll back the new one")), keep(emptied), rollout_state, None)
    tripped = window.model_copy(update={"tripped_at": now, "verdict": crash.action})
    reason = f"crash loop: {tally} (last: {what})"
    if crash.action == "notify":
        announce = Notify(subject=f"Crash loop in {cluster}/{service}", reason=reason,
                          detail={"cluster": cluster, "service": service, "taskDefinition": task.task_definition_arn,
                                  "tasks": [m.key for m in marks]})
        return (Decision(outcome="crash-loop:notify", reason=reason, actions=(announce,)), keep(tripped),
                rollout_state, None)
    decision, rollout_state = decide_rollback(
        cluster=cluster, service=service, running_task_definition=facts.service.task_definition,
        failing_revision=task.task_definition_arn, rollout=rollout_state, reason=reason, now=now)
    return decision, keep(tripped), rollout_state, None


def _missing(cluster: str, service: str, task: TaskStop) -> Decision:
    return Decision(outcome="skipped:service-missing",
                    reason=f"task {task.task_id}: service {cluster}/{service} was not found (or is INACTIVE)")


def _merge(parts: list[Decision]) -> Decision:
    """One decision from several: the outcome of the most consequential part, every action, every reason."""
    if len(parts) == 1:
        return parts[0]
    actions: tuple[Action, ...] = tuple(a for p in parts for a in p.actions)
    lead = (next((p for p in parts if p.mutating), None) or next((p for p in parts if p.actions), None)
            or parts[-1])
    return Decision(outcome=lead.outcome, reason="; ".join(p.reason for p in parts if p.reason), actions=actions)


# --------------------------------------------------------------------------- OOM right-sizing

def grow(value: int, percent: int) -> int:
    """``value`` grown by ``percent`` percent, rounded up, and at least one MiB more."""
    return max(value + 1, math.ceil(value * (100 + percent) / 100))


def derivation_id(kind: str, task_definition: str) -> str:
    """Deterministic: one id per (kind, revision), so a retry finds the revision an earlier try registered."""
    digest = hashlib.sha256(f"{kind}|{revision_id(task_definition)}".encode()).hexdigest()[:20]
    return f"{kind}-{digest}"


def _is_fargate(task: TaskStop, task_definition: dict[str, Any]) -> bool:
    compat = [str(c).upper() for c in task_definition.get("requiresCompatibilities") or []]
    provider = (task.capacity_provider or "").upper()
    return "FARGATE" in compat or (task.launch_type or "").upper() == "FARGATE" or provider.startswith("FARGATE")


def decide_oom(*, task: TaskStop, cls: Classification, oom: Oom, task_definition: dict[str, Any] | None,
               cluster: str, service: str, now: datetime) -> tuple[Decision, OomRecord]:
    """The one right-sizing of a revision whose task was OOM-killed (or the reason there is none).

    The OOM-killed containers' hard and soft limits and the task memory grow by ``growPercent``; task
    memory also covers the containers' new limits. Fargate: rounded up to a valid size, CPU raised
    where the size table requires it. EC2: CPU kept, task memory only if the revision has one. Every
    size is capped at ``maxMemoryMiB``; when nothing can grow any more, a notification, once.
    """
    rev = revision_id(task.task_definition_arn) or task.task_definition_arn
    did = derivation_id("oom", task.task_definition_arn)
    if task_definition is None:
        return (Decision(outcome="skipped:task-definition-missing",
                         reason=f"OOM kill of task {task.task_id}: {rev} could not be described"),
                OomRecord(outcome="not-applicable", at=now, note="task definition not found"))
    percent, cap = oom.growPercent, oom.maxMemoryMiB
    containers = {str(c.get("name")): c for c in task_definition.get("containerDefinitions") or []}
    victims = [n for n in cls.oom_containers if n in containers]
    task_memory = parse_memory(task_definition.get("memory"))
    task_cpu = parse_cpu(task_definition.get("cpu"))
    fargate = _is_fargate(task, task_definition)

    old_hard = {n: _int(c.get("memory")) for n, c in containers.items()}
    old_soft = {n: _int(c.get("memoryReservation")) for n, c in containers.items()}
    new_hard: dict[str, int] = {}
    new_soft: dict[str, int] = {}
    for name in victims:
        hard, soft = old_hard[name], old_soft[name]
        if hard is not None and hard < cap:
            new_hard[name] = min(grow(hard, percent), cap)
        if soft is not None and soft < cap:
            new_soft[name] = min(grow(soft, percent), cap, new_hard.get(name, hard or cap))

    def reserved() -> int:
        """What the containers reserve together (soft limit, else hard limit): it must fit the task."""
        total = 0
        for n in containers:
            soft = new_soft.get(n, old_soft[n])
            total += soft if soft is not None else (new_hard.get(n, old_hard[n]) or 0)
        return total

    new_task_memory: int | None = None
    new_task_cpu: int | None = None
    if task_memory is not None:
        wanted = min(max(grow(task_memory, percent), reserved()), cap)
        if fargate:
            cpu = task_cpu or 256
            try:
                size: tuple[int, int] | None = round_up(cpu, wanted)
            except NoFargateSize:
                size = None
            if size is None or size[1] > cap:
                size = round_down(cpu, cap)
            if size is not None and size[1] > task_memory:
                new_task_memory = size[1]
                new_task_cpu = size[0] if size[0] != task_cpu else None
        elif wanted > task_memory:
            new_task_memory = wanted
        budget = new_task_memory or task_memory
        for name in new_hard:  # a hard limit never exceeds the task's memory
            new_hard[name] = min(new_hard[name], budget)
        for name in new_soft:
            new_soft[name] = min(new_soft[name], new_hard.get(name) or old_hard[name] or budget)
        excess = reserved() - budget  # at the cap the growth may not fit: give some back, last victim first
        for name in reversed(victims):
            if excess <= 0:
                break
            if name in new_soft:
                give = min(excess, new_soft[name] - (old_soft[name] or 0))
                new_soft[name] -= give
            elif name in new_hard and old_soft[name] is None:
                give = min(excess, new_hard[name] - (old_hard[name] or 0))
                new_hard[name] -= give
            else:
                continue
            excess -= give
    new_hard = {n: v for n, v in new_hard.items() if v > (old_hard[n] or 0)}
    new_soft = {n: v for n, v in new_soft.items() if v > (old_soft[n] or 0)}

    who = ", ".join(victims) or "the task"
    if not new_hard and not new_soft and new_task_memory is None:
        if not victims and task_memory is None:
            why = (f"OOM kill of task {task.task_id} of {rev}, but neither the killed container nor the task has a "
                   "memory size to grow")
            outcome = "not-applicable"
        else:
            why = (f"OOM kill of {who} in task {task.task_id} of {rev}, but its memory is already at the cap of "
                   f"{cap} MiB (maxMemoryMiB)")
            outcome = "at-cap"
        note = Notify(subject=f"OOM right-sizing of {cluster}/{service} cannot grow {rev}", reason=why,
                      detail={"cluster": cluster, "service": service, "taskDefinition": task.task_definition_arn,
                              "maxMemoryMiB": cap, "containers": victims})
        return (Decision(outcome=f"oom:{outcome}", reason=why, actions=(note,)),
                OomRecord(outcome=outcome, at=now, containers=victims, task_memory_from=task_memory, note=why))

    changes = [f"{n} memory {old_hard[n]} -> {v} MiB" for n, v in new_hard.items()]
    changes += [f"{n} memoryReservation {old_soft[n]} -> {v} MiB" for n, v in new_soft.items()]
    if new_task_memory is not None:
        changes.append(f"task memory {task_memory} -> {new_task_memory} MiB")
    if new_task_cpu is not None:
        changes.append(f"task CPU {task_cpu} -> {new_task_cpu} (Fargate size table)")
    capped = " (capped at maxMemoryMiB)" if any(v == cap for v in [*new_hard.values(), new_task_memory or 0]) else ""
    reason = (f"OOM kill of {who} in task {task.task_id} of {rev}: grow by {percent}%{capped}: " + "; ".join(changes))
    action = DeriveRevision(cluster=cluster, service=service, base_task_definition=task.task_definition_arn,
                            container_memory=new_hard, container_memory_reservation=new_soft,
                            task_memory=new_task_memory, task_cpu=new_task_cpu, derivation_id=did, reason=reason)
    record = OomRecord(outcome="derived", at=now, derivation_id=did, containers=victims,
                       task_memory_from=task_memory, task_memory_to=new_task_memory)
    return Decision(outcome="oom-right-size", reason=reason, actions=(action,)), record


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- Spot fallback

def is_spot_placement_failure(action: ServiceAction) -> bool:
    return action.event_name == "SERVICE_TASK_PLACEMENT_FAILURE" and SPOT_PROVIDER in action.capacity_providers


def decide_service_action(*, action: ServiceAction, policy: ServicePolicy, state: ServiceState, facts: Facts,
                          now: datetime) -> Outcome:
    """An "ECS Service Action" event: Spot placement failures count toward the Spot fallback."""
    cluster, service = policy.metadata.cluster, policy.metadata.service
    if action.event_name != "SERVICE_TASK_PLACEMENT_FAILURE":
        return Decision(outcome="ignored:service-action", reason=f"{action.event_name} is not acted on"), state
    if not is_spot_placement_failure(action):
        providers = ", ".join(action.capacity_providers) or "no capacity provider"
        return Decision(outcome="ignored:not-spot", reason=(
            f"placement failure ({action.reason or 'no reason'}) on {providers}: not a Spot shortage")), state
    healing = policy.spec.healing or Healing()
    return decide_spot_signal(key=action.event_key, at=action.time,
                              what=f"Spot placement failure ({action.reason or 'no reason'})",
                              spot=healing.spotFallback, cluster=cluster, service=service, state=state,
                              facts=facts, now=now)


def strategy_key(strategy: list[dict[str, Any]]) -> tuple[tuple[str, int, int], ...]:
    """A capacity provider strategy in comparable form (DescribeServices adds ``base: 0``)."""
    return tuple(sorted((str(s.get("capacityProvider")), int(s.get("weight") or 0), int(s.get("base") or 0))
                        for s in strategy))


def on_demand_strategy(current: list[dict[str, Any]], provider: str) -> list[dict[str, Any]]:
    """``provider`` alone, keeping the strategy's ``base`` (at most one provider has one)."""
    base = sum(int(s.get("base") or 0) for s in current)
    entry: dict[str, Any] = {"capacityProvider": provider, "weight": 1}
    if base:
        entry["base"] = base
    return [entry]


def decide_spot_signal(*, key: str, at: datetime, what: str, spot: SpotFallback | None, cluster: str, service: str,
                       state: ServiceState, facts: Facts, now: datetime) -> Outcome:
    """Count a Spot interruption / placement failure; at the threshold fall back to on-demand."""
    if spot is None:
        return Decision(outcome="ignored:spot", reason=f"{what}; the policy has no spotFallback"), state
    spot_state = state.healing.spot
    if spot_state.hold is not None and now < spot_state.hold.until:
        return Decision(outcome="skipped:spot-hold", reason=(
            f"{what}; already on {spot.onDemandProvider} until {spot_state.hold.until.isoformat()}")), state
    marks, counted = count_mark(spot_state.marks, FailureMark(key=key, at=at, kind="spot"), now=now,
                                window_seconds=spot.windowSeconds, keep=spot.interruptions)
    tally = f"{len(marks)} of {spot.interruptions} Spot interruptions within {spot.windowSeconds}s"

    def with_spot(new: SpotState) -> ServiceState:
        return state.model_copy(update={"healing": state.healing.model_copy(update={"spot": new})})

    counted_state = with_spot(spot_state.model_copy(update={"marks": marks}))
    if not counted:
        return Decision(outcome="skipped:not-counted", reason=f"{what}; already counted or too old ({tally})"), \
            counted_state
    if len(marks) < spot.interruptions:
        return Decision(outcome="counted", reason=f"{what}; {tally}"), counted_state
    if not facts.service_fetched:
        return Need.SERVICE
    view = facts.service
    if view is None:
        return Decision(outcome="skipped:service-missing",
                        reason=f"{what}; service {cluster}/{service} was not found (or is INACTIVE)"), counted_state
    current = [dict(s) for s in view.capacity_provider_strategy]
    if not current:
        return Decision(outcome="skipped:no-capacity-strategy", reason=(
            f"{what}; {tally}, but the service uses a launch type, not a capacity provider strategy")), counted_state
    fallback = on_demand_strategy(current, spot.onDemandProvider)
    if strategy_key(current) == strategy_key(fallback):
        return Decision(outcome="skipped:already-on-demand",
                        reason=f"{what}; {tally}, but the service already runs on {spot.onDemandProvider} only"), \
            counted_state
    until = now + timedelta(seconds=spot.holdSeconds)
    reason = (f"Spot fallback: {tally} (last: {what}); {spot.onDemandProvider} until {until.isoformat()}, "
              "desired count unchanged")
    hold = SpotHold(saved_strategy=current, applied_strategy=fallback, since=now, until=until)
    action = SetCapacityStrategy(cluster=cluster, service=service, strategy=fallback, previous=current, reason=reason)
    new_state = with_spot(spot_state.model_copy(update={"marks": [], "hold": hold, "last_fallback_at": now}))
    return Decision(outcome="spot-fallback", reason=reason, actions=(action,)), new_state


def spot_hold_expired(state: ServiceState, now: datetime) -> bool:
    hold = state.healing.spot.hold
    return hold is not None and now >= hold.until


def decide_spot_restore(*, cluster: str, service: str, state: ServiceState, facts: Facts, now: datetime) -> Outcome:
    """End an expired Spot fallback hold: restore the saved strategy unless someone changed it meanwhile."""
    spot_state = state.healing.spot
    hold = spot_state.hold
    if hold is None or now < hold.until:
        return Decision(outcome="skipped:no-hold", reason="no Spot fallback hold has expired"), state
    if not facts.service_fetched:
        return Need.SERVICE
    cleared = state.model_copy(update={"healing": state.healing.model_copy(update={
        "spot": spot_state.model_copy(update={"hold": None, "last_restore_at": now})})})
    view = facts.service
    if view is None:
        return Decision(outcome="skipped:service-missing",
                        reason=f"Spot fallback hold ended, but {cluster}/{service} was not found"), cleared
    current = [dict(s) for s in view.capacity_provider_strategy]
    if strategy_key(current) != strategy_key(hold.applied_strategy):
        why = ("Spot fallback hold ended, but the capacity provider strategy was changed since the fallback; "
               "left as it is")
        note = Notify(subject=f"Spot fallback of {cluster}/{service} not restored", reason=why,
                      detail={"cluster": cluster, "service": service, "current": current,
                              "saved": hold.saved_strategy})
        return Decision(outcome="spot-restore:skipped-changed", reason=why, actions=(note,)), cleared
    names = "+".join(str(s.get("capacityProvider")) for s in hold.saved_strategy)
    reason = (f"Spot fallback hold since {hold.since.isoformat()} ended: strategy restored to {names}, "
              "desired count unchanged")
    action = SetCapacityStrategy(cluster=cluster, service=service, strategy=hold.saved_strategy, previous=current,
                                 reason=reason)
    return Decision(outcome="spot-restore", reason=reason, actions=(action,)), cleared
