"""The small interfaces the use cases work through, and the bundle of them a use case gets.

``autopilot.aws`` implements the AWS ports with boto3, ``autopilot.store`` the state store, ``autopilot.execute``
the executor; ``autopilot.wiring`` (the composition root) builds them. Use cases depend on this module only,
so tests and the demo may pass fakes of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from autopilot.backoff import real_sleep

if TYPE_CHECKING:  # types only: the models load with the use cases that need them
    from autopilot.models.actions import Action
    from autopilot.models.audit import AuditEntry
    from autopilot.models.place import Place, Registration
    from autopilot.models.policy import ServicePolicy, TaskPolicy
    from autopilot.models.state import ServiceState, Snapshot
    from autopilot.settings import Settings


# Views of what AWS answered, reduced to what decisions use. Plain dataclasses: the adapters build them from
# boto3's answers (already parsed and typed by botocore), nothing to validate, and no pydantic to import.


@dataclass(kw_only=True)
class Deployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(kw_only=True)
class ServiceView:
    """What DescribeServices says about a service, reduced to what decisions use."""

    cluster: str
    service: str
    arn: str | None = None
    status: str = "ACTIVE"
    desired_count: int
    running_count: int = 0
    task_definition: str
    launch_type: str | None = None
    capacity_provider_strategy: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    circuit_breaker_rollback: bool = False


@dataclass(kw_only=True)
class AlarmView:
    name: str
    state: str
    state_reason_data: str | None = None
    state_updated: str | None = None
    threshold: float | None = None
    metric_query: list[dict[str, Any]] = field(default_factory=list)  # GetMetricData queries for the alarm's metric


@dataclass(kw_only=True)
class RunTaskResult:
    """RunTask's answer: the tasks started and the ``failures[]`` (capacity, placement) it reported."""

    task_arns: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


class EcsPort(Protocol):
    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]: ...
    def set_desired_count(self, cluster: str, service: str, desired: int) -> None: ...
    def update_service(self, cluster: str, service: str, **changes: Any) -> None: ...
    def run_task(self, request: dict[str, Any]) -> RunTaskResult: ...


class AlarmsPort(Protocol):
    def describe_alarms(self, names: list[str]) -> dict[str, AlarmView]: ...
    def latest_values(self, alarms: list[AlarmView]) -> dict[str, float]: ...


class NotifierPort(Protocol):
    def publish(self, subject: str, message: str, detail: dict[str, Any]) -> None: ...


class RestartQueuePort(Protocol):
    def send(self, body: dict[str, Any], delay_seconds: int, dedup_id: str) -> None: ...


class ShardQueuePort(Protocol):
    """The reconciler's fan-out queue: each message is one shard of a run (usecases/shards.py)."""

    def send_batch(self, messages: list[tuple[dict[str, Any], int]]) -> None:
        """Send (body, delay in seconds) messages, ten per SendMessageBatch; raise if any was not sent."""
        ...


@dataclass(kw_only=True)
class DescribedTaskDefinition:
    """DescribeTaskDefinition's answer with include=['TAGS']: the task definition as AWS returned it."""

    task_definition: dict[str, Any]
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(kw_only=True)
class DerivedLookup:
    """Result of looking for (or registering) a derived revision, and what it cost."""

    arn: str | None
    describe_calls: int = 0
    list_calls: int = 1
    registered: bool = False  # RegisterTaskDefinition made it (else an earlier attempt's was found)


class TaskDefinitionsPort(Protocol):
    def describe(self, task_definition: str) -> DescribedTaskDefinition: ...
    def register(self, request: dict[str, Any]) -> str: ...
    def find_derived(self, family: str, derivation_id: str, newer_than: int | None) -> DerivedLookup: ...

    def register_derived(self, request: dict[str, Any], family: str, derivation_id: str,
                         newer_than: int | None) -> DerivedLookup:
        """Register once: an attempt whose outcome is unknown is looked up (``find_derived``) before another."""
        ...


class DerivationLedgerPort(Protocol):
    """The derivation ledger (kept by the state store): the revision registered for a derivation id, recorded
    as soon as RegisterTaskDefinition answered (a small item with a TTL), so a retry of a step that failed
    after registering finds it whatever else the family registered meanwhile."""

    def find_derivation(self, derivation_id: str) -> str | None: ...
    def record_derivation(self, derivation_id: str, arn: str, now: datetime) -> None: ...


class ConcurrentUpdate(Exception):
    """Another invocation changed the state since it was read: reload and decide again."""


class PolicyOwned(Exception):
    """The policy is declared by someone else: a CloudFormation resource (``owner``), or the CLI (None)."""

    def __init__(self, key: str, owner: str | None) -> None:
        from autopilot.models.place import split_target

        self.key, self.owner = key, owner
        found = split_target(key)
        name = key if found is None else f"{found[1]}/{found[2]}" + (f" in {found[0]}" if found[0] else "")
        by = f"the CloudFormation resource {owner_label(owner)}" if owner else "autopilot apply (the CLI)"
        super().__init__(f"the policy of {name} is declared by {by}: change or remove it there")


