"""NotifierPort on SNS: a short human sentence as the subject/first line, the JSON detail below it."""

from __future__ import annotations

import json
from typing import Any

from autopilot.aws.clients import client


class SnsNotifier:
    def __init__(self, topic_arn: str | None, sns_client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = sns_client

    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None:
        if not self.topic_arn:
            return
        sns = self._client or client("sns")
        body = f"{message}\n\n{json.dumps(detail, indent=2, sort_keys=True, default=str)}"
        sns.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=body,
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": str(detail.get("kind", "info"))}})
