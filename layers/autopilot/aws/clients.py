"""boto3 clients with one retry configuration, created lazily from one shared session.

botocore's ``standard`` retry mode retries throttling, 5xx and timeouts with jittered back-off; when
it gives up, the error propagates, the invocation fails, and Lambda/EventBridge retry the event.
One session per process: each new session re-reads botocore's endpoint and service data (~0.25 s),
which would dominate a cold start that creates three clients.
"""

from __future__ import annotations

import threading
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

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """A cached client; boto3 honours AWS_ENDPOINT_URL, which points tests and the demo at moto."""
    global _session
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:  # sessions are not thread-safe; clients are
        if service not in _clients:
            if _session is None:
                _session = boto3.session.Session()
            _clients[service] = _session.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]
        return _clients[service]


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
