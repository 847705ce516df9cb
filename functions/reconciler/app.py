"""ReconcilerFunction: every minute, re-act on alarms still in ALARM and repair drifted desired counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.reconcile import reconcile
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("cloudwatch", "dynamodb", "ecs", "sns"))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event_id = event.get("id", "reconcile") if isinstance(event, dict) else "reconcile"
    return reconcile(dependencies(), event_id=str(event_id))