def owner_label(owner: str) -> str:
    """``stack-name/LogicalId`` of an owner ``arn:...:stack/NAME/ID#LogicalId``."""
    stack, _, logical = owner.partition("#")
    name = stack.split(":stack/", 1)[1].split("/", 1)[0] if ":stack/" in stack else stack
    return f"{name}/{logical}" if logical else name


class StateStorePort(Protocol):
    """The state table as the use cases see it: policies, per-service state (conditional writes), audit."""

    def get_policy(self, key: str) -> ServicePolicy | TaskPolicy | None: ...
    def list_policies(self) -> list[ServicePolicy | TaskPolicy]: ...
    def policies_for_alarm(self, alarm: str) -> list[ServicePolicy]: ...

    def names_place(self, place: Place) -> bool:
        """Whether any stored policy names ``place`` (an account and region other than the hub's own)."""
        ...

    def registration(self) -> Registration:
        """The members registered with the hub, and the role (and external id) it assumes there."""
        ...

    def load_state(self, key: str) -> Snapshot: ...
    def load_states(self, keys: Iterable[str]) -> dict[str, Snapshot]: ...

    def save_state(self, key: str, state: ServiceState, expected_version: int,
                   audit: list[AuditEntry] | None = None) -> int:
        """Write ``state`` if the stored version is still ``expected_version`` (else raise ConcurrentUpdate)."""
        ...

    def audit(self, *entries: AuditEntry) -> None: ...

    def load_forecasts(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Stored forecasts by (policy key, rule key) (targetTracking's predictive lever)."""
        ...

    def save_forecast(self, key: str, rule: str, document: dict[str, Any], now: datetime,
                      keep: timedelta = ...) -> None: ...

    # The derivation ledger (DerivationLedgerPort).
    def find_derivation(self, derivation_id: str) -> str | None: ...
    def record_derivation(self, derivation_id: str, arn: str, now: datetime) -> None: ...


class PolicyStorePort(Protocol):
    """What declares policies writes: the policy custom resource (the CLI uses the state table itself)."""

    def get_policy(self, key: str) -> ServicePolicy | TaskPolicy | None: ...

    def put_policy(self, policy: ServicePolicy | TaskPolicy, now: datetime, attempts: int = ...,
                   audit: Callable[[dict[str, Any] | None], AuditEntry] | None = None,
                   owner: str | None = None) -> str: ...

    def delete_policy(self, key: str, audit: Callable[[dict[str, Any] | None], AuditEntry] | None = None,
                      attempts: int = ..., owner: str | None = None) -> bool: ...

    def put_registration(self, registration: Registration, now: datetime) -> None: ...
    def delete_registration(self) -> None: ...


class RunTaskFailed(RuntimeError):
    """RunTask started no task: its ``failures[]`` (no capacity, placement) say why."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self.failures = failures
        reasons = "; ".join(f"{f.get('reason', '?')}" + (f" ({f['detail']})" if f.get("detail") else "")
                            for f in failures) or "no task and no failure reported"
        super().__init__(f"RunTask started no task: {reasons}"[:500])


class ExecutorPort(Protocol):
    def execute(self, actions: tuple[Action, ...] | list[Action], mode: str) -> list[str]:
        """Run the actions in order (mutating ones only in ``enforce`` mode); the AWS calls made."""
        ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    """What a use case works with: settings, the ports and the clock (built by ``autopilot.wiring``).

    ``ecs``, ``alarms``, ``taskdefs`` and ``executor`` act in the hub's own account and region; ``at(place)``
    gives the same bundle acting in a member's (issue 13). The store, the notifier and the clock are the hub's
    wherever a service lives.
    """

    settings: Settings
    store: StateStorePort
    ecs: EcsPort
    notifier: NotifierPort
    alarms: AlarmsPort
    executor: ExecutorPort
    clock: Callable[[], datetime] = field(default=utcnow)
    taskdefs: TaskDefinitionsPort | None = None  # derived revisions (rollouts, OOM right-sizing)
    sleep: Callable[[float], None] = field(default=real_sleep)  # back-off between retries (tests inject one)
    shards: ShardQueuePort | None = None  # the reconciler's fan-out queue (only the reconciler has one)
    home: Place | None = None  # the hub's own account and region (None: unknown, every event counts as home)
    places: Callable[[Place], Dependencies] | None = None  # the ports acting in a member place

    def at(self, place: Place | None) -> Dependencies:
        """The dependencies acting in ``place`` (None: the hub's own account and region)."""
        if place is None or place == self.home:
            return self
        if self.places is None:
            raise RuntimeError(f"no access to {place} configured: member places need the AWS wiring")
        return self.places(place)
