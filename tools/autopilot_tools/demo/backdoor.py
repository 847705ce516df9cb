"""The few places the demo edits moto's in-process state directly, because moto cannot model them.

moto runs in this process (ThreadedMotoServer), so its backends are Python objects. Everything the
demo does *through* them, rather than through the AWS API, is here and only here:

- ECS deployments: moto's UpdateService never starts a new PRIMARY deployment, so the data plane
  stand-in writes the deployments ECS would show (the rollout function reads them with
  DescribeServices); and a service with a capacity provider strategy has no launch type.
- Delayed SQS messages: moto honours DelaySeconds in real time; the demo's clock is virtual, so a
  restart message is released when its delay has passed in simulated time.
- Request dispatch: moto's server lists its own package directory on every request to find the
  service (about 180 stat calls); the list never changes while the demo runs, so it is computed once.
- The network a policy names: moto invents subnet and security group ids; the demo gives the
  emulator's subnet and group the ids ``examples/policies.yaml`` names, so RunTask finds them.
- CloudFormation's answer URL: the policy custom resource's handler (crhelper) PUTs its answer over HTTPS to
  a pre-signed S3 URL; the demo plays CloudFormation and takes the answer in-process instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION


def _ecs() -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT_ID][REGION]


def _service(cluster: str, service: str) -> Any:
    return _ecs().services[f"{cluster}:{service}"]


def use_capacity_providers(cluster: str, service: str) -> None:
    """A service created for a capacity provider strategy has no launch type (moto defaults to EC2)."""
    model = _service(cluster, service)
    model.launch_type = None
    for deployment in model.deployments:
        deployment["launchType"] = None
        deployment["platformFamily"] = "FARGATE"


def set_deployments(cluster: str, service: str, deployments: list[dict[str, Any]]) -> None:
    """Replace the service's deployments (PRIMARY first, as ECS lists them) and its counts."""
    model = _service(cluster, service)
    model.deployments = deployments
    primary = deployments[0]
    model.running_count = primary.get("runningCount", model.running_count)
    model.pending_count = primary.get("pendingCount", 0)


def deployments(cluster: str, service: str) -> list[dict[str, Any]]:
    return [dict(d) for d in _service(cluster, service).deployments]


def set_task_transitions_manual() -> None:
    """Tasks stay RUNNING until the data plane stops them (moto would advance them per DescribeTasks)."""
    from moto.moto_api import state_manager

    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})


def rename_network(subnet_id: str, new_subnet_id: str, group_id: str, new_group_id: str) -> None:
    """Give an emulator subnet and security group the ids a policy file names."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ACCOUNT_ID][REGION]
    for per_zone in ec2.subnets.values():
        if subnet_id in per_zone:
            subnet = per_zone.pop(subnet_id)
            subnet.id = new_subnet_id
            per_zone[new_subnet_id] = subnet
    for per_vpc in ec2.groups.values():
        if group_id in per_vpc:
            group = per_vpc.pop(group_id)
            group.id = new_group_id
            per_vpc[new_group_id] = group


@dataclass
class DelayedMessage:
    message_id: str
    body: str
    delay_seconds: float  # as requested by the sender


def delayed_messages(queue_name: str) -> list[DelayedMessage]:
    """Messages of a queue that are still delayed (in real time), with the delay they were sent with."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues.get(queue_name)
    if queue is None:
        return []
    found: list[DelayedMessage] = []
    for message in list(queue._messages):
        if message.delayed and message.sent_timestamp is not None and message.delayed_until != float("inf"):
            delay = max(0.0, (message.delayed_until - message.sent_timestamp) / 1000)
            found.append(DelayedMessage(message.id, message.body, delay))
    return found


def release(queue_name: str, message_id: str) -> None:
    """End a message's delay now (its DelaySeconds have passed on the virtual clock)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues.get(queue_name)
    for message in list(queue._messages) if queue else []:
        if message.id == message_id:
            message.delayed_until = 0.0
            message.visible_at = 0.0


def visible_messages(queue_name: str) -> list[str]:
    """Ids of messages a receive would return now (sent without delay)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues.get(queue_name)
    return [m.id for m in list(queue._messages) if m.visible and not m.delayed] if queue else []


def hold(queue_name: str, message_id: str) -> None:
    """Keep a message invisible until the virtual clock releases it (real time must not)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues.get(queue_name)
    for message in list(queue._messages) if queue else []:
        if message.id == message_id:
            message.delayed_until = float("inf")


_ORIGINAL_LIST: Any = None
_ORIGINAL_HTTPS: Any = None
ANSWERS: list[dict[str, Any]] = []  # what custom resource handlers answered CloudFormation, in order


def capture_cloudformation_answers() -> list[dict[str, Any]]:
    """Take crhelper's PUTs to CloudFormation's pre-signed URL in-process (the list ``ANSWERS`` grows)."""
    global _ORIGINAL_HTTPS
    import json

    import crhelper.utils

    if _ORIGINAL_HTTPS is None:
        _ORIGINAL_HTTPS = getattr(crhelper.utils, "HTTPSConnection")  # noqa: B009 (crhelper is untyped)

        class Answer:
            def __init__(self, host: str, context: Any = None) -> None:
                self.host = host

            def request(self, method: str, url: str, body: str, headers: dict[str, str]) -> None:
                ANSWERS.append(json.loads(body))

            def getresponse(self) -> Any:
                return type("Response", (), {"reason": "OK", "status": 200})()

        setattr(crhelper.utils, "HTTPSConnection", Answer)  # noqa: B010
    return ANSWERS


def speed_up_dispatch() -> None:
    """Compute moto's list of service modules once instead of on every request (same result, less I/O)."""
    global _ORIGINAL_LIST
    import moto.backends

    if _ORIGINAL_LIST is not None:
        return
    _ORIGINAL_LIST = moto.backends.list_of_moto_modules
    modules = tuple(_ORIGINAL_LIST())

    def cached() -> tuple[str, ...]:
        return modules

    moto.backends.list_of_moto_modules = cached  # type: ignore[assignment]


def restore() -> None:
    """Undo the demo's changes to moto's process-wide settings (a test process goes on using moto)."""
    global _ORIGINAL_LIST
    import moto.backends
    from moto.moto_api import state_manager

    if _ORIGINAL_LIST is not None:
        moto.backends.list_of_moto_modules = _ORIGINAL_LIST
        _ORIGINAL_LIST = None
    global _ORIGINAL_HTTPS
    if _ORIGINAL_HTTPS is not None:
        import crhelper.utils

        setattr(crhelper.utils, "HTTPSConnection", _ORIGINAL_HTTPS)  # noqa: B010
        _ORIGINAL_HTTPS = None
    state_manager.unset_transition(model_name="ecs::task")
