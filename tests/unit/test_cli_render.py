"""CLI rendering helpers: durations, time spans, targets, policy diffs, generic state (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autopilot.models.policy import ServicePolicy
from autopilot.models.state import ServiceState
from autopilot_tools.cli.render import block, parse_since, policy_diff, span, state_rows, target_of

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", NOW - timedelta(minutes=30)), ("1h", NOW - timedelta(hours=1)), ("2d", NOW - timedelta(days=2)),
    ("45s", NOW - timedelta(seconds=45)), ("1w", NOW - timedelta(days=7)), (" 90m ", NOW - timedelta(minutes=90)),
    ("2026-11-25T08:00:00Z", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
    ("2026-11-25T08:00", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),  # naive means UTC
    ("2026-11-25T09:00:00+01:00", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
    ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
])
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "-1h", "", "h", "1.5h"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since(text, NOW)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59, "59s"), (60, "1m"), (150, "2m30s"), (3600, "1h00m"), (3725, "1h02m"), (86400 * 3 + 7200, "3d02h"),
    (-5, "0s"),
])
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


@pytest.mark.parametrize(("key", "text"), [
    ("SVC#prod#web", "prod/web"), ("TASK#batch#etl", "batch/etl (task)"), ("-", "-"), ("ALARM#x", "ALARM#x"),
])
def test_target_of(key: str, text: str) -> None:
    assert target_of(key) == text


def _policy(max_tasks: int, alarms: list[str]) -> ServicePolicy:
    return ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "c", "service": "s"},
        "spec": {"scaling": {"minTasks": 1, "maxTasks": max_tasks,
                             "rules": [{"alarm": a, "targetValue": 10} for a in alarms]}}})


def test_policy_diff_lists_changed_added_and_removed_fields_in_natural_order() -> None:
    alarms = [f"a{i}" for i in range(12)]
    old, new = _policy(10, alarms), _policy(12, [*alarms[:2], "b2", *alarms[3:11]])
    assert policy_diff(old, new) == [
        'spec.scaling.maxTasks: 10 -> 12',
        'spec.scaling.rules[2].alarm: "a2" -> "b2"',
        'spec.scaling.rules[11].alarm: "a11" -> (removed)',
        "spec.scaling.rules[11].targetValue: 10.0 -> (removed)",
    ]
    assert policy_diff(None, new) == [] and policy_diff(new, new) == []


def test_state_rows_show_recorded_facts_only() -> None:
    state = ServiceState.model_validate({
        "paused": True, "paused_reason": "freeze",
        "scaling": {"scale_in_until": (NOW + timedelta(minutes=4)).isoformat()},
        "rollout": {"lkg": "web:7", "bad_revisions": ["web:8", "web:9"], "lkg_deployment": "ecs-svc/1"},
    })
    rows = dict(state_rows(state, 3, NOW, service=True))
    assert rows["paused"] == "yes (freeze)"
    assert rows["cooldowns"] == "scale-out none; scale-in until 2026-11-26T12:04:00Z (4m left)"
    assert (rows["last known good"], rows["bad revisions"]) == ("web:7", "web:8, web:9")
    assert rows["rollout.lkg_deployment"] == "ecs-svc/1"
    assert not any(label.startswith("healing.") for label in rows)  # nothing recorded there


def test_state_rows_without_a_state_item() -> None:
    assert state_rows(ServiceState(), 0, NOW, service=True) == [("paused", "no"), ("state", "none recorded yet")]


def test_block_aligns_values_and_indents_continuation_lines() -> None:
    assert block("t", [("a", "1"), ("long label", "x\ny")]).splitlines() == [
        "t", "  a:          1", "  long label: x", "              y"]
