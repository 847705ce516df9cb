"""Composition root: builds each function's dependencies from the environment, once per sandbox.

Tests and the demo build ``Dependencies`` themselves (with fakes or moto-backed clients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache

from autopilot.aws.cloudwatch import CloudWatchAlarms
from autopilot.aws.ecs import Ecs
from autopilot.aws.notifier import SnsNotifier
from autopilot.execute import Executor
from autopilot.ports import AlarmsPort, EcsPort, NotifierPort
from autopilot.settings import Settings, settings
from autopilot.store.table import StateTable


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Dependencies:
    settings: Settings
    store: StateTable
    ecs: EcsPort
    notifier: NotifierPort
    alarms: AlarmsPort
    executor: Executor
    clock: Callable[[], datetime] = field(default=utcnow)


def build(config: Settings) -> Dependencies:
    ecs = Ecs()
    notifier = SnsNotifier(config.topic_arn)
    return Dependencies(
        settings=config, store=StateTable(config.table), ecs=ecs, notifier=notifier,
        alarms=CloudWatchAlarms(), executor=Executor(ecs, notifier),
    )


@cache
def dependencies() -> Dependencies:
    """This sandbox's dependencies (settings validated on first use: a bad deploy fails loudly)."""
    return build(settings())
