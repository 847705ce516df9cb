"""PolicyResourceFunction: CloudFormation custom resources -> policies declared in the teams' own stacks
(``Custom::EcsAutopilotPolicy``) and the hub stack's member registry (``Custom::EcsAutopilotMembers``).

crhelper speaks CloudFormation's protocol: it always answers (SUCCESS, or FAILED with the reason), also when the
code raises or Lambda's timeout is near, so a stack never waits an hour for a resource that will not answer.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from crhelper import CfnResource

from autopilot.observability import logger
from autopilot.usecases.policy_resource import ResourceFailed, handle
from autopilot.wiring import dependencies

if TYPE_CHECKING:  # for the annotation only: the module is not loaded at run time
    from aws_lambda_powertools.utilities.typing import LambdaContext

# sleep_on_delete=0: crhelper would otherwise wait 2 minutes on every Delete for logs to flush.
helper = CfnResource(json_logging=False, log_level="WARNING", boto_level="ERROR", sleep_on_delete=0)
# crhelper logs every failure with a traceback; a refused policy is an answer, not an error: this module logs
# refusals as warnings and anything unexpected with its traceback.
logging.getLogger("crhelper").setLevel(logging.CRITICAL)


def _request(event: dict[str, Any], _context: Any) -> str:
    deps = dependencies()
    try:
        physical = handle(event, deps.store, deps.home, deps.clock(), own_stack=os.environ.get("AUTOPILOT_STACK_ID"))
    except ResourceFailed as exc:
        logger.warning("custom resource refused", extra={"resource": event.get("LogicalResourceId"),
                                                         "request": event.get("RequestType"), "reason": str(exc)})
        raise
    except Exception:  # answered FAILED by crhelper with the message; the traceback is for the logs
        logger.exception("custom resource failed", extra={"resource": event.get("LogicalResourceId"),
                                                          "request": event.get("RequestType")})
        raise
    logger.info("custom resource done", extra={"resource": event.get("LogicalResourceId"),
                                               "request": event.get("RequestType"), "physical": physical})
    return physical


helper.create(_request)
helper.update(_request)
helper.delete(_request)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    helper(event, context)
