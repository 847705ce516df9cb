"""ScalerFunction: CloudWatch alarm state changes (EventBridge or direct alarm action) -> scaling rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopilot.idempotency import run_once
from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.places import idempotency_scope
from autopilot.usecases.scale import handle_alarm_event
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("dynamodb", "ecs", "sns"))

# The state transition identifies the event, however often it comes. The alarm's ARN (resources[0], alarmArn)
# names its account and region: the same transition of a same-named alarm in another account is another event
# (ignored as foreign), and its stored answer must never stand in for this account's.
EVENT_KEY = "[resources[0], detail.alarmName, detail.state.value, detail.state.timestamp, " \
            "alarmArn, alarmData.alarmName, alarmData.state.value, alarmData.state.timestamp]"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    # Per place (issue 13): a member's events have an idempotency partition of their own, the hub's own keep
    # IDEMPOTENCY#scaler; within it the key carries the alarm's ARN (issue 11), so no other place's answer is
    # ever replayed for an event, whether that place is admitted or not.
    scope = idempotency_scope(event, deps.home)
    return run_once(lambda e: handle_alarm_event(e, deps), event, table=deps.settings.table,
                    function="scaler" + scope, key_jmespath=EVENT_KEY, context=context)
