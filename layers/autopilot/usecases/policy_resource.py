"""PolicyResourceFunction's use cases: CloudFormation custom resources (issue 13).

``Custom::EcsAutopilotPolicy``: a team declares its service's policy in its own stack. Create and Update
check the properties exactly as ``autopilot validate`` checks a policy file (``models.policy_document``),
then apply; Delete deletes. A bad policy fails the resource with the same words. Every answer is
idempotent under CloudFormation's retries: the physical id is the policy's key, an apply of an unchanged
policy writes nothing, a delete of a policy already gone succeeds. A stack never takes a policy over from the
CLI or from another stack (``PolicyOwned``), and never deletes one it does not declare.

``Custom::EcsAutopilotMembers``: the hub stack's member registry (its MemberAccounts parameters), written to the
state table where the functions read it.

The response protocol (the PUT to CloudFormation's pre-signed URL, a FAILED answer before Lambda's timeout)
is crhelper's, in the handler; these functions return the physical id or raise ``ResourceFailed``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import datetime
from typing import Any

from autopilot.models.audit import AuditEntry
from autopilot.models.cfn_properties import typed
from autopilot.models.place import DEFAULT_MEMBER_ROLE, Place, Registration
from autopilot.models.policy import ServicePolicy, TaskPolicy, placed
from autopilot.models.policy_document import check_document, summary
from autopilot.ports import PolicyOwned, PolicyStorePort, owner_label

POLICY_TYPE = "Custom::EcsAutopilotPolicy"
MEMBERS_TYPE = "Custom::EcsAutopilotMembers"
PHYSICAL_PREFIX = "ecs-autopilot:"  # physical ids: ecs-autopilot:SVC#prod#web, ecs-autopilot:member-registry
REGISTRY_ID = f"{PHYSICAL_PREFIX}member-registry"
REASON_LIMIT = 240  # CloudFormation shows at most this much of a reason (crhelper cuts at 256)
RESERVED = ("ServiceToken", "ServiceTimeout")  # properties CloudFormation itself reads


class ResourceFailed(Exception):
    """The resource cannot be created, updated or deleted; the message is CloudFormation's status reason."""


def owner_of(event: dict[str, Any]) -> str:
    """Who declares a policy: the stack and the resource's logical id (stable across updates)."""
    return f"{event['StackId']}#{event['LogicalResourceId']}"


def checked_policy(properties: dict[str, Any], home: Place | None) -> ServicePolicy | TaskPolicy:
    """The policy the properties declare, or ResourceFailed with ``autopilot validate``'s reasons."""
    document = typed({k: v for k, v in properties.items() if k not in RESERVED})
    policy, errors = check_document(document)
    if policy is None:
        raise ResourceFailed(f"invalid policy: {summary(errors, REASON_LIMIT - 16)}")
    return placed(policy, home) if home is not None else policy


def apply_policy(event: dict[str, Any], store: PolicyStorePort, home: Place | None, now: datetime) -> str:
    """Create or Update: check, then store; returns the physical id (a new one when the target changed, so
    CloudFormation deletes the old target's policy once the update is complete)."""
    policy = checked_policy(event.get("ResourceProperties") or {}, home)
    owner = owner_of(event)
    request = str(event.get("RequestType", "Create"))

    def audit(replaced: dict[str, Any] | None) -> AuditEntry:
        what = "updated" if replaced is not None else "created"
        return _entry(now, policy.key, f"policy:{what}", event, f"{what} by {_stack(owner)} ({request})")

    try:
        store.put_policy(policy, now, audit=audit, owner=owner)
    except PolicyOwned as exc:
        raise ResourceFailed(_cut(str(exc))) from None
    except ValueError as exc:  # too many alarms for one transaction
        raise ResourceFailed(_cut(str(exc))) from None
    return PHYSICAL_PREFIX + policy.key


def delete_policy(event: dict[str, Any], store: PolicyStorePort, now: datetime) -> str:
    """Delete the policy this resource declared; a policy already gone, one declared by someone else now, or a
    physical id that never named a policy (a Create that failed) is left alone: the delete succeeds."""
    physical = str(event.get("PhysicalResourceId") or "")
    if not physical.startswith(PHYSICAL_PREFIX) or physical == REGISTRY_ID:
        return physical
    key = physical[len(PHYSICAL_PREFIX):]
    owner = owner_of(event)
    with contextlib.suppress(PolicyOwned):  # another stack or the CLI declares it now: not this resource's
        store.delete_policy(key, owner=owner, audit=lambda _old: _entry(
            now, key, "policy:deleted", event, f"deleted by {_stack(owner)} (Delete)"))
    return physical


def registration_of(properties: dict[str, Any]) -> Registration:
    """The member registry the hub stack's parameters describe, checked."""
    accounts = _csv(properties.get("Accounts"))
    regions = _csv(properties.get("Regions"))
    bad = [a for a in accounts if not Place(a, "us-east-1").valid] + \
          [r for r in regions if not Place("000000000000", r).valid]
    if bad:
        raise ResourceFailed(_cut(f"not an account id or region: {', '.join(bad)}"))
    return Registration(accounts=tuple(accounts), regions=tuple(regions),
                        role_name=str(properties.get("RoleName") or DEFAULT_MEMBER_ROLE),
                        external_id=str(properties.get("ExternalId") or "") or None)


def handle(event: dict[str, Any], store: PolicyStorePort, home: Place | None, now: datetime,
           own_stack: str | None = None) -> str:
    """One custom resource request; the physical id, or ResourceFailed. Any custom type declares a policy
    (teams may name theirs), but the member registry, which only the hub stack itself (``own_stack``) keeps."""
    kind = str(event.get("ResourceType") or "")
    request = str(event.get("RequestType") or "")
    if kind == MEMBERS_TYPE:
        if own_stack is None or event.get("StackId") != own_stack:
            if request == "Delete":
                return str(event.get("PhysicalResourceId") or "")
            raise ResourceFailed(f"{MEMBERS_TYPE} is the hub stack's own resource")
        if request == "Delete":
            if event.get("PhysicalResourceId") == REGISTRY_ID:
                store.delete_registration()
            return str(event.get("PhysicalResourceId") or REGISTRY_ID)
        store.put_registration(registration_of(event.get("ResourceProperties") or {}), now)
        return REGISTRY_ID
    if request == "Delete":
        return delete_policy(event, store, now)
    if request in ("Create", "Update"):
        return apply_policy(event, store, home, now)
    raise ResourceFailed(f"unknown request type {request[:40]!r}")


def _entry(now: datetime, key: str, outcome: str, event: dict[str, Any], why: str) -> AuditEntry:
    properties = {k: v for k, v in (event.get("ResourceProperties") or {}).items() if k not in RESERVED}
    mode = str(((properties.get("spec") or {}) if isinstance(properties.get("spec"), dict) else {}).get("mode")
               or "enforce")
    return AuditEntry(at=now, target=key, event_id=f"cfn-{str(event.get('RequestId') or uuid.uuid4().hex)[:36]}",
                      source="stack", trigger=f"{event.get('ResourceType')} {event.get('RequestType')}",
                      outcome=outcome, reason=why, mode=mode if mode in ("enforce", "dry-run", "off") else "enforce",
                      actor=owner_of(event), changes=[_cut(json.dumps(properties, default=str), 2000)])


def _stack(owner: str) -> str:
    return f"CloudFormation resource {owner_label(owner)}"


def _csv(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def _cut(text: str, limit: int = REASON_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
