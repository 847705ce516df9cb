"""Which account and region an event is about, and whether this deployment may act there (issue 13).

Every event-driven use case opens with ``enter``: the event's place (EventBridge's ``account`` and
``region``, the alarm action's ``accountId`` and ``region``, a restart message's own), admitted or not
(``models.place.admitted``: the hub's own, a registered member, or a place a stored policy names), and
the dependencies acting there. A place nothing admits is refused as ``ignored:foreign-account``, audited,
with no other read and no AWS call.
"""

from __future__ import annotations

from typing import Any

from autopilot.models.audit import AuditEntry
from autopilot.models.place import Place, admitted, elsewhere, place_of
from autopilot.ports import Dependencies
from autopilot.usecases.runner import Context, record

FOREIGN = "ignored:foreign-account"


def key_place(deps: Dependencies, account: str | None, region: str | None) -> Place | None:
    """The place as keys carry it: None for the hub's own account and region (or when either is unknown)."""
    home = deps.home
    if home is None or (not account and not region):
        return None
    return elsewhere(place_of(account, region, home), home)


def enter(ctx: Context, deps: Dependencies, account: str | None, region: str | None,
          trigger: str) -> tuple[Place | None, Dependencies] | AuditEntry:
    """(place, the dependencies acting there) for an admitted event; else the audited refusal.

    The context's executor and place follow, so every action and audit entry of the event is the place's."""
    place = key_place(deps, account, region)
    if place is not None:
        assert deps.home is not None
        if not admitted(place, deps.home, ctx.store.registration().members(deps.home), ctx.store.names_place):
            what = f"account {place.account}, region {place.region}"
            return record(ctx, target="-", trigger=trigger, outcome=FOREIGN, place=place,
                          reason=f"{what} is neither this deployment's own ({deps.home}) nor a member's, and no "
                                 f"policy names it: the event is not acted on")
        deps = deps.at(place)
        ctx.executor = deps.executor
        ctx.place = str(place)
    return place, deps


def idempotency_scope(event: Any, home: Place | None) -> str:
    """What a handler adds to its idempotency records' partition for an event from a member place ("" at home),
    so two accounts' events never share a record (an alarm of the same name changing state at the same moment in
    two accounts is two events). Records of the hub's own events keep the partition they always had."""
    if not isinstance(event, dict) or home is None:
        return ""
    account = event.get("account") or event.get("accountId")
    region = event.get("region")
    if not isinstance(account, str) or not isinstance(region, str) or (not account and not region):
        return ""
    place = elsewhere(place_of(account or None, region or None, home), home)
    return "" if place is None else f"#{place.account}#{place.region}"
