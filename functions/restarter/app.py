"""RestarterFunction: due restarts of standalone tasks from the restart queue -> RunTask, exactly once each.

Powertools BatchProcessor reports failed records only (ReportBatchItemFailures): one bad message never
makes SQS redeliver the whole batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from autopilot.observability import logger, metrics
from autopilot.snapstart import prepare_snapshot
from autopilot.usecases.restart import handle_restart_message
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# With SnapStart (template parameter): build these clients, the dependencies and the validators into the snapshot.
prepare_snapshot(clients=("dynamodb", "ecs", "sns", "sqs"))

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return handle_restart_message(record.body, dependencies(), message_id=record.message_id)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    return dict(response)
