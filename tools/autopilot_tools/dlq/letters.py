"""Reading dead letters. Pure: a received SQS message in, a typed DeadLetter out.

Three kinds of message land in the dead-letter queue:
- EventBridge could not deliver an event to a function (message attributes RULE_ARN, TARGET_ARN,
  ERROR_CODE, ERROR_MESSAGE; the body is the event),
- Lambda gave up on an asynchronous invocation (the on-failure destination record: a JSON body with
  requestContext.functionArn, condition, requestPayload and the function's error),
- the restart queue gave up on a restart message after maxReceiveCount (the body is the message).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Origin = Literal["eventbridge", "lambda-async", "restart-queue", "unknown"]


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True)
    message_id: str
    receipt_handle: str
    origin: Origin
    target: str | None  # the function ARN (or the restart queue) to send it back to
    error: str
    summary: str  # "ECS Task State Change prod task/..." - what the event was about
    payload: Any  # what to send back: the event, the invocation payload, or the restart message
    sent_at: str | None = None


def _attribute(message: dict[str, Any], name: str) -> str | None:
    attributes: dict[str, Any] = message.get("MessageAttributes") or {}
    value: dict[str, Any] = attributes.get(name) or {}
    return value.get("StringValue")


def _summary(event: Any) -> str:
    if not isinstance(event, dict):
        return type(event).__name__
    kind = event.get("detail-type") or event.get("source") or "event"
    detail: dict[str, Any] = event["detail"] if isinstance(event.get("detail"), dict) else {}
    about = (detail.get("alarmName") or detail.get("taskArn") or detail.get("eventName")
             or (event.get("resources") or [""])[0] or (event.get("alarmData") or {}).get("alarmName") or "")
    if "family" in event and "cluster" in event:  # a restart message
        return f"restart of {event['cluster']}/{event['family']}"
    return f"{kind} {about}".strip()


def read(message: dict[str, Any]) -> DeadLetter:
    """Classify one received message; never raises on a strange body."""
    body_text = message.get("Body", "")
    try:
        body: Any = json.loads(body_text)
    except ValueError:
        body = body_text
    common = {"message_id": message.get("MessageId", "?"), "receipt_handle": message.get("ReceiptHandle", ""),
              "sent_at": (message.get("Attributes") or {}).get("SentTimestamp")}
    target = _attribute(message, "TARGET_ARN")
    if target:
        error = f"{_attribute(message, 'ERROR_CODE') or '?'}: {_attribute(message, 'ERROR_MESSAGE') or ''}".strip()
        return DeadLetter(origin="eventbridge", target=target, error=error, summary=_summary(body), payload=body,
                          **common)
    if isinstance(body, dict) and isinstance(body.get("requestContext"), dict) and "requestPayload" in body:
        context: dict[str, Any] = body["requestContext"]
        response: dict[str, Any] = body["responsePayload"] if isinstance(body.get("responsePayload"), dict) else {}
        error = f"{context.get('condition', '?')}: {response.get('errorType', '')} {response.get('errorMessage', '')}"
        return DeadLetter(origin="lambda-async", target=context.get("functionArn"), error=error.strip(),
                          summary=_summary(body["requestPayload"]), payload=body["requestPayload"], **common)
    if isinstance(body, dict) and "family" in body and "cluster" in body:
        return DeadLetter(origin="restart-queue", target=None, error="restart message exceeded maxReceiveCount",
                          summary=_summary(body), payload=body, **common)
    return DeadLetter(origin="unknown", target=None, error="not recognised", summary=_summary(body), payload=body,
                      **common)
