"""Fixtures of the proofs: the template's stack on a moto *server* (real HTTP, one request at a time),
with production wiring, the call log and the fault injector attached to the shared clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.proofs.support import AwsLog, Faults, SerialMotoServer, no_retry_delays, template


@pytest.fixture
def stack(aws: None) -> Any:
    """tests/conftest.py's ``stack`` (the template's table, queues and topic on in-process moto), with the
    template parsed once per session instead of once per test."""
    from autopilot.aws.clients import client
    from autopilot_tools.localstack import create_stack

    local = create_stack(client, parameters={"ManagedClusters": "prod,batch"}, template=template())
    local.template = template()  # type: ignore[attr-defined]
    return local


@pytest.fixture(scope="session")
def moto_server() -> Iterator[SerialMotoServer]:
    server = SerialMotoServer().start()
    yield server
    server.stop()


@dataclass
class Served:
    deps: Any
    stack: Any
    log: AwsLog
    faults: Faults
    server: SerialMotoServer


@pytest.fixture
def served(moto_server: SerialMotoServer, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A fresh emulator behind AWS_ENDPOINT_URL (as the demo runs), the stack created from template.yaml,
    ``wiring.dependencies()`` answering production wiring with the test's clock, and botocore's standard
    retry mode without its sleeps."""
    from autopilot import wiring
    from autopilot.aws.clients import client, reset_clients
    from autopilot.settings import Settings, settings
    from autopilot_tools.localstack import create_stack

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # EC2's backend loads AMIs otherwise (0.4 s)
    moto_server.reset()
    reset_clients()
    stack = create_stack(client, parameters={"ManagedClusters": "prod,batch"}, template=template())
    environment = stack.function_environment(template(), "ScalerFunction")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    wiring.dependencies.cache_clear()
    deps = wiring.build(Settings.from_env(environment))
    deps.clock = clock
    monkeypatch.setattr(wiring, "dependencies", lambda: deps)
    no_retry_delays(monkeypatch)
    yield Served(deps=deps, stack=stack, log=AwsLog().attach(), faults=Faults().attach(), server=moto_server)
    reset_clients()
    settings.cache_clear()
