"""The reconciler at estate scale: one run per minute, fanned out over SQS when one invocation cannot do it.

Measured with the soak (README, "Soak"): a run over 1,000 managed services takes about 20 s of AWS calls,
inside its 120 s timeout; at 5,000 it passes the timeout (DescribeServices is limited to 20 calls a second
per account, UpdateService to 5, DescribeAlarms to 9), and a burst of 500 DescribeServices would also starve
the scaler and the healer of theirs. So, above ``reconcile_shard_size`` service policies (1,000 by default):

- the scheduled invocation only lists the policies and sends one message per shard to the reconcile queue
  (SendMessageBatch, ten a call), their ``DelaySeconds`` spread over the minute, so the shards' calls are
  paced within the account's rate limits instead of arriving at once;
- the queue's event source mapping (batch size 1, at most 2 concurrent) runs each shard in an invocation of
  its own: every service policy whose key hashes to the shard (a stable hash: a service stays in its shard
  while the estate grows by whole shards), with the full run's guarantees (``usecases.reconcile``). A member
  place's keys carry the place (issue 13), so a shard holds (place, policy) entries of every place, about
  ``1/count`` of each: within the shard they are grouped by place again, each place with its own ports and
  thread, and each account's calls stay spread over the shards and the minute;
- a shard that fails ends its invocation with the error (counted, alarmed); SQS would deliver it again after
  the visibility timeout, when it is stale: a shard older than a minute does nothing (the next minute's run
  has covered its services), so nothing is ever done twice by a late shard.

No scheduler of our own: EventBridge Scheduler starts each minute, SQS spreads and delivers, Lambda scales.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import timedelta
from typing import Any

from autopilot.models.events import aware_time
from autopilot.models.policy import ServicePolicy
from autopilot.observability import logger
from autopilot.ports import Dependencies
from autopilot.usecases.observe import counts_failures
from autopilot.usecases.reconcile import reconcile

SPREAD_SECONDS = 50  # the shards start within this much of the minute
STALE_AFTER = timedelta(seconds=60)


def shard_of(key: str, count: int) -> int:
    """Which of ``count`` shards reconciles the policy ``key``: a stable hash (not Python's, which is salted)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count


@counts_failures
def run_or_fan_out(deps: Dependencies, event_id: str) -> dict[str, Any]:
    """The scheduled invocation: reconcile every service in this invocation, or send the shards of the run."""
    policies = [p for p in deps.store.list_policies() if isinstance(p, ServicePolicy)]
    size = deps.settings.reconcile_shard_size
    if deps.shards is None or len(policies) <= size:
        return reconcile(deps, event_id=event_id, policies=policies)
    count = math.ceil(len(policies) / size)
    now = deps.clock()
    messages = [({"v": 1, "run": event_id, "shard": index, "of": count, "at": now.isoformat()},
                 int(index * SPREAD_SECONDS / count)) for index in range(count)]
    deps.shards.send_batch(messages)
    logger.info("reconciler run fanned out", extra={"policies": len(policies), "shards": count})
    return {"status": "fanned-out", "policies": len(policies), "shards": count}


@counts_failures
def run_shard(deps: Dependencies, body: str) -> dict[str, Any]:
    """One shard of a run (an SQS message of ``run_or_fan_out``)."""
    try:
        message = json.loads(body)
        index, count, run = int(message["shard"]), int(message["of"]), str(message["run"])
        at = aware_time(str(message["at"]))
        if at is None or not 0 <= index < count:
            raise ValueError("shard out of range or no time")
    except (ValueError, KeyError, TypeError) as exc:  # not ours: nothing to do, nothing to retry
        logger.warning("ignored a malformed reconcile shard", extra={"error": str(exc)[:200]})
        return {"status": "ignored", "reason": "malformed shard message"}
    if deps.clock() - at > STALE_AFTER:
        return {"status": "ignored", "reason": f"shard {index} of run {run} is stale: a later run covered it"}
    policies = [p for p in deps.store.list_policies()
                if isinstance(p, ServicePolicy) and shard_of(p.key, count) == index]
    return reconcile(deps, event_id=f"{run}#{index}/{count}", policies=policies)
