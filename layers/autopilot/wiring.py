"""Composition root: builds each function's dependencies from the environment, once per sandbox.

Only the handlers (``functions/*/app.py``) and the tooling import this module; use cases get a
``ports.Dependencies`` and never reach for the adapters themselves. Tests and the demo build
``Dependencies`` with ``build`` (on moto) or by hand (with fakes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from autopilot.aws.clients import MemberAccess
from autopilot.aws.cloudwatch import CloudWatchAlarms
from autopilot.aws.ecs import Ecs
from autopilot.aws.notifier import SnsNotifier
from autopilot.aws.restart_queue import SqsRestartQueue
from autopilot.aws.taskdefs import TaskDefinitions
from autopilot.execute import Executor, derive_revision_handler
from autopilot.models.place import Place
from autopilot.ports import Dependencies, NotifierPort, RestartQueuePort, utcnow
from autopilot.settings import Settings, settings
from autopilot.store.table import StateTable

__all__ = ["AwsDependencies", "Dependencies", "build", "dependencies", "utcnow"]


@dataclass
class AwsDependencies(Dependencies):
    """The production dependencies: the store is the state table itself (tests, benchmarks and the demo also
    write policies and read the history through it)."""

    store: StateTable
    _placed: dict[tuple[Place, MemberAccess], AwsDependencies] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def in_place(self, place: Place) -> AwsDependencies:
        """The same dependencies acting in a member place as the member's role (built once per place)."""
        registration = self.store.registration()
        access = MemberAccess(role_arn=registration.role_arn(place), external_id=registration.external_id)
        with self._lock:
            found = self._placed.get((place, access))
            if found is None:
                restart_queue = self.executor.restart_queue if isinstance(self.executor, Executor) else None
                found = replace(self, **_ports(self.store, self.notifier, restart_queue, place, access),
                                clock=lambda: self.clock(),  # the hub's clock, even when a test replaces it
                                _placed={}, _lock=threading.Lock(), places=None)
                self._placed[(place, access)] = found
            return found


def _ports(store: StateTable, notifier: NotifierPort, restart_queue: RestartQueuePort | None,
           place: Place | None = None, access: MemberAccess | None = None) -> dict[str, Any]:
    """ECS, alarms, task definitions and the executor acting in ``place`` (None: where the process runs)."""
    ecs = Ecs(place=place, access=access)
    taskdefs = TaskDefinitions(place=place, access=access)
    executor = Executor(ecs, notifier, restart_queue=restart_queue)
    executor.register("derive-revision", derive_revision_handler(ecs, taskdefs, ledger=store.ledger_at(place)))
    return {"ecs": ecs, "taskdefs": taskdefs, "executor": executor,
            "alarms": CloudWatchAlarms(place=place, access=access)}


def build(config: Settings) -> AwsDependencies:
    notifier = SnsNotifier(config.topic_arn)
    store = StateTable(config.table)
    shards = None
    if config.reconcile_queue_url:
        from autopilot.aws.shard_queue import SqsShardQueue  # the reconciler only

        shards = SqsShardQueue(config.reconcile_queue_url)
    # The hub's own place comes from the environment the template sets (no call to AWS: a SnapStart snapshot
    # holds no connection). Without it every event counts as the hub's own, as before issue 13.
    built = AwsDependencies(settings=config, store=store, notifier=notifier, home=config.home, shards=shards,
                            **_ports(store, notifier, SqsRestartQueue(config.restart_queue_url)))
    built.places = built.in_place
    return built


@cache
def dependencies() -> AwsDependencies:
    """This sandbox's dependencies (settings validated on first use: a bad deploy fails loudly)."""
    return build(settings())
