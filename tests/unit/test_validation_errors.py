"""Every parser describes a rejected input the same way: ``field.path: why`` (models/validation.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from autopilot.models.deployment_events import parse_deployment_event
from autopilot.models.events import InvalidEvent, parse_alarm_event
from autopilot.models.task_events import parse_healer_event
from autopilot.models.validation import first_error
from tests.conftest import published, variant


class _Inner(BaseModel):
    value: int


class _Outer(BaseModel):
    detail: _Inner


def _error(model: type[BaseModel], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return raised.value


def test_first_error_names_the_field_path() -> None:
    assert first_error(_error(_Outer, {"detail": {"value": "x"}})) == (
        "detail.value: Input should be a valid integer, unable to parse string as an integer")


def test_an_error_about_the_whole_input_names_the_input() -> None:
    assert first_error(_error(_Outer, 42)).startswith("event: Input should be a valid dictionary")
    assert first_error(_error(_Outer, 42), whole="body").startswith("body: ")


@pytest.mark.parametrize(("parse", "event", "expected"), [
    (parse_alarm_event, variant(published("cloudwatch-alarm-state-change-single-metric.json"),
                                **{"detail.state.value": "BROKEN"}), "detail.state.value: Input should be "),
    (parse_deployment_event, variant(published("ecs-deployment-state-change-completed.json"),
                                     **{"detail.eventName": 7}), "detail.eventName: Input should be "),
    (parse_healer_event, variant(published("ecs-task-state-change-stopped-user-initiated-ec2-service.json"),
                                 **{"detail.taskArn": None}), "detail.taskArn: Input should be "),
])
def test_every_event_parser_uses_the_same_words(parse: Any, event: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse(event)
    assert str(raised.value).startswith(expected), str(raised.value)


def test_a_restart_message_is_described_as_the_body() -> None:
    from autopilot.usecases.restart import parse_message

    with pytest.raises(ValidationError) as raised:
        parse_message("[]")
    assert first_error(raised.value, whole="body").startswith("body: Input should be an object")
