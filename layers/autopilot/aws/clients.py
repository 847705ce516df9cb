"""boto3 clients with one retry configuration, created lazily from one shared session.

botocore's ``standard`` retry mode retries throttling, 5xx and timeouts with jittered back-off; when
it gives up, the error propagates, the invocation fails, and Lambda/EventBridge retry the event.
One session per process: each new session re-reads botocore's endpoint and service data (~0.25 s),
which would dominate a cold start that creates three clients.

Member places (issue 13): clients acting in another account and region use a session of their own, whose
credentials come from STS AssumeRole on the member's role through botocore's own machinery
(``AssumeRoleCredentialFetcher`` behind ``DeferredRefreshableCredentials``): assumed on first use, kept until
15 minutes before they expire, then refreshed. Those clients have short timeouts and few retries: a member
whose role is denied, whose STS is throttled or whose region is down fails its own calls quickly and never
holds the others' (the reconciler also runs each place on its own thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
    RefreshableCredentials,
)

if TYPE_CHECKING:
    from autopilot.models.place import Place

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="ecs-autopilot",
)

# For a call that must not be repeated blindly: RegisterTaskDefinition has no idempotency token, so a retry
# after a lost answer would register a twin. The caller retries itself, looking first (aws/taskdefs.py).
SINGLE_ATTEMPT_CONFIG = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))

# A member's calls: fail fast (a region that does not answer must not hold the invocation for a minute).
MEMBER_CONFIG = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2,
                                          read_timeout=5))
MEMBER_SINGLE_ATTEMPT_CONFIG = MEMBER_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))
STS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5,
                    user_agent_extra="ecs-autopilot")
SESSION_NAME = "ecs-autopilot"

# (service, config=Config) -> a client with boto3's interface; for a member place's client also place=Place and
# access=MemberAccess (the factory then stands for the member role's session too).
ClientFactory = Callable[..., Any]

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}
_factory: ClientFactory | None = None


@dataclass(frozen=True)
class MemberAccess:
    """How the hub reaches a member place: the role it assumes there (and the external id the role asks for)."""

    role_arn: str
    external_id: str | None = None


_member_sessions: dict[tuple[Place, MemberAccess], boto3.session.Session] = {}
_member_clients: dict[tuple[str, Place, MemberAccess], Any] = {}


def _base() -> boto3.session.Session:
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def client(service: str, place: Place | None = None, access: MemberAccess | None = None, *,
           single_attempt: bool = False) -> Any:
    """A cached client; boto3 honours AWS_ENDPOINT_URL, which points tests and the demo at moto.

    With ``place`` and ``access``: a client acting in that member account and region as the member's role.
    ``single_attempt``: a client of the same service without botocore's retries (see SINGLE_ATTEMPT_CONFIG).
    """
    if place is not None and access is not None:
        return _member_client(service, place, access, single_attempt)
    key = f"{service}#single-attempt" if single_attempt else service
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:  # sessions are not thread-safe; clients are
        if key not in _clients:
            config = SINGLE_ATTEMPT_CONFIG if single_attempt else RETRY_CONFIG
            if _factory is not None:
                _clients[key] = _factory(service, config=config)
            else:
                _clients[key] = _base().client(service, config=config)  # type: ignore[call-overload]
        return _clients[key]


def use_factory(factory: ClientFactory | None) -> None:
    """Make every client with ``factory(service, config=...)`` from now on (None: boto3 again); a member place's
    clients with ``factory(service, config=..., place=..., access=...)``.

    The injection point of in-process AWS fakes with boto3's interface (the soak, ``bench/soak``): the
    adapters, the store and Powertools idempotency then run unchanged against them.
    """
    global _factory
    with _lock:
        _factory = factory
        _clients.clear()
        _member_clients.clear()


class _AssumedRole(CredentialProvider):  # type: ignore[misc]
    """A credential provider of one role: botocore refreshes what it returns before it expires."""

    METHOD = "assume-role"
    CANONICAL_NAME = "ecs-autopilot-member"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher) -> None:
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._fetcher.fetch_credentials, method=self.METHOD)


def member_session(place: Place, access: MemberAccess) -> boto3.session.Session:
    """The session acting in ``place`` as ``access.role_arn`` (one per place; built without calling AWS)."""
    key = (place, access)
    with _lock:
        found = _member_sessions.get(key)
        if found is not None:
            return found
        base = _base()
        extra: dict[str, Any] = {"RoleSessionName": SESSION_NAME}
        if access.external_id:
            extra["ExternalId"] = access.external_id
        base_core = base._session  # boto3's own botocore session: AssumeRole is called with its credentials
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=partial(base_core.create_client, config=STS_CONFIG, region_name=base.region_name),
            source_credentials=base.get_credentials(), role_arn=access.role_arn, extra_args=extra)
        core = botocore.session.Session()
        core.register_component("credential_provider", CredentialResolver(providers=[_AssumedRole(fetcher)]))
        core.set_config_variable("region", place.region)
        session = boto3.session.Session(botocore_session=core, region_name=place.region)
        _member_sessions[key] = session
        return session


def _member_client(service: str, place: Place, access: MemberAccess, single_attempt: bool = False) -> Any:
    key = (f"{service}#single-attempt" if single_attempt else service, place, access)
    found = _member_clients.get(key)
    if found is not None:
        return found
    config = MEMBER_SINGLE_ATTEMPT_CONFIG if single_attempt else MEMBER_CONFIG
    if _factory is not None:  # in-process fakes: no session, no AssumeRole
        with _lock:
            if key not in _member_clients:
                _member_clients[key] = _factory(service, config=config, place=place, access=access)
            return _member_clients[key]
    session = member_session(place, access)
    with _lock:
        if key not in _member_clients:
            _member_clients[key] = session.client(service, config=config)  # type: ignore[call-overload]
        return _member_clients[key]


def reset_clients() -> None:
    """Forget cached clients (tests and the demo change endpoints and mocks between runs)."""
    with _lock:
        _clients.clear()
        _member_clients.clear()
        _member_sessions.clear()


def refresh_after_restore() -> bool:
    """After a SnapStart restore: keep the session and clients if their credentials refresh themselves (the
    container provider SnapStart uses), else forget both, so credentials are resolved again on first use.
    Returns whether they were kept."""
    global _session
    with _lock:
        if _session is None:
            return True
        if isinstance(_session.get_credentials(), RefreshableCredentials):
            return True
        _session = None
        _clients.clear()
        return False


class AwsAdapter:
    """Base of the ports' AWS implementations: the boto3 client is injected, or the shared one of the service
    (of a member place's role, with ``place`` and ``access``).

    The shared client is looked up on each use (a dict lookup), not kept: ``reset_clients`` and a SnapStart
    restore may replace it."""

    service: ClassVar[str]

    def __init__(self, aws_client: Any | None = None, *, place: Place | None = None,
                 access: MemberAccess | None = None) -> None:
        self._client = aws_client
        self.place = place
        self.access = access

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else client(self.service, self.place, self.access)
