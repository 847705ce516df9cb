"""A byte budget for every stored state item, enforced before writing.

DynamoDB refuses items over 400 KB: a state item that grew past it could never be saved again and would
wedge its service or family for good. Every list and map in the state is bounded in count, but counts
times the longest names AWS allows (a 255-character cluster name in every task ARN) can still pass the
limit, so the store measures the serialized document and, when it is over ``STATE_BUDGET_BYTES``, drops
the least valuable history first, oldest first, until it fits:

1. finished restart lineages (done, gave up);
2. crash windows and OOM records of revisions other than the newest one;
3. rollout history beyond the newest few deployments, and rollbacks that are no longer pending;
4. applied-event keys beyond the newest few (duplicates older than that are caught by idempotency);
5. attempt and seen-task records of lineages beyond the newest few each;
6. still-active restart lineages, least recently updated first (last resort: one may restart once more).

What is current (the newest revision's window, a pending rollback, an active Spot hold, the last known
good and bad revisions, pause) is never dropped. If even that does not fit, ``StateTooLarge`` is raised:
a clear, counted failure instead of an opaque ValidationException.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from autopilot.models.state import ServiceState

STATE_BUDGET_BYTES = 300_000  # the document; keys and bookkeeping attributes stay far below 50 KB more
KEEP_DEPLOYMENTS = 3
KEEP_APPLIED_EVENTS = 10
KEEP_ATTEMPTS = 3
KEEP_SEEN_TASKS = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StateTooLarge(ValueError):
    """The state does not fit its budget even with every droppable history dropped."""


def size_of(state: ServiceState) -> int:
    """Bytes of the stored document (the store writes exactly this JSON)."""
    return len(state.model_dump_json(exclude_defaults=False).encode())


def fit(state: ServiceState, budget: int = STATE_BUDGET_BYTES) -> tuple[ServiceState, list[str]]:
    """``state`` itself if it fits ``budget``; else a copy with history dropped, and what was dropped."""
    size = size_of(state)
    if size <= budget:
        return state, []
    notes: list[str] = []
    for prune in _PRUNERS:
        state, note = prune(state, size - budget)
        if note:
            notes.append(note)
            size = size_of(state)
            if size <= budget:
                return state, notes
    raise StateTooLarge(f"state is {size} bytes after dropping every droppable history "
                        f"(budget {budget}): {'; '.join(notes) or 'nothing could be dropped'}")


def _bytes(value: Any) -> int:
    dump = value.model_dump_json() if hasattr(value, "model_dump_json") else str(value)
    return len(dump.encode()) + 8  # key, quotes, separators


def _drop_until(candidates: list[tuple[str, Any]], overflow: int) -> set[str]:
    """Keys of the first candidates (already ordered least valuable first) worth ``overflow`` bytes."""
    dropped: set[str] = set()
    freed = 0
    for key, value in candidates:
        if freed >= overflow:
            break
        dropped.add(key)
        freed += _bytes(value) + len(key)
    return dropped


def _finished_lineages(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    lineages = state.restarts.lineages
    finished = sorted(((k, v) for k, v in lineages.items() if v.status in ("done", "gave-up")),
                      key=lambda kv: kv[1].updated_at)
    return _without_lineages(state, _drop_until(finished, overflow), "finished restart lineages")


def _active_lineages(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    lineages = sorted(state.restarts.lineages.items(), key=lambda kv: kv[1].updated_at)
    return _without_lineages(state, _drop_until(lineages[:-1], overflow), "least recently updated active lineages")


def _without_lineages(state: ServiceState, dropped: set[str], what: str) -> tuple[ServiceState, str | None]:
    if not dropped:
        return state, None
    kept = {k: v for k, v in state.restarts.lineages.items() if k not in dropped}
    restarts = state.restarts.model_copy(update={"lineages": kept})
    return state.model_copy(update={"restarts": restarts}), f"dropped {len(dropped)} {what}"


def _old_revisions(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    healing = state.healing
    crash = sorted(healing.crash.items(), key=lambda kv: _when(kv[1]))
    oom = sorted(healing.oom.items(), key=lambda kv: _when(kv[1]))
    candidates = [(f"crash:{k}", v) for k, v in crash[:-1]] + [(f"oom:{k}", v) for k, v in oom[:-1]]
    candidates.sort(key=lambda kv: _when(kv[1]))
    dropped = _drop_until(candidates, overflow)
    if not dropped:
        return state, None
    healing = healing.model_copy(update={
        "crash": {k: v for k, v in healing.crash.items() if f"crash:{k}" not in dropped},
        "oom": {k: v for k, v in healing.oom.items() if f"oom:{k}" not in dropped},
    })
    return state.model_copy(update={"healing": healing}), f"dropped {len(dropped)} old revisions' crash/OOM records"


def _when(record: Any) -> datetime:
    """When a record was last touched (records that never say sort first)."""
    return getattr(record, "updated_at", None) or getattr(record, "at", None) or _EPOCH


def _rollout_history(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    rollout = state.rollout
    current = rollout.current_deployment.id if rollout.current_deployment else None
    old_deployments = [(d.id, d) for d in rollout.deployments[KEEP_DEPLOYMENTS:] if d.id != current][::-1]
    old_rollbacks = [(f"{i}", r) for i, r in enumerate(rollout.rollbacks) if r.status != "pending"][::-1]
    dropped_d = _drop_until(old_deployments, overflow)
    dropped_r = _drop_until(old_rollbacks, overflow - sum(_bytes(d) for k, d in old_deployments if k in dropped_d))
    if not dropped_d and not dropped_r:
        return state, None
    rollout = rollout.model_copy(update={
        "deployments": [d for d in rollout.deployments if d.id not in dropped_d],
        "rollbacks": [r for i, r in enumerate(rollout.rollbacks) if f"{i}" not in dropped_r],
    })
    return (state.model_copy(update={"rollout": rollout}),
            f"dropped {len(dropped_d)} old deployments and {len(dropped_r)} finished rollbacks")


def _applied_events(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    events = state.applied_events
    droppable = [(e, e) for e in events[:-KEEP_APPLIED_EVENTS]]
    dropped = _drop_until(droppable, overflow)
    if not dropped:
        return state, None
    kept = [e for e in events if e not in dropped]
    return state.model_copy(update={"applied_events": kept}), f"dropped {len(dropped)} old applied-event keys"


def _lineage_details(state: ServiceState, overflow: int) -> tuple[ServiceState, str | None]:
    lineages = state.restarts.lineages
    if not any(len(v.attempts) > KEEP_ATTEMPTS or len(v.seen_tasks) > KEEP_SEEN_TASKS for v in lineages.values()):
        return state, None
    trimmed = {k: v.model_copy(update={"attempts": v.attempts[-KEEP_ATTEMPTS:],
                                       "seen_tasks": v.seen_tasks[-KEEP_SEEN_TASKS:]})
               for k, v in lineages.items()}
    restarts = state.restarts.model_copy(update={"lineages": trimmed})
    return (state.model_copy(update={"restarts": restarts}),
            f"kept the newest {KEEP_ATTEMPTS} attempts and {KEEP_SEEN_TASKS} seen tasks per lineage")


_PRUNERS: tuple[Callable[[ServiceState, int], tuple[ServiceState, str | None]], ...] = (
    _finished_lineages, _old_revisions, _rollout_history, _applied_events, _lineage_details, _active_lineages,
)
