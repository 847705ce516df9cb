"""The store fits every state item to its byte budget before writing: a family or service at the policy
maximums with the longest names stays writable (DynamoDB refuses items over 400 KB)."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.models.state_budget import STATE_BUDGET_BYTES
from autopilot.store.table import StateTable
from tests.unit.test_state_budget import CLUSTER, FAMILY, worst_family_state, worst_service_state


@pytest.mark.parametrize("build", [worst_family_state, worst_service_state], ids=["family", "service"])
def test_the_worst_state_is_saved_under_350_kb_and_saved_again(stack: Any, build: Any) -> None:
    from autopilot.aws.clients import client

    table = StateTable(stack.ref("StateTable"))
    key = f"TASK#{CLUSTER}#{FAMILY}"
    version = table.save_state(key, build(), 0)
    item = client("dynamodb").get_item(TableName=table.name, Key={"PK": {"S": key}, "SK": {"S": "STATE"}})["Item"]
    stored = sum(len(k.encode()) + len(next(iter(v.values())).encode()) for k, v in item.items())
    assert stored < 350 * 1024 and len(item["doc"]["S"].encode()) <= STATE_BUDGET_BYTES
    snap = table.load_state(key)
    assert snap.version == version
    table.save_state(key, snap.state, snap.version)  # and it stays writable


def test_moto_refuses_an_item_over_400_kb(stack: Any) -> None:
    """Without the budget the write really fails: the test above would catch a regression."""
    from botocore.exceptions import ClientError

    from autopilot.aws.clients import client

    with pytest.raises(ClientError, match="size"):
        client("dynamodb").put_item(TableName=stack.ref("StateTable"),
                                    Item={"PK": {"S": "x"}, "SK": {"S": "STATE"}, "doc": {"S": "d" * 410_000}})


def test_an_oversized_audit_entry_is_summarised_not_refused(stack: Any) -> None:
    from datetime import UTC, datetime

    from autopilot.store.table import AUDIT_BUDGET_BYTES, AuditEntry

    table = StateTable(stack.ref("StateTable"))
    big = AuditEntry(at=datetime(2026, 11, 26, tzinfo=UTC), target="SVC#prod#web", event_id="e", source="healer",
                     trigger="t", outcome="notify", reason="r" * 600_000,
                     actions=[{"kind": "notify", "detail": {"tasks": ["x" * 40] * 20_000}}])
    table.audit(big)
    (got,) = table.history(cluster="prod", service="web", since=datetime(2026, 11, 25, tzinfo=UTC),
                           now=datetime(2026, 11, 26, 1, tzinfo=UTC))
    assert got.actions == [{"kind": "notify", "truncated": True}] and len(got.reason) == 2000
    assert len(got.model_dump_json()) <= AUDIT_BUDGET_BYTES
