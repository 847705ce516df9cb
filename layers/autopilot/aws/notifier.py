"""NotifierPort on SNS: a short human sentence as the subject/first line, the JSON detail below it."""

from __future__ import annotations

import json
from typing import Any

from autopilot.aws.clients import client

SUBJECT_MAX = 99  # SNS: "less than 100 characters long"


def sns_subject(text: str) -> str:
    """A Subject SNS accepts: no line breaks or control characters, fewer than 100 characters, not empty.
    (Sentences carry event text such as stopped reasons; a refused Subject would lose the notification.)"""
    clean = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(clean) > SUBJECT_MAX:
        clean = clean[:SUBJECT_MAX - 3].rstrip() + "..."
    return clean or "ecs-autopilot"


class SnsNotifier:
    def __init__(self, topic_arn: str | None, sns_client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = sns_client

    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None:
        if not self.topic_arn:
            return
        sns = self._client or client("sns")
        body = f"{message}\n\n{json.dumps(detail, indent=2, sort_keys=True, default=str)}"
        sns.publish(TopicArn=self.topic_arn, Subject=sns_subject(subject), Message=body,
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": str(detail.get("kind", "info"))}})
