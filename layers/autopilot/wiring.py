"""Composition root: builds each function's dependencies from the environment, once per sandbox.

Tests and the demo build ``Dependencies`` themselves (with fakes or moto-backed clients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from autopilot.aws.cloudwatch import CloudWatchAlarms
from autopilot.aws.ecs import Ecs
from autopilot.aws.notifier import SnsNotifier
from autopilot.aws.restart_queue import SqsRestartQueue
from autopilot.aws.taskdefs import TaskDefinitions
from autopilot.execute import Executor, derive_revision_handler
from autopilot.ports import AlarmsPort, EcsPort, NotifierPort, TaskDefinitionsPort
from autopilot.settings import Settings, settings
from autopilot.store.table import StateTable


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    settings: Settings
    store: StateTable
    ecs: EcsPort
    notifier: NotifierPort
    alarms: AlarmsPort
    executor: Executor
    clock: Callable[[], datetime] = field(default=utcnow)
    taskdefs: TaskDefinitionsPort | None = None  # derived revisions (rollouts, OOM right-sizing)


def build(config: Settings) -> Dependencies:
    ecs = Ecs()
    notifier = SnsNotifier(config.topic_arn)
    taskdefs = TaskDefinitions()
    executor = Executor(ecs, notifier, restart_queue=SqsRestartQueue(config.restart_queue_url))
    executor.register("derive-revision", derive_revision_handler(ecs, taskdefs))
    return Dependencies(
        settings=config, store=StateTable(config.table), ecs=ecs, notifier=notifier,
        alarms=CloudWatchAlarms(), executor=executor, taskdefs=taskdefs,
    )


@cache
def dependencies() -> Dependencies:
    """This sandbox's dependencies (settings validated on first use: a bad deploy fails loudly)."""
    return build(settings())
