"""Plain-text rendering of policies, state, changes and audit entries (pure: no I/O, time passed in).

State sub-models (rollout, healing, restarts) grow as capabilities land, so they are rendered from
their dump, not field by field: a new field shows up in ``autopilot get`` without a CLI change.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from autopilot.models.policy import ServicePolicy, TaskPolicy

if TYPE_CHECKING:
    from autopilot.models.state import ServiceState

AnyPolicy = ServicePolicy | TaskPolicy
MAX_DIFF_LINES = 20
MAX_AUDIT_CHANGES = 200  # an audit record keeps this many changed fields (history --json shows them all)
MAX_HISTORY_CHANGES = 3  # one history line shows this many
MAX_LIST_ITEMS = 5
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# ------------------------------------------------------------------------------------ time
def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``1h``, ``2d``, ``1w`` before ``now``, or an ISO 8601 time (naive means UTC)."""
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 1h, 2d, 1w) "
                         "nor an ISO time (2026-11-26T12:00)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def clock(moment: datetime) -> str:
    """A UTC time to the second: ``2026-11-26T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: float) -> str:
    """``45s``, ``4m``, ``2h05m``, ``3d04h``: how long, in the two largest units."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"


# ------------------------------------------------------------------------------------ policies
def target_of(key: str) -> str:
    """``SVC#prod#web`` -> ``prod/web``; ``TASK#batch#etl`` -> ``batch/etl (task)``; a member place's keys
    ``SVC#<account>#<region>#prod#web`` -> ``prod/web @ <account>/<region>``; others unchanged."""
    parts = key.split("#")
    if len(parts) == 5 and parts[0] in ("SVC", "TASK"):
        return f"{target_of('#'.join([parts[0], parts[3], parts[4]]))} @ {parts[1]}/{parts[2]}"
    if len(parts) == 3 and parts[0] == "SVC":
        return f"{parts[1]}/{parts[2]}"
    if len(parts) == 3 and parts[0] == "TASK":
        return f"{parts[1]}/{parts[2]} (task)"
    return key


