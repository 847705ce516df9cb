"""Incoming events, parsed into typed models. Unknown shapes raise ``InvalidEvent``.

Both forms of an alarm notification are accepted: the EventBridge "CloudWatch Alarm State Change"
event and the payload CloudWatch sends when a Lambda function is an alarm action.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autopilot.models.validation import first_error

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class InvalidEvent(ValueError):
    """An event that cannot be acted on. Handlers log it once, count it, and make no AWS mutation."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class AlarmStateValue(_Loose):
    value: AlarmState
    reason: str | None = None
    reasonData: str | None = None
    timestamp: str


class AlarmDetail(_Loose):
    alarmName: str = Field(min_length=1, max_length=255)
    state: AlarmStateValue
    previousState: AlarmStateValue | None = None


class EventBridgeAlarmEvent(_Loose):
    id: str
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"]
    account: str | None = None  # set by EventBridge: the account and region the alarm lives in
    region: str | None = None
    time: str
    resources: list[str] = Field(default_factory=list)  # the alarm's ARN
    detail: AlarmDetail


class DirectAlarmEvent(_Loose):
    source: Literal["aws.cloudwatch"]
    alarmArn: str
    accountId: str | None = None
    region: str | None = None
    time: str
    alarmData: AlarmDetail


class AlarmChange(BaseModel):
    """An alarm state change, whichever way it arrived, with its breaching datapoint if known."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    alarm_name: str
    state: AlarmState
    previous_state: AlarmState | None
    timestamp: str
    event_id: str
    datapoint: float | None = None
    threshold: float | None = None
    form: Literal["eventbridge", "alarm-action", "reconciler"] = "eventbridge"
    account: str | None = None  # where the alarm lives (usecases.places decides whether it may act here)
    region: str | None = None

    @property
    def event_key(self) -> str:
        """Identifies the state transition itself, so both delivery forms and retries dedupe."""
        return f"alarm:{self.alarm_name}:{self.state}:{self.timestamp}"


def parse_reason_data(raw: str | None) -> tuple[float | None, float | None]:
    """(latest datapoint, threshold) from an alarm's ``reasonData`` JSON string.

    Anomaly-detection alarms have bands instead of a threshold: the band the datapoint crossed is
    used as the threshold. Composite alarms have neither: (None, None).
    """
    if raw is None or raw == "":
        return None, None
    try:
        data = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"reasonData is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("reasonData is not a JSON object")
    points = data.get("recentDatapoints") or []
    datapoint = _number(points[-1]) if isinstance(points, list) and points else None
    threshold = _number(data.get("threshold"))
    if threshold is None and datapoint is not None:
        upper = data.get("recentUpperThresholds") or []
        lower = data.get("recentLowerThresholds") or []
        if isinstance(upper, list) and upper and (u := _number(upper[-1])) is not None and datapoint > u:
            threshold = u
        elif isinstance(lower, list) and lower and (lo := _number(lower[-1])) is not None and datapoint < lo:
            threshold = lo
    return datapoint, threshold


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_alarm_event(event: Any) -> AlarmChange:
    """Parse either alarm form; anything else raises InvalidEvent with a one-line reason."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"event is a {type(event).__name__}, not an object")
    try:
        if "detail-type" in event:
            eb = EventBridgeAlarmEvent.model_validate(event)
            detail, event_id, form = eb.detail, eb.id, "eventbridge"
            account, region = _origin(eb.account, eb.region, eb.resources[0] if eb.resources else None,
                                      "account", "resources[0]")
        elif "alarmData" in event:
            direct = DirectAlarmEvent.model_validate(event)
            detail, form = direct.alarmData, "alarm-action"
            event_id = f"{direct.alarmArn}@{detail.state.timestamp}"
            account, region = _origin(direct.accountId, direct.region, direct.alarmArn, "accountId", "alarmArn")
        else:
            raise InvalidEvent("neither an EventBridge alarm event nor an alarm-action payload")
    except ValidationError as exc:
        raise InvalidEvent(first_error(exc)) from None
    datapoint, threshold = parse_reason_data(detail.state.reasonData)
    return AlarmChange(
        alarm_name=detail.alarmName,
        state=detail.state.value,
        previous_state=detail.previousState.value if detail.previousState else None,
        timestamp=detail.state.timestamp,
        event_id=event_id,
        datapoint=datapoint,
        threshold=threshold,
        form=form,  # type: ignore[arg-type]
        account=account or None,
        region=region or None,
    )


def _origin(account: str | None, region: str | None, arn: str | None, account_field: str,
            arn_field: str) -> tuple[str | None, str | None]:
    """The account and region an alarm event comes from; its alarm ARN must agree with the envelope."""
    parts = arn.split(":") if arn else []
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "cloudwatch":
        arn_region, arn_account = parts[3] or None, parts[4] or None
        if account and arn_account and account != arn_account:
            raise InvalidEvent(f"{arn_field} names account {arn_account} but {account_field} is {account}")
        if region and arn_region and region != arn_region:
            raise InvalidEvent(f"{arn_field} names region {arn_region} but region is {region}")
        return account or arn_account, region or arn_region
    return account, region


def aware_time(value: str | None) -> datetime | None:
    """An AWS timestamp with its time zone; None if it is missing, not ISO 8601, or naive.

    ``datetime.fromisoformat`` reads every form AWS sends (``Z``, ``+00:00``, ``+0000``, up to nine
    fractional digits) since Python 3.11. A naive time is refused: decisions compare it with an aware
    ``now``, which would raise.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None
