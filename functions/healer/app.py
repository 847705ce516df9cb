"""HealerFunction: STOPPED task events and service placement failures -> crash loops, OOM right-sizing,
Spot fallback, standalone restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.heal import handle_healer_event
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("dynamodb", "ecs", "sns", "sqs"))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Deduplication lives in the service's state (per task ARN and detail.version), not in a separate layer.
    return handle_healer_event(event, dependencies())
