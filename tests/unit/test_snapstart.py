"""SnapStart hooks: registered only where the runtime offers them; the warm-up builds what the first event
would; after a restore, uniqueness is restored and clients with static credentials are dropped."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from autopilot import snapstart
from autopilot.aws import clients


@pytest.fixture
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from autopilot import settings, wiring

    monkeypatch.setenv("AUTOPILOT_TABLE", "snapstart-test")
    settings.settings.cache_clear()
    wiring.dependencies.cache_clear()
    clients.reset_clients()
    monkeypatch.setattr(clients, "_session", None)
    yield
    clients.reset_clients()
    settings.settings.cache_clear()
    wiring.dependencies.cache_clear()


def test_nothing_is_registered_without_the_runtime_library() -> None:
    assert snapstart.prepare_snapshot(("dynamodb",)) is False  # snapshot_restore_py exists on Lambda only


def test_the_hooks_are_registered_with_the_functions_clients() -> None:
    before: list[tuple[Any, ...]] = []
    after: list[Any] = []
    assert snapstart.prepare_snapshot(["dynamodb", "ecs"], register=lambda *a: before.append(a),
                                      after=after.append)
    assert before == [(snapstart.warm_up, ("dynamodb", "ecs"))]
    assert after == [snapstart.after_restore]


def test_the_warm_up_builds_dependencies_clients_and_every_validator(fresh_clients: None) -> None:
    from pydantic import BaseModel

    import autopilot.usecases.heal
    import autopilot.usecases.reconcile
    import autopilot.usecases.restart
    import autopilot.usecases.rollout  # noqa: F401  (every model a handler loads)
    from autopilot import wiring

    snapstart.warm_up(("dynamodb", "sns"))
    assert wiring.dependencies.cache_info().currsize == 1
    assert set(clients._clients) == {"dynamodb", "sns"}

    def models(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from models(sub)

    ours = [m for m in models(BaseModel) if m.__module__.startswith("autopilot.")]
    assert len(ours) > 20
    assert [m.__qualname__ for m in ours if not m.__pydantic_complete__] == []
    assert snapstart.build_validators() == 0  # nothing left to build


def test_after_a_restore_static_credentials_are_not_reused(fresh_clients: None) -> None:
    dynamodb = clients.client("dynamodb")
    assert isinstance(clients._session.get_credentials(), Credentials)  # type: ignore[union-attr]
    snapstart.after_restore()
    assert clients._session is None and clients._clients == {}
    assert clients.client("dynamodb") is not dynamodb


def test_after_a_restore_refreshing_credentials_keep_the_clients(fresh_clients: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    dynamodb = clients.client("dynamodb")
    refreshing = RefreshableCredentials("a", "b", "c", expiry_time=None, refresh_using=lambda: {},  # type: ignore[arg-type]
                                        method="container-role")
    monkeypatch.setattr(clients._session, "get_credentials", lambda: refreshing)
    assert clients.refresh_after_restore() is True
    assert clients.client("dynamodb") is dynamodb


def test_after_a_restore_random_is_reseeded(fresh_clients: None) -> None:
    random.seed(7)
    snapshot_draw = random.random()
    random.seed(7)
    snapstart.after_restore()
    assert random.random() != snapshot_draw


def test_adapters_follow_a_replaced_client(fresh_clients: None) -> None:
    from autopilot.aws.ecs import Ecs
    from autopilot.store.table import StateTable

    ecs, table = Ecs(), StateTable("t")
    first = (ecs.client, table.client)
    clients.reset_clients()
    assert ecs.client is not first[0] and table.client is not first[1]
