"""ReconcilerFunction: every minute, re-act on alarms still in ALARM and repair drifted desired counts.

Triggered by the schedule (one run, or its fan-out into shards above a size: usecases/shards.py) and by the
reconcile queue (one shard a message)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.shards import run_or_fan_out, run_shard
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("cloudwatch", "dynamodb", "ecs", "sns"))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    if isinstance(event, dict) and isinstance(event.get("Records"), list):  # shards from the reconcile queue
        shards = [run_shard(deps, str(record.get("body", ""))) for record in event["Records"]]
        return {"status": "ok", "shards": shards}
    event_id = event.get("id", "reconcile") if isinstance(event, dict) else "reconcile"
    return run_or_fan_out(deps, str(event_id))
