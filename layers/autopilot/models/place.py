"""Where a service lives: an AWS account and region. The hub's own place and its members' (issue 13).

A deployment (the hub) acts on its own account and region exactly as before, and on member accounts and
regions through a role it assumes there. Everything stored about a service is keyed by its place, so two
services named ``prod/web`` in two accounts never share a policy, a state item, an audit partition or an
idempotency record. Keys of the hub's own place keep the form they had before places existed
(``SVC#cluster#service``): stored state of a single-account deployment stays valid after an upgrade, with no
migration. Keys of any other place carry it: ``SVC#<account>#<region>#cluster#service``.

``admitted`` is the one check of whether an event's place may be acted on at all. With no members and no
policy naming another place it is "the event comes from this deployment's own account and region".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

ACCOUNT_PATTERN = r"^\d{12}$"
# us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-7, il-central-1 ...
REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$"
_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_REGION = re.compile(REGION_PATTERN)


@dataclass(frozen=True, order=True)
class Place:
    """An AWS account and region."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"

    @property
    def valid(self) -> bool:
        return bool(_ACCOUNT.match(self.account) and _REGION.match(self.region))


def place_of(account: str | None, region: str | None, home: Place) -> Place:
    """A place as events and policies name it: what they leave out is the hub's own."""
    return Place(account or home.account, region or home.region)


def elsewhere(place: Place, home: Place) -> Place | None:
    """The place as keys carry it: None at home (the keys of a single-account deployment), else the place."""
    return None if place == home else place


def admitted(place: Place | None, home: Place | None, members: Iterable[Place] = (),
             named_by_policy: Callable[[Place], bool] | None = None) -> bool:
    """Whether events from ``place`` may be acted on: the hub's own place, a registered member's, or a place a
    stored policy names (asked last, and only then: it may cost a read).

    The single-account case (issue 11, finding 9) is ``admitted(place, home)``: the hub's own place only. An
    event that does not name its place (``place`` None: AWS's events always name both account and region) is
    not admitted where the hub knows its own; a hub that does not (``home`` None: settings built by hand, the
    local demo) admits every event."""
    if home is None:
        return True
    if place is None:
        return False
    if place == home or place in set(members):
        return True
    return named_by_policy is not None and named_by_policy(place)


def key_prefix(kind: str, place: Place | None) -> str:
    """``SVC#`` (home) or ``SVC#<account>#<region>#``: the start of every key of a place's services or families."""
    return f"{kind}#" if place is None else f"{kind}#{place.account}#{place.region}#"


def split_target(target: str) -> tuple[Place | None, str, str] | None:
    """(place or None at home, cluster, name) of a ``SVC#``/``TASK#`` key (or an audit target); None otherwise."""
    parts = target.split("#")
    if len(parts) == 3:
        return None, parts[1], parts[2]
    if len(parts) == 5:
        return Place(parts[1], parts[2]), parts[3], parts[4]
    return None


DEFAULT_MEMBER_ROLE = "ecs-autopilot-member"


@dataclass(frozen=True)
class Registration:
    """The members registered with the hub (its stack parameters MemberAccounts and MemberRegions) and how the
    hub reaches them: the role name its member stacks create (``<name>-<region>``, one per region: IAM roles
    are global and a member stack is deployed once per region) and the external id that role may ask for."""

    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    role_name: str = DEFAULT_MEMBER_ROLE
    external_id: str | None = None

    def members(self, home: Place) -> frozenset[Place]:
        """Every listed account in every listed region (the hub's own region if none is listed)."""
        regions = [r for r in self.regions if r] or [home.region]
        return frozenset(Place(a, r) for a in self.accounts if a for r in regions)

    def role_arn(self, place: Place) -> str:
        return f"arn:{partition_of(place.region)}:iam::{place.account}:role/{self.role_name}-{place.region}"


def partition_of(region: str) -> str:
    """The ARN partition of a region (aws, aws-cn, aws-us-gov)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
