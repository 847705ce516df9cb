"""RolloutFunction: "ECS Deployment State Change" -> last-known-good tracking and rollbacks of failed deployments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopilot.idempotency import run_once
from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.places import idempotency_scope
from autopilot.usecases.rollout import handle_deployment_event
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("dynamodb", "ecs", "sns"))

# EventBridge gives a redelivered event the same id; the use case also dedupes on the state change itself.
EVENT_KEY = "id"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    # A member's events have idempotency records of their own (issue 13); the hub's own keep theirs as they were.
    scope = idempotency_scope(event, deps.home)
    return run_once(lambda e: handle_deployment_event(e, deps), event, table=deps.settings.table,
                    function="rollout" + scope, key_jmespath=EVENT_KEY, context=context)
