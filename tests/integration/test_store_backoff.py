"""Issue 11, finding 10: the store's own retries back off with jitter (botocore retries neither of these).

- BatchGetItem's ``UnprocessedKeys`` (DynamoDB throttled part of the batch) are asked for again after a
  jittered pause, and a batch that stays unprocessed fails clearly instead of spinning;
- a policy write that lost its condition to a concurrent apply waits before reading and trying again.
The sleeper is injected: nothing sleeps here.
"""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from autopilot.models.state import ServiceState
from autopilot.store import table
from autopilot.store.table import StateTable


class Throttled:
    """The DynamoDB client, but BatchGetItem answers only the first ``serve`` keys ``times`` times."""

    def __init__(self, inner: Any, times: int, serve: int = 1) -> None:
        self.inner, self.times, self.serve = inner, times, serve
        self.batch_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.batch_calls += 1
        if self.times <= 0:
            return self.inner.batch_get_item(RequestItems=RequestItems)
        self.times -= 1
        (table, request), = RequestItems.items()
        first, rest = request["Keys"][:self.serve], request["Keys"][self.serve:]
        answer = (self.inner.batch_get_item(RequestItems={table: {**request, "Keys": first}}) if first
                  else {"Responses": {table: []}})
        answer["UnprocessedKeys"] = {table: {**request, "Keys": rest}} if rest else {}
        return answer


def sleeping(store: StateTable, slept: list[float]) -> StateTable:
    store.sleep = slept.append  # the injected sleeper (StateTable(sleep=...)): nothing sleeps in tests
    return store


def seeded(stack: Any, n: int) -> StateTable:
    store = StateTable(stack.ref("StateTable"))
    for i in range(n):
        store.save_state(f"SVC#prod#s{i}", ServiceState(paused_reason=f"s{i}"), 0)
    return store


def test_unprocessed_keys_are_asked_again_after_a_jittered_pause(stack: Any) -> None:
    seeded(stack, 5)
    slept: list[float] = []
    flaky = Throttled(client("dynamodb"), times=3)
    store = sleeping(StateTable(stack.ref("StateTable"), dynamodb_client=flaky), slept)
    found = store.load_states(f"SVC#prod#s{i}" for i in range(5))
    assert {k: s.state.paused_reason for k, s in found.items()} == {f"SVC#prod#s{i}": f"s{i}" for i in range(5)}
    assert flaky.batch_calls == 4
    assert len(slept) == 3 and all(s >= 0 for s in slept)
    assert len(set(slept)) == 3, "jittered, not a fixed delay"


def test_keys_that_stay_unprocessed_fail_clearly(stack: Any) -> None:
    seeded(stack, 3)
    slept: list[float] = []
    throttled = Throttled(client("dynamodb"), times=10**6, serve=0)
    store = sleeping(StateTable(stack.ref("StateTable"), dynamodb_client=throttled), slept)
    with pytest.raises(RuntimeError, match="unprocessed after"):
        store.load_states(f"SVC#prod#s{i}" for i in range(3))
    assert len(slept) == table.UNPROCESSED_ATTEMPTS - 1


def test_a_policy_write_that_lost_to_a_concurrent_apply_backs_off(stack: Any, clock: Any) -> None:
    slept: list[float] = []
    store = sleeping(StateTable(stack.ref("StateTable")), slept)
    policy = ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"scaling": {"minTasks": 1, "maxTasks": 4, "rules": [{"alarm": "a", "exactCapacity": 2}]}}})
    other = policy.model_copy(update={"spec": policy.spec.model_copy(update={"mode": "dry-run"})})
    real = store._put_policy_once
    raced = {"n": 0}

    def put_once(p: Any, now: Any, audit: Any, owner: Any = None) -> str:
        if raced["n"] < 2:  # a concurrent apply writes between our read and our conditional write
            raced["n"] += 1
            StateTable(stack.ref("StateTable")).put_policy(other if raced["n"] % 2 else policy, now)
            from autopilot.ports import ConcurrentUpdate

            raise ConcurrentUpdate(p.key)
        return real(p, now, audit, owner)

    store._put_policy_once = put_once  # type: ignore[method-assign]
    assert store.put_policy(policy, clock()) in ("created", "updated", "unchanged")
    assert len(slept) == 2
