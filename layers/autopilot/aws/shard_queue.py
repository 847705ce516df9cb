"""ShardQueuePort on SQS: the reconciler's fan-out (usecases/shards.py), ten messages per SendMessageBatch."""

from __future__ import annotations

import json
from typing import Any

from autopilot.aws.clients import AwsAdapter
from autopilot.aws.restart_queue import sqs_delay


class SqsShardQueue(AwsAdapter):
    service = "sqs"

    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        super().__init__(sqs_client)
        self.queue_url = queue_url

    def send_batch(self, messages: list[tuple[dict[str, Any], int]]) -> None:
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(index), "MessageBody": json.dumps(body, sort_keys=True, default=str),
                        "DelaySeconds": sqs_delay(delay)}
                       for index, (body, delay) in enumerate(messages[start:start + 10])]
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:  # partly sent: the run fails (counted); the shards that were sent run anyway
                raise RuntimeError(f"{len(failed)} shard messages were not sent: "
                                   f"{failed[0].get('Code')}: {failed[0].get('Message')}"[:500])
