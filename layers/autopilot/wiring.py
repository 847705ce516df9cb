"""Composition root: builds each function's dependencies from the environment, once per sandbox.

Only the handlers (``functions/*/app.py``) and the tooling import this module; use cases get a
``ports.Dependencies`` and never reach for the adapters themselves. Tests and the demo build
``Dependencies`` with ``build`` (on moto) or by hand (with fakes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from autopilot.aws.cloudwatch import CloudWatchAlarms
from autopilot.aws.ecs import Ecs
from autopilot.aws.notifier import SnsNotifier
from autopilot.aws.restart_queue import SqsRestartQueue
from autopilot.aws.taskdefs import TaskDefinitions
from autopilot.execute import Executor, derive_revision_handler
from autopilot.ports import Dependencies, utcnow
from autopilot.settings import Settings, settings
from autopilot.store.table import StateTable

__all__ = ["AwsDependencies", "Dependencies", "build", "dependencies", "utcnow"]


@dataclass
class AwsDependencies(Dependencies):
    """The production dependencies: the store is the state table itself (tests, benchmarks and the demo also
    write policies and read the history through it)."""

    store: StateTable


def build(config: Settings) -> AwsDependencies:
    ecs = Ecs()
    notifier = SnsNotifier(config.topic_arn)
    taskdefs = TaskDefinitions()
    store = StateTable(config.table)
    executor = Executor(ecs, notifier, restart_queue=SqsRestartQueue(config.restart_queue_url))
    executor.register("derive-revision", derive_revision_handler(ecs, taskdefs, ledger=store))
    shards = None
    if config.reconcile_queue_url:
        from autopilot.aws.shard_queue import SqsShardQueue  # the reconciler only

        shards = SqsShardQueue(config.reconcile_queue_url)
    return AwsDependencies(
        settings=config, store=store, ecs=ecs, notifier=notifier,
        alarms=CloudWatchAlarms(), executor=executor, taskdefs=taskdefs, shards=shards,
    )


@cache
def dependencies() -> AwsDependencies:
    """This sandbox's dependencies (settings validated on first use: a bad deploy fails loudly)."""
    return build(settings())
