"""Which account and region an event is about, and whether this deployment may act there (issues 11 and 13).

Every event-driven use case opens with ``runner.open_event``, which asks ``admission`` once: the event's place
(EventBridge's ``account`` and ``region``, the alarm action's ``accountId`` and ``region``, a restart message's
own), admitted or not (``models.place.admitted``: the hub's own, a registered member, or a place a stored policy
names; with no members and no policy naming another place, the hub's own account and region only). A place
nothing admits is refused as ``ignored:foreign-account``: audited, counted, with no other read and no AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from autopilot.models.place import Place, Registration, admitted, elsewhere, place_of

FOREIGN = "ignored:foreign-account"


class Registry(Protocol):
    """What admission reads (the state store): the registered members, and whether a policy names a place."""

    def registration(self) -> Registration: ...
    def names_place(self, place: Place) -> bool: ...


@dataclass(frozen=True)
class Refused:
    """Why an event may not act here, and the place it named (None: it did not name both account and region)."""

    place: Place | None
    reason: str


def admission(home: Place | None, store: Registry, account: str | None, region: str | None, *,
              what: str = "event", unnamed_is_home: bool = False) -> Place | Refused | None:
    """The place an event acts in as keys carry it (None: the hub's own), or why it is refused.

    A hub that does not know its own place (settings built by hand, the local demo without
    AUTOPILOT_HOME_ACCOUNT) admits every event as its own. Otherwise an event must name both its account and
    region (AWS's always do; ``unnamed_is_home``: our own messages that name neither are the hub's). The hub's
    own events never read the member registry; a member's never asks whether a policy names its place."""
    if home is None or (unnamed_is_home and not account and not region):
        return None
    origin = Place(account, region) if account and region else None
    if origin == home:
        return None
    members = store.registration().members(home) if origin is not None else ()
    if admitted(origin, home, members, store.names_place):
        return origin
    named = f"account {account or '?'} in {region or '?'}"
    return Refused(origin, f"{what} from {named}: this deployment acts on account {home.account} in {home.region}, "
                           f"on its registered members and on the places its policies name; the event is not acted on")


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
