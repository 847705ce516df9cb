"""Turns actions into AWS calls through the ports. The only place decisions meet the outside world.

Every handler here is safe to repeat: setting a desired count or a task definition twice leaves the
service as once. In dry-run mode mutating actions are announced but not performed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from autopilot.models.actions import (
    Action,
    BaseAction,
    DeriveRevision,
    EnqueueRestart,
    Notify,
    Recycle,
    RollBack,
    RunTask,
    SetCapacityStrategy,
    SetDesiredCount,
)
from autopilot.ports import (
    DerivationLedgerPort,
    EcsPort,
    NotifierPort,
    RestartQueuePort,
    RunTaskFailed,
    TaskDefinitionsPort,
    utcnow,
)

__all__ = ["Executor", "Handler", "RunTaskFailed", "derive_revision_handler"]  # RunTaskFailed: re-exported

Handler = Callable[[Any], list[str]]


class Executor:
    """Executes actions (``ports.ExecutorPort``); returns the AWS calls each made (``dry-run:`` prefixed when only
    described)."""

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
            "enqueue-restart": self._enqueue_restart,
            "run-task": self._run_task,
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
                announced = self.announce(action, dry_run=True)
                if announced != "sns:Publish":  # a failed announcement is audited; a dry run lists AWS calls only
                    calls.append(announced)
                continue
            calls += handler(action)
            if action.mutating and not getattr(action, "requeue", False):
                calls.append(self.announce(action))
        return calls

    def announce(self, action: BaseAction, dry_run: bool = False) -> str:
        """Announce an action (done, or with ``dry_run`` only described); the call made, as audited."""
        sentence = ("[dry-run] would have: " if dry_run else "") + action.describe()
        return self.publish(sentence, sentence, {**action.model_dump(mode="json"), "dryRun": dry_run},
                            what=getattr(action, "kind", type(action).__name__))

    def publish(self, subject: str, message: str, detail: dict[str, Any], what: str = "notify") -> str:
        """Every notification goes through here: published, or counted as failed, never raised.

        A failed publish (after botocore's retries) must neither undo nor repeat what was decided: raising
        would release an action's claim and fail the invocation, and the retry would decide and do it again
        (a second scale-out on top of the first), or find a notify-only event applied and stay silent. The
        failure is logged, counted (metric NotificationFailed, alarmed in template.yaml) and returned as the
        call made, which the audit trail keeps (``autopilot history`` shows what was decided either way).
        """
        try:
            self.notifier.publish(subject, message, detail)
        except Exception as exc:
            from autopilot.observability import MetricUnit, logger, metrics

            logger.exception("a notification could not be published", extra={"action": what})
            metrics.add_metric(name="NotificationFailed", unit=MetricUnit.Count, value=1)
            return f"sns:Publish failed ({type(exc).__name__})"
        return "sns:Publish"

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
        return [self.publish(action.subject, action.describe(), {**action.detail, "kind": "notify"})]

    def _enqueue_restart(self, action: EnqueueRestart) -> list[str]:
        if self.restart_queue is None:
            raise RuntimeError("no restart queue configured: cannot queue a restart")
        dedup = f"{action.message.get('lineage', '-')}#{action.message.get('sequence', '-')}"
        self.restart_queue.send(action.message, action.delay_seconds, dedup)
        return ["sqs:SendMessage"]

    def _run_task(self, action: RunTask) -> list[str]:
        result = self.ecs.run_task(action.request)
        if not result.task_arns:
            raise RunTaskFailed(result.failures)
        return ["ecs:RunTask"]


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


def derive_revision_handler(ecs: EcsPort, taskdefs: TaskDefinitionsPort, ledger: DerivationLedgerPort | None = None,
                            clock: Callable[[], datetime] = utcnow) -> Handler:
    """The executor for ``derive-revision`` (register with ``Executor.register``; wiring does).

    RegisterTaskDefinition has no idempotency token; a step that failed after registering (UpdateService
    throttled) must reuse its revision on the retry, never register a twin, whatever the family registered
    meanwhile: the ``ledger`` (the state store) is asked first; if the revision is not recorded there (the
    register answer itself was lost), every revision newer than the base is looked at (its tags); only then
    is it registered, one attempt at a time (``register_derived``), and recorded at once. Then the service
    is rolled to it.
    """
    def handle(action: DeriveRevision) -> list[str]:
        # Loaded on the first derived revision: functions that never derive one do not import it.
        from autopilot.decide.taskdef import Changes, family_of, register_request, revision_number

        calls: list[str] = []  # AWS calls beyond our own table, as every action audits them
        arn = ledger.find_derivation(action.derivation_id) if ledger is not None else None
        if arn is None:
            base = taskdefs.describe(action.base_task_definition)
            calls.append("ecs:DescribeTaskDefinition")
            request = register_request(
                base.task_definition, base.tags,
                Changes(container_memory=dict(action.container_memory),
                        container_memory_reservation=dict(action.container_memory_reservation),
                        task_memory=action.task_memory, task_cpu=action.task_cpu),
                derived_from=str(base.task_definition.get("taskDefinitionArn", action.base_task_definition)),
                reason=action.reason, derivation_id=action.derivation_id)
            family = family_of(base.task_definition)
            base_revision = base.task_definition.get("revision")
            newer_than = int(base_revision) if base_revision is not None else revision_number(
                action.base_task_definition)
            found = taskdefs.find_derived(family, action.derivation_id, newer_than)
            calls += ["ecs:ListTaskDefinitions"] * found.list_calls
            calls += ["ecs:DescribeTaskDefinition"] * found.describe_calls
            if found.arn is None:
                found = taskdefs.register_derived(request, family, action.derivation_id, newer_than)
                calls.append("ecs:RegisterTaskDefinition")
            arn = found.arn
            assert arn is not None
            if ledger is not None:
                try:
                    ledger.record_derivation(action.derivation_id, arn, clock())
                except Exception:  # the tag lookup still finds it; the step goes on
                    from autopilot.observability import logger

                    logger.exception("could not record a derived revision", extra={"arn": arn})
        ecs.update_service(action.cluster, action.service, taskDefinition=arn)
        calls.append("ecs:UpdateService")
        return calls

    return handle
