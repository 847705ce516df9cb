"""Duplicates and order: EventBridge, CloudWatch and SQS deliver at least once and not in order.

For each function, every one of its ``events/`` samples (against a world where each one matters: managed
services, rules for its alarms, the task definitions it names) is delivered 1 to 5 times, shuffled among
the others (seeded). The AWS mutations (UpdateService with its parameters, RegisterTaskDefinition,
RunTask, SendMessage, SNS Publish, all compared with every parameter) must equal those of a single
delivery of each event, in the order their first copies arrived: duplicates anywhere in the stream are
no-ops, whatever came between. (Against one fixed order instead, the claim would be false by design: a
scale-in before or after a scale-out, a crash loop before or after an OOM bump, decide differently.) The
runs together must make every kind of mutation the function has: the samples matter.

The one documented exception is the restarter's re-queue of a message that is not due yet: it keeps no
state (the message carries it), so each copy of such a message is sent back once (an extra SendMessage
per duplicate); the copies are deduplicated when due. The proof drains the queue and shows that every
copy together still starts exactly one task.

Each run starts from a fresh emulator (moto reset, the template's stack created again) with the same
fixed clock; the handlers are the real ``functions/*/app.py`` with production wiring.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot_tools.localstack import create_stack
from tests.conftest import sample
from tests.proofs.support import (
    AwsLog,
    default_network,
    healer_world,
    invoke,
    reconciler_world,
    restarter_sample,
    restarter_world,
    rollout_world,
    scaler_world,
    sqs_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
SEEDS = (20261126, 7)


def names(prefix: str) -> list[str]:
    return sorted(p.name for p in EVENTS.glob(f"{prefix}-*.json"))


def first_occurrences(stream: list[str]) -> list[str]:
    return list(dict.fromkeys(stream))


def shuffled_with_duplicates(items: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    stream = [name for name in items for _ in range(rng.randint(1, 5))]
    rng.shuffle(stream)
    return stream


@pytest.fixture
def world(deps: Any, stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Rebuilds the emulator from nothing for each run; records the mutations of the handlers only."""
    from moto.moto_api._internal.models import moto_api_backend

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # a fresh EC2 backend loads AMIs: 0.4 s each

    log = AwsLog()
    start = deps.clock.now

    def fresh(build: Callable[..., Any]) -> Any:
        moto_api_backend.reset()
        create_stack(client, parameters={"ManagedClusters": "prod,batch"}, template=stack.template)
        deps.clock.now = start
        made = build(deps)
        log.attach()
        log.clear()
        subnet, group = default_network()  # moto makes new ids after each reset
        log.aliases = {subnet: "<default-subnet>", group: "<default-security-group>"}
        return made

    return log, fresh


def explain(seed: int, stream: list[str], expected: list[str], actual: list[str]) -> str:
    diff = "\n".join(difflib.unified_diff(expected, actual, "one delivery each",
                                          "duplicated and shuffled", lineterm="", n=0))
    return f"seed {seed}: {len(stream)} deliveries, in this order: {stream}\n{diff}"


def run(log: AwsLog, function: str, events: dict[str, Any], order: list[str]) -> list[str]:
    with log.recording():
        for name in order:
            invoke(function, events[name])
    return log.signatures()


# ------------------------------------------------------------------------------- the three EventBridge functions
CASES = {  # world, samples, the mutations they must make between them, seeds (the healer's 22 samples: one)
    "scaler": (scaler_world, names("scaler"), {"ecs:UpdateService", "sns:Publish"}, SEEDS),
    "healer": (healer_world, names("healer"),
               {"ecs:UpdateService", "ecs:RegisterTaskDefinition", "sqs:SendMessage", "sns:Publish"}, SEEDS[:1]),
    "rollout": (rollout_world, names("rollout"), {"ecs:UpdateService", "sns:Publish"}, SEEDS),
}


