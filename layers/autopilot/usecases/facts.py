"""Facts on demand for the healing decisions: a pure decision asks (``decide.healing.Need``), this fetches.

Shared by the healer's use case and the reconciler's Spot hold hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopilot.decide.healing import Facts, Need, Outcome
from autopilot.models.actions import Decision
from autopilot.models.state import ServiceState
from autopilot.ports import Dependencies

MAX_FACT_ROUNDS = 3  # a decision asks for at most: service, then task definition

Fetch = Callable[[Need, Facts], Facts]


def resolve(decide: Callable[[Facts], Outcome], fetch: Fetch) -> tuple[Decision, ServiceState]:
    """Run a pure decision, fetching each fact it asks for (at most once each)."""
    facts = Facts()
    for _ in range(MAX_FACT_ROUNDS):
        out = decide(facts)
        if not isinstance(out, Need):
            return out
        facts = fetch(out, facts)
    raise RuntimeError("a healing decision kept asking for facts")


def fetcher(deps: Dependencies, cluster: str, service: str, task_definition: str | None) -> Fetch:
    """Fetches for one service; answers are kept, so a retry after a concurrent update asks AWS no more."""
    cache: dict[Need, Facts] = {}

    def fetch(need: Need, facts: Facts) -> Facts:
        if need == Need.SERVICE:
            if Need.SERVICE not in cache:
                view = deps.ecs.describe_services(cluster, [service]).get(service)
                cache[need] = Facts(service=view, service_fetched=True)
            got = cache[need]
            return Facts(service=got.service, service_fetched=True, task_definition=facts.task_definition,
                         task_definition_fetched=facts.task_definition_fetched)
        if Need.TASK_DEFINITION not in cache:
            described: dict[str, Any] | None = None
            if task_definition is not None and deps.taskdefs is not None:
                described = deps.taskdefs.describe(task_definition).task_definition
            cache[need] = Facts(task_definition=described, task_definition_fetched=True)
        got = cache[need]
        return Facts(service=facts.service, service_fetched=facts.service_fetched,
                     task_definition=got.task_definition, task_definition_fetched=True)

    return fetch
