"""Turns actions into AWS calls through the ports. The only place decisions meet the outside world.

Every handler here is safe to repeat: setting a desired count or a task definition twice leaves the
service as once. In dry-run mode mutating actions are announced but not performed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopilot.models.actions import Action, BaseAction, Notify, Recycle, RollBack, SetCapacityStrategy, SetDesiredCount
from autopilot.ports import EcsPort, NotifierPort, RestartQueuePort

Handler = Callable[[Any], list[str]]


class Executor:
    """Executes actions; returns the AWS calls each made (``dry-run:`` prefixed when only described)."""

    def __init__(self, ecs: EcsPort, notifier: NotifierPort, restart_queue: RestartQueuePort | None = None,
                 extra: dict[str, Handler] | None = None) -> None:
        self.ecs = ecs
        self.notifier = notifier
        self.restart_queue = restart_queue
        self._handlers: dict[str, Handler] = {
            "set-desired-count": self._set_desired_count,
            "rollback": self._rollback,
            "recycle": self._recycle,
            "set-capacity-strategy": self._set_capacity_strategy,
            "notify": self._notify,
            **(extra or {}),
        }

    def register(self, kind: str, handler: Handler) -> None:
        """Capabilities add executors for their own action kinds (derived revisions, restarts, ...)."""
        self._handlers[kind] = handler

    def execute(self, actions: tuple[Action, ...] | list[Action], mode: str) -> list[str]:
        """Run every action in order; an exception stops the rest and propagates (the event is retried)."""
        calls: list[str] = []
        for action in actions:
            handler = self._handlers.get(action.kind)
            if handler is None:
                raise NotImplementedError(f"no executor for action kind {action.kind!r}")
            if action.mutating and mode != "enforce":
                calls += [f"dry-run:{c}" for c in _planned_calls(action)]
                self.announce(action, dry_run=True)
                continue
            calls += handler(action)
            if action.mutating:
                self.announce(action)
                calls.append("sns:Publish")
        return calls

    def announce(self, action: BaseAction, dry_run: bool = False) -> None:
        sentence = ("[dry-run] would have: " if dry_run else "") + action.describe()
        self.notifier.publish(sentence, sentence, {**action.model_dump(mode="json"), "dryRun": dry_run})

    # ------------------------------------------------------------ handlers
    def _set_desired_count(self, action: SetDesiredCount) -> list[str]:
        self.ecs.set_desired_count(action.cluster, action.service, action.desired)
        return ["ecs:UpdateService"]

    def _rollback(self, action: RollBack) -> list[str]:
        self.ecs.update_service(action.cluster, action.service, taskDefinition=action.to_task_definition)
        return ["ecs:UpdateService"]

    def _recycle(self, action: Recycle) -> list[str]:
        self.ecs.update_service(action.cluster, action.service, forceNewDeployment=True)
        return ["ecs:UpdateService"]

    def _set_capacity_strategy(self, action: SetCapacityStrategy) -> list[str]:
        self.ecs.update_service(action.cluster, action.service, capacityProviderStrategy=action.strategy,
                                forceNewDeployment=True)
        return ["ecs:UpdateService"]

    def _notify(self, action: Notify) -> list[str]:
        self.notifier.publish(action.subject, action.describe(), {**action.detail, "kind": "notify"})
        return ["sns:Publish"]


_PLANNED: dict[str, list[str]] = {
    "set-desired-count": ["ecs:UpdateService"],
    "rollback": ["ecs:UpdateService"],
    "recycle": ["ecs:UpdateService"],
    "set-capacity-strategy": ["ecs:UpdateService"],
    "derive-revision": ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:UpdateService"],
    "enqueue-restart": ["sqs:SendMessage"],
    "run-task": ["ecs:RunTask"],
}


def _planned_calls(action: BaseAction) -> list[str]:
    return list(_PLANNED.get(getattr(action, "kind", ""), []))