def name_of(policy: AnyPolicy) -> str:
    """``prod/web``, with `` @ account/region`` for a policy of a member place."""
    name = policy.metadata.service if isinstance(policy, ServicePolicy) else policy.metadata.family
    place = policy.metadata.place
    return f"{policy.metadata.cluster}/{name}" + (f" @ {place}" if place is not None else "")


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as ``{"spec.scaling.rules[0].alarm": "x", ...}`` (leaves only)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for key, item in value.items():
            out.update(flat(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            out.update(flat(item, f"{prefix}[{index}]"))
    else:
        out[prefix] = value
    return out


def policy_diff(old: AnyPolicy | None, new: AnyPolicy) -> list[str]:
    """What ``apply`` changes in a stored policy, one ``field: old -> new`` line each."""
    if old is None:
        return []
    return document_diff(old.model_dump(mode="json", exclude_none=True),
                         new.model_dump(mode="json", exclude_none=True), limit=MAX_DIFF_LINES)


def document_diff(old: dict[str, Any] | None, new: dict[str, Any] | None, limit: int | None = None) -> list[str]:
    """Field by field, what changes from one policy document to another (None: no document, so every field
    is added or removed): ``spec.scaling.maxTasks: 10 -> 20``, ``field: (added) x``, ``field: x -> (removed)``."""
    before = flat(old) if old is not None else {}
    after = flat(new) if new is not None else {}
    lines: list[str] = []
    for field in sorted(set(before) | set(after), key=_natural):
        if field not in after:
            lines.append(f"{field}: {_value(before[field])} -> (removed)")
        elif field not in before:
            lines.append(f"{field}: (added) {_value(after[field])}")
        elif before[field] != after[field]:
            lines.append(f"{field}: {_value(before[field])} -> {_value(after[field])}")
    if limit is not None and len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more changes"]
    return lines


def _natural(field: str) -> list[Any]:
    """Sort ``rules[10]`` after ``rules[2]``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", field)]


def _value(value: Any) -> str:
    if value == {} or value == []:
        return "(empty)"
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, default=str)


def policy_summary(policy: AnyPolicy) -> list[tuple[str, str]]:
    """The policy in a few labelled lines."""
    rows: list[tuple[str, str]] = [("mode", policy.spec.mode)]
    if isinstance(policy, TaskPolicy):
        r = policy.spec.restart
        rows.append(("restart", f"up to {r.maxRestarts} restarts, back-off {r.initialBackoffSeconds}s doubling to "
                                f"{r.maxBackoffSeconds}s, reset after {r.resetAfterSeconds}s"))
        if policy.spec.network:
            n = policy.spec.network
            rows.append(("network", f"subnets {', '.join(n.subnets)}; security groups "
                                    f"{', '.join(n.securityGroups) or '(none)'}; public IP {n.assignPublicIp}"))
        return rows
    scaling, healing, rollout = policy.spec.scaling, policy.spec.healing, policy.spec.rollout
    if scaling:
        rules = []
        for rule in scaling.rules:
            if rule.steps is not None:
                rules.append(f"{rule.alarm} ({len(rule.steps)} step{'s' if len(rule.steps) != 1 else ''})")
            elif rule.targetValue is not None:
                rules.append(f"{rule.alarm} (target {rule.targetValue:g})")
            else:
                rules.append(f"{rule.alarm} (exactly {rule.exactCapacity})")
        rows.append(("scaling", f"{scaling.minTasks}-{scaling.maxTasks} tasks; cooldown out "
                                f"{scaling.scaleOutCooldownSeconds}s, in {scaling.scaleInCooldownSeconds}s"))
        rows.append(("rules", ", ".join(rules) or "(none)"))
    if healing:
        parts = []
        if healing.crashLoop:
            c = healing.crashLoop
            parts.append(f"crashLoop {c.failures} in {c.windowSeconds}s -> {c.action}")
        if healing.oom:
            parts.append(f"oom +{healing.oom.growPercent}% up to {healing.oom.maxMemoryMiB} MiB")
        if healing.spotFallback:
            s = healing.spotFallback
            parts.append(f"spotFallback {s.interruptions} in {s.windowSeconds}s -> {s.onDemandProvider} "
                         f"for {s.holdSeconds}s")
        rows.append(("healing", "; ".join(parts) or "(nothing enabled)"))
    if rollout:
        parts = [f"bake {rollout.bakeSeconds}s"]
        if rollout.rollbackAlarms:
            parts.append(f"rollback alarms {', '.join(rollout.rollbackAlarms)}")
        if rollout.recycleAlarms:
            parts.append(f"recycle alarms {', '.join(rollout.recycleAlarms)}")
        off = [name for name, on in (("deployment failure", rollout.rollbackOnDeploymentFailure),
                                     ("image pull failure", rollout.rollbackOnImagePullFailure)) if not on]
        if off:
            parts.append(f"no rollback on {' or '.join(off)}")
        rows.append(("rollout", "; ".join(parts)))
    return rows


# ------------------------------------------------------------------------------------ state
def _until(moment: datetime | None, now: datetime) -> str:
    if moment is None or moment <= now:
        return "none"
    return f"until {clock(moment)} ({span((moment - now).total_seconds())} left)"


def _prune(value: Any) -> Any:
    """Drop what says nothing (None, empty, false, zero) at every depth, so only recorded facts show."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "", 0, False)}
    if isinstance(value, list):
        return [p for p in (_prune(v) for v in value) if p not in (None, [], {}, "")]
    return value


def _generic(model: BaseModel, skip: set[str]) -> list[tuple[str, str]]:
    """Recorded fields of a state sub-model, whatever fields it has today.

    A flat record is one line of JSON; a list or a map of records gets one line per entry.
    """
    rows: list[tuple[str, str]] = []
    for key, value in _prune(model.model_dump(mode="json", exclude=skip)).items():
        if isinstance(value, list) or (isinstance(value, dict) and any(isinstance(v, dict | list)
                                                                       for v in value.values())):
            items = ([json.dumps(item, default=str) for item in value] if isinstance(value, list)
                     else [f"{k}: {json.dumps(v, default=str)}" for k, v in value.items()])
            shown = items[:MAX_LIST_ITEMS]
            if len(items) > MAX_LIST_ITEMS:
                shown.append(f"... and {len(items) - MAX_LIST_ITEMS} more (--json shows all)")
            rows.append((key, "\n".join(shown)))
        else:
            rows.append((key, value if isinstance(value, str) else json.dumps(value, default=str)))
    return rows


def state_rows(state: ServiceState, version: int, now: datetime, service: bool) -> list[tuple[str, str]]:
    """The state of one service or family, in labelled lines; empty parts are left out."""
    rows: list[tuple[str, str]] = []
    paused = f"yes ({state.paused_reason})" if state.paused and state.paused_reason else "yes" if state.paused else "no"
    rows.append(("paused", paused))
    if version == 0:
        rows.append(("state", "none recorded yet"))
        return rows
    if service:
        s = state.scaling
        rows.append(("cooldowns", f"scale-out {_until(s.scale_out_until, now)}; "
                                  f"scale-in {_until(s.scale_in_until, now)}"))
        if s.last_action_at is not None:
            rows.append(("last scaling", f"{clock(s.last_action_at)} ({span((now - s.last_action_at).total_seconds())} "
                                         f"ago) to {s.last_desired} tasks"))
        rows.append(("last known good", state.rollout.lkg or "(none yet)"))
        rows.append(("bad revisions", ", ".join(state.rollout.bad_revisions) or "(none)"))
        rows += [(f"rollout.{k}", v) for k, v in _generic(state.rollout, {"lkg", "bad_revisions"})]
        rows += [(f"healing.{k}", v) for k, v in _generic(state.healing, set())]
    else:
        rows += [(f"restarts.{k}", v) for k, v in _generic(state.restarts, set())]
    return rows


def block(title: str, rows: list[tuple[str, str]]) -> str:
    """A titled block of ``label: value`` lines with aligned values."""
    width = max((len(label) for label, _ in rows), default=0) + 1
    lines = [title]
    for label, value in rows:
        first, *rest = str(value).split("\n")
        lines.append(f"  {label + ':':<{width}} {first}")
        lines += [f"  {'':<{width}} {more}" for more in rest]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ history
def history_line(entry: Any) -> str:
    """One audit entry on one line: time, target, outcome, reason (and, for a policy change, what changed),
    AWS calls."""
    calls = ", ".join(entry.calls) if entry.calls else "-"
    mode = "" if entry.mode == "enforce" else f" [{entry.mode}]"
    error = f" error: {entry.error}" if entry.error else ""
    reason = " ".join(str(entry.reason).split())
    changes = list(getattr(entry, "changes", None) or [])
    if changes and entry.outcome in ("policy:created", "policy:deleted"):  # every field: not worth a line
        reason += f" ({len(changes)} fields: --json shows them)"
    elif changes:
        shown = changes[:MAX_HISTORY_CHANGES]
        if len(changes) > MAX_HISTORY_CHANGES:
            shown.append(f"... {len(changes) - MAX_HISTORY_CHANGES} more (--json shows all)")
        reason += ": " + "; ".join(shown)
    return f"{clock(entry.at)}  {target_of(entry.target)}  {entry.outcome}{mode}  {reason}  calls: {calls}{error}"
