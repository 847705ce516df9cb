"""boto3 clients with one retry configuration, created lazily from one shared session.

botocore's ``standard`` retry mode retries throttling, 5xx and timeouts with jittered back-off; when
it gives up, the error propagates, the invocation fails, and Lambda/EventBridge retry the event.
One session per process: each new session re-reads botocore's endpoint and service data (~0.25 s),
which would dominate a cold start that creates three clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="ecs-autopilot",
)

# For a call that must not be repeated blindly: RegisterTaskDefinition has no idempotency token, so a retry
# after a lost answer would register a twin. The caller retries itself, looking first (aws/taskdefs.py).
SINGLE_ATTEMPT_CONFIG = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))

ClientFactory = Callable[..., Any]  # (service, config=Config) -> a client with boto3's interface

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}
_factory: ClientFactory | None = None


def client(service: str, *, single_attempt: bool = False) -> Any:
    """A cached client; boto3 honours AWS_ENDPOINT_URL, which points tests and the demo at moto.

    ``single_attempt``: a client of the same service without botocore's retries (see SINGLE_ATTEMPT_CONFIG).
    """
    global _session
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
                if _session is None:
                    _session = boto3.session.Session()
                _clients[key] = _session.client(service, config=config)  # type: ignore[call-overload]
        return _clients[key]


def use_factory(factory: ClientFactory | None) -> None:
    """Make every client with ``factory(service, config=...)`` from now on (None: boto3 again).

    The injection point of in-process AWS fakes with boto3's interface (the soak, ``bench/soak``): the
    adapters, the store and Powertools idempotency then run unchanged against them.
    """
    global _factory
    with _lock:
        _factory = factory
        _clients.clear()


def reset_clients() -> None:
    """Forget cached clients (tests and the demo change endpoints and mocks between runs)."""
    with _lock:
        _clients.clear()


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
    """Base of the ports' AWS implementations: the boto3 client is injected, or the shared one of the service.

    The shared client is looked up on each use (a dict lookup), not kept: ``reset_clients`` and a SnapStart
    restore may replace it."""

    service: ClassVar[str]

    def __init__(self, aws_client: Any | None = None) -> None:
        self._client = aws_client

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else client(self.service)
