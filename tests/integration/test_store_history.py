"""`history --since` compares times in UTC whatever offset they carry (sort keys are UTC ISO strings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from autopilot.store.table import AuditEntry, StateTable

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def entry(minutes_ago: int, target: str = "SVC#prod#web") -> AuditEntry:
    return AuditEntry(at=NOW - timedelta(minutes=minutes_ago), target=target, event_id=f"e{minutes_ago}",
                      source="scaler", trigger="t", outcome="scale-out", reason=f"r{minutes_ago}")


@pytest.mark.parametrize("offset_hours", [0, 2, -5, 13, -11])
@pytest.mark.parametrize("by_service", [True, False], ids=["service-partition", "day-index"])
def test_since_with_any_offset_keeps_the_same_entries(stack: Any, offset_hours: int, by_service: bool) -> None:
    table = StateTable(stack.ref("StateTable"))
    for minutes in (5, 50, 70, 60 * 13):
        table.audit(entry(minutes))
    since = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=offset_hours)))
    now = NOW.astimezone(timezone(timedelta(hours=offset_hours)))
    filters = {"cluster": "prod", "service": "web"} if by_service else {}
    got = table.history(since=since, now=now, **filters)
    assert [e.event_id for e in got] == ["e5", "e50"]


def test_a_naive_since_is_taken_as_utc(stack: Any) -> None:
    table = StateTable(stack.ref("StateTable"))
    table.audit(entry(5))
    table.audit(entry(70))
    got = table.history(since=datetime(2026, 11, 26, 11, 0), now=NOW, cluster="prod", service="web")
    assert [e.event_id for e in got] == ["e5"]
