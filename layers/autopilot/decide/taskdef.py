"""Derive a RegisterTaskDefinition request from a described task definition, as a pure function.

Rules (aws-facts section 4):
- every field DescribeTaskDefinition returns is copied, except the read-only ones RegisterTaskDefinition
  rejects; roles, volumes, secrets, placement constraints, runtime platform, proxy configuration,
  ephemeral storage... pass through untouched (a field AWS adds later is copied too);
- tags come from ``include=['TAGS']`` and are passed separately; ours record what the revision was
  derived from, why, and the derivation id that lets a retry find it instead of registering another.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

# Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not accept.
READ_ONLY_FIELDS = frozenset({
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt",
})

TAG_DERIVED_FROM = "autopilot:derived-from"
TAG_REASON = "autopilot:reason"
TAG_DERIVATION_ID = "autopilot:derivation-id"
OUR_TAG_KEYS = (TAG_DERIVED_FROM, TAG_REASON, TAG_DERIVATION_ID)
MAX_TAGS = 50  # per resource (ECS tagging limits)
MAX_TAG_VALUE = 256
_TAG_VALUE_BAD = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)


class DerivationError(ValueError):
    """The requested change does not fit the task definition (e.g. an unknown container)."""


@dataclass(frozen=True)
class Changes:
    """What a derived revision changes. Memory in MiB; CPU in units (1024 = 1 vCPU)."""

    container_memory: dict[str, int] = field(default_factory=dict)  # hard limit (``memory``)
    container_memory_reservation: dict[str, int] = field(default_factory=dict)  # soft limit, explicit
    task_memory: int | None = None
    task_cpu: int | None = None


def tag_value(text: str) -> str:
    """A tag value ECS accepts: letters, digits, spaces and ``_ . : / = + - @``, at most 256 characters."""
    return _TAG_VALUE_BAD.sub("_", text)[:MAX_TAG_VALUE]


def family_of(task_definition: dict[str, Any]) -> str:
    return str(task_definition["family"])


def derivation_tags(base_tags: list[dict[str, str]], *, derived_from: str, reason: str,
                    derivation_id: str) -> list[dict[str, str]]:
    """The base revision's user tags (not ``aws:`` ones, not our previous ones) plus ours, within 50."""
    ours = [
        {"key": TAG_DERIVED_FROM, "value": tag_value(derived_from)},
        {"key": TAG_REASON, "value": tag_value(reason)},
        {"key": TAG_DERIVATION_ID, "value": tag_value(derivation_id)},
    ]
    kept = [dict(t) for t in base_tags
            if not str(t.get("key", "")).lower().startswith("aws:") and t.get("key") not in OUR_TAG_KEYS]
    return kept[:MAX_TAGS - len(ours)] + ours


def register_request(described: dict[str, Any], base_tags: list[dict[str, str]], changes: Changes, *,
                     derived_from: str, reason: str, derivation_id: str) -> dict[str, Any]:
    """The RegisterTaskDefinition parameters for a changed copy of ``described``.

    ``described`` is DescribeTaskDefinition's ``taskDefinition``. The input is never modified.
    """
    request = {k: copy.deepcopy(v) for k, v in described.items() if k not in READ_ONLY_FIELDS}
    containers: list[dict[str, Any]] = request.get("containerDefinitions") or []
    names = {c.get("name") for c in containers}
    unknown = sorted((set(changes.container_memory) | set(changes.container_memory_reservation)) - names)
    if unknown:
        raise DerivationError(f"no container named {', '.join(map(repr, unknown))} in {derived_from}")
    for container in containers:
        name = container.get("name")
        if name in changes.container_memory:
            _set_memory(container, changes.container_memory[name], changes.container_memory_reservation.get(name))
        elif name in changes.container_memory_reservation:
            container["memoryReservation"] = _positive(changes.container_memory_reservation[name], "memoryReservation")
    if changes.task_memory is not None:
        request["memory"] = str(_positive(changes.task_memory, "task memory"))
    if changes.task_cpu is not None:
        request["cpu"] = str(_positive(changes.task_cpu, "task cpu"))
    request["tags"] = derivation_tags(base_tags, derived_from=derived_from, reason=reason,
                                      derivation_id=derivation_id)
    return request


def _set_memory(container: dict[str, Any], memory: int, reservation: int | None) -> None:
    """New hard limit; the soft limit follows as asked, or proportionally (never above the hard limit)."""
    memory = _positive(memory, "memory")
    old_memory = container.get("memory")
    old_reservation = container.get("memoryReservation")
    container["memory"] = memory
    if reservation is not None:
        new_reservation = _positive(reservation, "memoryReservation")
    elif old_reservation is not None and old_memory:
        new_reservation = math.ceil(int(old_reservation) * memory / int(old_memory))
    else:
        return
    container["memoryReservation"] = min(new_reservation, memory)


def _positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DerivationError(f"{what} must be a positive whole number, not {value!r}")
    return value


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value", "")) for t in tags}


def is_derivation(tags: list[dict[str, str]], derivation_id: str) -> bool:
    """True when ``tags`` mark a revision registered for ``derivation_id``."""
    return tag_map(tags).get(TAG_DERIVATION_ID) == tag_value(derivation_id)


def revision_number(task_definition_arn: str) -> int | None:
    """The revision of ``...:task-definition/family:7`` (None when the string names no revision)."""
    tail = task_definition_arn.rsplit("/", 1)[-1]
    _, sep, number = tail.rpartition(":")
    return int(number) if sep and number.isdigit() else None
