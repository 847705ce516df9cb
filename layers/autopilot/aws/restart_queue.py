"""RestartQueuePort on SQS: delayed restart messages for standalone tasks.

SQS delays a message at most 900 s (aws-facts section 4). A longer back-off is sent with the maximum
delay; the message carries its ``not_before`` and the restarter queues it again until it is due.
The queue is a standard queue (at-least-once): the restarter dedupes on lineage and sequence.
"""

from __future__ import annotations

import json
from typing import Any

from autopilot.aws.clients import AwsAdapter

MAX_DELAY_SECONDS = 900


def sqs_delay(delay_seconds: int) -> int:
    """The DelaySeconds SQS accepts for a wanted delay: 0..900."""
    return max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))


class SqsRestartQueue(AwsAdapter):
    service = "sqs"

    def __init__(self, queue_url: str | None, sqs_client: Any | None = None) -> None:
        super().__init__(sqs_client)
        self.queue_url = queue_url

    def send(self, body: dict[str, Any], delay_seconds: int, dedup_id: str) -> None:
        if not self.queue_url:
            raise RuntimeError("AUTOPILOT_RESTART_QUEUE_URL is not set: cannot queue a restart")
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps(body, sort_keys=True, default=str),
            DelaySeconds=sqs_delay(delay_seconds),
            MessageAttributes={"restart": {"DataType": "String", "StringValue": dedup_id[:256] or "-"}},
        )
