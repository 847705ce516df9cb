"""Powertools idempotency on the shared state table: a redelivered event returns the first result.

Records live in the state table under ``IDEMPOTENCY#<function>`` and expire after 24 h (EventBridge
retries for up to 24 h). If the wrapped call raises, Powertools deletes the in-progress record, so
Lambda's retry runs the event again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

EXPIRY_SECONDS = 24 * 3600


def run_once(fn: Callable[[dict[str, Any]], dict[str, Any]], event: Any, *, table: str, function: str,
             key_jmespath: str, context: Any = None, client: Any = None) -> dict[str, Any]:
    """Call ``fn(event)`` at most once per idempotency key (non-dict events go straight through)."""
    if not isinstance(event, dict):
        return fn(event)
    if client is None:
        from autopilot.aws.clients import client as shared_client

        client = shared_client("dynamodb")  # a new client per invocation would cost ~0.3 s each time
    persistence = DynamoDBPersistenceLayer(
        table_name=table, key_attr="PK", sort_key_attr="SK", static_pk_value=f"IDEMPOTENCY#{function}",
        expiry_attr="expiration", boto3_client=client,
    )
    config = IdempotencyConfig(event_key_jmespath=key_jmespath, expires_after_seconds=EXPIRY_SECONDS,
                               raise_on_no_idempotency_key=False)
    if context is not None:
        config.register_lambda_context(context)

    @idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)
    def once(event: dict[str, Any]) -> dict[str, Any]:
        return fn(event)

    return once(event=event)
