"""Issue 11, finding 9: an event from another account or region never acts here.

A dev account's ``web-cpu-high`` forwarded to a central bus used to scale prod: policies are found by alarm
name only. Now every handler ignores events whose account or region is not this deployment's
(``ignored:foreign-account``: audited, counted as Skipped, no AWS call), whichever form the alarm came in.
The EventBridge rules filter the same way (tests/template/test_event_routing.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.events import InvalidEvent, parse_alarm_event
from autopilot.models.place import Place, Registration
from autopilot.models.place import admitted as models_admitted
from autopilot.settings import Settings
from tests.conftest import in_account, load_handler, published, sample, variant
from tests.proofs.support import AwsLog, healer_world, rollout_world, scaler_world

OTHER = "210987654321"


def desired(service: str = "web") -> int:
    return int(client("ecs").describe_services(cluster="prod", services=[service])["services"][0]["desiredCount"])


def audited(deps: Any) -> list[str]:
    return [h.outcome for h in deps.store.history(now=deps.clock())]


@pytest.fixture
def log(deps: Any) -> AwsLog:
    return AwsLog().attach()


def eventbridge_alarm(account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    return in_account(sample("scaler-alarm-high.json"), account, region)


def direct_alarm(account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    event = variant(published("cloudwatch-alarm-lambda-action-payload-metric-alarm.json"),
                    **{"alarmData.alarmName": "web-cpu-high"})
    return in_account(event, account, region)


@pytest.mark.parametrize("event", [eventbridge_alarm(OTHER), eventbridge_alarm(region="eu-west-1"),
                                   direct_alarm(OTHER), direct_alarm(region="eu-west-1"),
                                   published("cloudwatch-alarm-lambda-action-payload-metric-alarm.json")],
                         ids=["eventbridge-account", "eventbridge-region", "direct-account", "direct-region",
                              "published-direct-as-is"])
def test_an_alarm_from_another_account_or_region_scales_nothing(deps: Any, lambda_context: Any, log: AwsLog,
                                                                 capsys: Any, event: dict[str, Any]) -> None:
    scaler_world(deps)
    capsys.readouterr()
    with log.recording():
        result = load_handler("scaler").lambda_handler(event, lambda_context)
    assert result["status"] == "ignored" and "this deployment acts on account 123456789012" in result["reason"]
    assert audited(deps) == ["ignored:foreign-account"]
    assert [c.short() for c in log.calls if c.service != "dynamodb"] == [], "no AWS call but our own table"
    assert desired() == 4
    assert '"reason":"foreign-account"' in capsys.readouterr().out, "counted (Skipped, reason foreign-account)"


def test_the_same_alarm_from_this_account_scales(deps: Any, lambda_context: Any) -> None:
    scaler_world(deps)
    result = load_handler("scaler").lambda_handler(eventbridge_alarm(), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"] and desired() == 6


def test_ecs_events_from_another_account_are_ignored(deps: Any, lambda_context: Any, log: AwsLog) -> None:
    healer_world(deps)
    crash = in_account(sample("healer-crash.json"), OTHER)
    with log.recording():
        assert load_handler("healer").lambda_handler(crash, lambda_context)["status"] == "ignored"
    assert audited(deps) == ["ignored:foreign-account"]
    assert [c.short() for c in log.calls if c.service != "dynamodb"] == []


def test_deployment_events_from_another_region_are_ignored(deps: Any, lambda_context: Any, log: AwsLog) -> None:
    rollout_world(deps)
    failed = in_account(sample("rollout-failed-circuit-breaker.json"), region="eu-west-1")
    with log.recording():
        assert load_handler("rollout").lambda_handler(failed, lambda_context)["status"] == "ignored"
    assert audited(deps) == ["ignored:foreign-account"]
    assert [c.short() for c in log.calls if c.service != "dynamodb"] == []


class _NoMembers:
    """The store as admission sees it in a single-account deployment: no member registered, no policy elsewhere."""

    def registration(self) -> Registration:
        return Registration()

    def names_place(self, place: Place) -> bool:
        return False


@pytest.mark.parametrize(("account", "region", "admitted"), [
    ("123456789012", "us-east-1", True),
    (OTHER, "us-east-1", False),
    ("123456789012", "eu-west-1", False),
    (None, "us-east-1", False),  # an event naming no account where this deployment knows its own
    ("123456789012", None, False),
])
def test_admits(account: str | None, region: str | None, admitted: bool) -> None:
    """The single-account case of the one admission check (issue 13's ``admitted``, asked by ``admission``)."""
    from autopilot.usecases.places import Refused, admission

    ours = Settings(table="t", home_account="123456789012", home_region="us-east-1").home
    assert (not isinstance(admission(ours, _NoMembers(), account, region), Refused)) is admitted
    assert models_admitted(Place(account, region) if account and region else None, ours) is admitted
    unknown = Settings(table="t").home
    assert admission(unknown, _NoMembers(), account, region) is None, "a deployment not knowing its own admits all"
    assert admission(ours, _NoMembers(), None, None, unnamed_is_home=True) is None, \
        "our own messages name no place when they are the hub's"


def test_an_alarm_arn_that_contradicts_the_envelope_is_invalid() -> None:
    event = direct_alarm()
    event["alarmArn"] = event["alarmArn"].replace(":123456789012:", f":{OTHER}:")
    with pytest.raises(InvalidEvent, match="alarmArn names account"):
        parse_alarm_event(event)
    change = parse_alarm_event(direct_alarm())
    assert (change.account, change.region) == ("123456789012", "us-east-1")


def test_a_foreign_copy_of_the_same_transition_does_not_answer_for_ours(deps: Any, lambda_context: Any) -> None:
    """Found by the soak: a dev account's same-named alarm changing state at the same moment was ignored, and its
    stored idempotent answer ("ignored") was replayed for this account's own event, which never scaled. The
    idempotency key carries the alarm's ARN (its account and region) now."""
    scaler_world(deps)
    scaler = load_handler("scaler")
    assert scaler.lambda_handler(eventbridge_alarm(OTHER), lambda_context)["status"] == "ignored"
    result = scaler.lambda_handler(eventbridge_alarm(), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"] and desired() == 6
