"""Powertools idempotency on the shared state table: a redelivered event returns the first result.

Records live in the state table under ``IDEMPOTENCY#<function>`` and expire after 24 h (EventBridge
retries for up to 24 h). If the wrapped call raises, Powertools deletes the in-progress record, so
Lambda's retry runs the event again.

The persistence layer, its configuration and the decorated call are built once per container (per
DynamoDB client: tests and the demo swap clients), not on every invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

EXPIRY_SECONDS = 24 * 3600

Handle = Callable[[dict[str, Any]], dict[str, Any]]


class _Once:
    """One function's idempotent call: ``persistence`` and ``config`` outlive the invocation."""

    def __init__(self, table: str, function: str, key_jmespath: str, client: Any) -> None:
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table, key_attr="PK", sort_key_attr="SK", static_pk_value=f"IDEMPOTENCY#{function}",
            expiry_attr="expiration", boto3_client=client,
        )
        self.config = IdempotencyConfig(event_key_jmespath=key_jmespath, expires_after_seconds=EXPIRY_SECONDS,
                                        raise_on_no_idempotency_key=False)

        # The name is part of every stored key (<function name>.once#<hash>): keep it across releases.
        @idempotent_function(data_keyword_argument="event", persistence_store=self.persistence, config=self.config)
        def once(event: dict[str, Any], handle: Handle) -> dict[str, Any]:
            return handle(event)

        self.call = once

    def __call__(self, handle: Handle, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.config.lambda_context = context  # this invocation's remaining time bounds the in-progress record
        return self.call(event=event, handle=handle)


@lru_cache(maxsize=256)
def _once(table: str, function: str, key_jmespath: str, client: Any) -> _Once:
    return _Once(table, function, key_jmespath, client)


def run_once(fn: Handle, event: Any, *, table: str, function: str, key_jmespath: str, context: Any = None,
             client: Any = None) -> dict[str, Any]:
    """Call ``fn(event)`` at most once per idempotency key (non-dict events go straight through)."""
    if not isinstance(event, dict):
        return fn(event)
    if client is None:
        from autopilot.aws.clients import client as shared_client

        client = shared_client("dynamodb")  # a new client per invocation would cost ~0.3 s each time
    return _once(table, function, key_jmespath, client)(fn, event, context)
