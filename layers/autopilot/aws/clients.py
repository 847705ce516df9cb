"""boto3 clients with one retry configuration, created lazily and cached per process.

botocore's ``standard`` retry mode retries throttling, 5xx and timeouts with jittered back-off; when
it gives up, the error propagates, the invocation fails, and Lambda/EventBridge retry the event.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="ecs-autopilot",
)


@cache
def client(service: str) -> Any:
    """A cached client; boto3 honours AWS_ENDPOINT_URL, which points tests and the demo at moto."""
    return boto3.session.Session().client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests and the demo change endpoints between runs)."""
    client.cache_clear()