@pytest.mark.parametrize("function", sorted(CASES))
def test_duplicated_and_shuffled_samples_make_the_mutations_of_one_delivery(world: Any, function: str) -> None:
    log, fresh = world
    build, samples, kinds, seeds = CASES[function]
    events = {name: sample(name) for name in samples}

    fresh(build)  # backwards (in file order a crash loop pre-empts the OOM bump)
    run(log, function, events, samples[::-1])
    made = {c.short() for c in log.mutations()}
    for seed in seeds:
        stream = shuffled_with_duplicates(samples, seed)
        fresh(build)
        expected = run(log, function, events, first_occurrences(stream))
        made |= {c.short() for c in log.mutations()}
        fresh(build)
        actual = run(log, function, events, stream)
        assert actual == expected, explain(seed, stream, expected, actual)
    assert kinds <= made, "the samples must matter: each kind of mutation happens"


def test_every_sample_of_an_event_function_is_covered() -> None:
    # policy-resource-*: CloudFormation's requests; their retries are proven idempotent in
    # tests/integration/test_policy_resource.py (test_cloudformations_retries_are_idempotent).
    assert {n.split("-", 1)[0] for n in names("*")} == {"scaler", "healer", "rollout", "restarter", "policy"}


# ------------------------------------------------------------------------------- the restarter (SQS)
def test_redelivered_restart_messages_start_one_task(world: Any, deps: Any, stack: Any) -> None:
    log, fresh = world
    samples = names("restarter")

    def events() -> dict[str, Any]:
        return {name: restarter_sample(name, net["subnet"], net["group"]) for name in samples}

    made: set[str] = set()
    for order in (samples, samples[::-1]):
        net = fresh(restarter_world)
        run(log, "restarter", events(), order)
        made |= {c.short() for c in log.mutations()}
    assert made >= {"ecs:RunTask", "sqs:SendMessage", "sns:Publish"}

    for seed in SEEDS:
        stream = shuffled_with_duplicates(samples, seed)
        net = fresh(restarter_world)
        expected = run(log, "restarter", events(), first_occurrences(stream))
        net = fresh(restarter_world)
        actual = run(log, "restarter", events(), stream)
        runs = [s for s in actual if s.startswith("ecs:RunTask")]
        assert runs == [s for s in expected if s.startswith("ecs:RunTask")], explain(seed, stream, expected, actual)
        # Everything else but the stateless re-queues is identical too.
        assert [s for s in actual if "sqs:SendMessage" not in s] == [s for s in expected if "sqs:SendMessage" not in s]
        # Drain what was re-queued, once it is due: the copies start nothing more.
        requeued = [c.params["MessageBody"] for c in log.mutations() if c.short() == "sqs:SendMessage"]
        deps.clock.advance(timedelta(days=365 * 80).total_seconds())
        log.clear()
        with log.recording():
            for n, body in enumerate(requeued):
                invoke("restarter", sqs_event((f"requeued-{n}", body)))
        assert len(runs) + log.count("ecs:RunTask") == 1, f"seed {seed}: one lineage, one attempt, one task"


# ------------------------------------------------------------------------------- the reconciler (schedule)
def test_repeated_schedule_ticks_act_once_per_tick(world: Any, deps: Any) -> None:
    """The schedule is at-least-once too: each tick delivered 1-5 times acts as one delivery of it."""
    log, fresh = world
    ticks = [{"id": f"tick-{n}", "source": "aws.scheduler", "detail-type": "Scheduled Event"} for n in range(6)]

    def run_ticks(copies: list[int]) -> list[str]:
        with log.recording():
            for tick, times in zip(ticks, copies, strict=True):
                for _ in range(times):
                    invoke("reconciler", tick)
                deps.clock.advance(30)
        return log.signatures()

    fresh(reconciler_world)
    once = run_ticks([1] * len(ticks))
    assert sum("ecs:UpdateService" in s for s in once) >= 3  # scale-outs after each cooldown, bounds repaired
    rng = random.Random(SEEDS[0])
    fresh(reconciler_world)
    assert run_ticks([rng.randint(1, 5) for _ in ticks]) == once
