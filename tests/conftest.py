"""Shared fixtures: a moto-backed copy of the stack built from template.yaml, and sample events."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_EVENTS = ROOT / "tests" / "fixtures" / "aws-events"  # published AWS samples, unmodified (README there)
EVENTS = ROOT / "events"

# Never let a test reach a real account, whatever the developer's shell says.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "EcsAutopilot",
    "POWERTOOLS_SERVICE_NAME": "ecs-autopilot", "POWERTOOLS_LOG_LEVEL": "WARNING",
})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


def published(name: str) -> dict[str, Any]:
    """A sample event exactly as AWS published it (tests/fixtures/aws-events; some carry a UTF-8 BOM)."""
    return json.loads((PUBLISHED_EVENTS / name).read_text(encoding="utf-8-sig"))


def sample(name: str) -> dict[str, Any]:
    """One of the project's own events/ samples."""
    return json.loads((EVENTS / name).read_text())


def variant(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a published event with dotted-path fields changed: variant(e, **{"detail.state.value": "OK"})."""
    out = copy.deepcopy(event)
    for path, value in changes.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return out


ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's and the emulator's: the test deployment's own place


def in_account(event: dict[str, Any], account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """A copy of a published event as if it came from ``account`` and ``region`` (default: this deployment's,
    the emulator's): the envelope's account/accountId and region, and the account and region of the ARNs
    that name the event's resource (resources[], alarmArn). Published samples come from many accounts;
    events from a place this deployment does not act in are ignored (issues 11 and 13), which is not what most
    tests are about."""
    out = copy.deepcopy(event)

    def relocate(arn: str) -> str:
        parts = arn.split(":")
        if len(parts) >= 6 and parts[0] == "arn":
            parts[3], parts[4] = region, account
        return ":".join(parts)

    for key in ("account", "accountId"):
        if key in out:
            out[key] = account
    if "region" in out:
        out["region"] = region
    if isinstance(out.get("resources"), list):
        out["resources"] = [relocate(r) if isinstance(r, str) else r for r in out["resources"]]
    if isinstance(out.get("alarmArn"), str):
        out["alarmArn"] = relocate(out["alarmArn"])
    return out


@pytest.fixture
def published_event():
    return published


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for the test; fresh state each time."""
    from moto import mock_aws

    from autopilot.aws.clients import reset_clients

    reset_clients()
    with mock_aws():
        yield
    reset_clients()


class FixedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))


@pytest.fixture
def stack(aws: None) -> Any:
    """The template's table, queues and topic on moto, plus every function's environment."""
    from autopilot.aws.clients import client
    from autopilot_tools.localstack import create_stack, load_template

    template = load_template()
    local = create_stack(client, parameters={"ManagedClusters": "prod,batch"}, template=template)
    local.template = template  # type: ignore[attr-defined]
    return local


@pytest.fixture
def env(stack: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The ScalerFunction environment from the template, set in os.environ."""
    values = stack.function_environment(stack.template, "ScalerFunction")
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    from autopilot import wiring
    from autopilot.settings import settings

    settings.cache_clear()
    wiring.dependencies.cache_clear()
    return values


@pytest.fixture
def deps(env: dict[str, str], clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Production wiring on moto, with the test's clock; handlers loaded with load_handler() use it too."""
    from autopilot import wiring
    from autopilot.settings import Settings

    built = wiring.build(Settings.from_env(env))
    built.clock = clock
    monkeypatch.setattr(wiring, "dependencies", lambda: built)
    return built


@pytest.fixture
def topic_messages(stack: Any) -> Any:
    """Subscribe a queue to the notification topic; returns a function reading what was published."""
    from autopilot.aws.clients import client

    sqs, sns = client("sqs"), client("sns")
    url = sqs.create_queue(QueueName="notifications-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.ref("NotificationTopic"), Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})

    def read() -> list[str]:
        messages: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            for m in got:
                messages.append(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return read


def load_handler(function: str) -> Any:
    """Import functions/<name>/app.py as a fresh module (each function folder has its own app.py)."""
    import importlib.util
    import sys

    path = ROOT / "functions" / function / "app.py"
    name = f"_fn_{function}_app"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LambdaContextStub:
    """Enough of a Lambda context for Powertools (logger injection, idempotency timeouts)."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    function_version = "$LATEST"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DynamoDB request at a time, as DynamoDB applies each conditional write atomically.

    In-process moto does not serialise requests, so without this two threads can both pass the same
    condition - a flaw of the emulator, not of the code under test (tests/proofs/test_races.py shows it).
    """
    import threading

    from botocore.client import BaseClient

    lock = threading.Lock()
    real = BaseClient._make_api_call

    def serialised(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name != "dynamodb":
            return real(self, operation, params)
        with lock:
            return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", serialised)
