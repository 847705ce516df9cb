"""Bad input: every handler fuzzed (hypothesis) with mutations of the published AWS samples and the project's
``events/`` samples, against a world where the unmutated samples act.

Mutations: delete a key or a list item anywhere, add extra keys, replace any value with null, another
type, a huge (100 KB) or unicode string, swap the detail-type for another function's, make ``reasonData``
not JSON, or send something that is not an object at all; for the restarter, SQS records whose bodies are
garbage or mutated restart messages.

What must hold for every input:
- the handler returns its documented result (``status`` ok or rejected; the restarter a partial batch
  response), never an exception: a rejected event is logged, counted and audited, never retried;
- a rejected event (or restart record) makes no mutating AWS call at all;
- an event of another function's detail-type is rejected;
- every request the code does send is one AWS accepts (SNS Subject under 100 characters without control
  characters, message sizes under 256 KB, SQS delays of at most 900 s, DynamoDB items under 400 KB).

Policy files: ``autopilot validate`` on mutated copies of examples/policies.yaml never prints a
traceback, exits 0 or 1, and names file, document, field and reason for every error.

In-process moto (one stack per test; hypothesis examples reuse it), ``derandomize=True`` so every run
checks the same examples (a red build is reproducible), and few examples so the file stays within seconds.
The calls fuzzed input makes are kept out of the IAM coverage records (tests/aws_calls.py): a forged
restart message may well name a cluster IAM denies, which is the point of IAM, not a gap in it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aws_calls import RECORDER
from tests.conftest import PUBLISHED_EVENTS
from tests.proofs.support import (
    AwsLog,
    Call,
    healer_world,
    invoke,
    restarter_sample,
    restarter_world,
    rollout_world,
    scaler_world,
    sqs_event,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
HUGE = "x" * 100_000
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

DETAIL_TYPES = {"scaler": "CloudWatch Alarm State Change", "healer": "ECS Task State Change",
                "rollout": "ECS Deployment State Change"}
OTHER_DETAIL_TYPES = [*DETAIL_TYPES.values(), "ECS Service Action", "Scheduled Event", "EC2 Instance State-change"]


ACTING_FIRST = ("healer-oom", "healer-image-pull", "healer-standalone-crash", "scaler-alarm-high",
                "rollout-failed")  # hypothesis draws early elements more often: samples that act on their own


def samples_of(function: str) -> list[dict[str, Any]]:
    files = sorted(EVENTS.glob(f"{function}-*.json"), key=lambda p: (not p.name.startswith(ACTING_FIRST), p.name))
    own = [json.loads(p.read_text(encoding="utf-8-sig")) for p in files]
    prefix = {"scaler": "cloudwatch-alarm", "healer": "ecs-task-state-change", "rollout": "ecs-deployment"}[function]
    names = [f"{prefix}*.json"] + (["ecs-service-action*.json"] if function == "healer" else [])
    published = [json.loads(p.read_text(encoding="utf-8-sig")) for n in names for p in sorted(PUBLISHED_EVENTS.glob(n))]
    return own + published


# ------------------------------------------------------------------------------------------- mutations
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=False,
                                                                                        allow_infinity=False),
    st.text(max_size=30), st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF), min_size=1,
                                  max_size=30),
    st.just(""), st.just(HUGE), st.just("not json {"), st.just("\x00\n\t"),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                      max_leaves=6)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append((*prefix, index))
            out += paths(value, (*prefix, index))
    return out


def parent(event: Any, path: tuple[Any, ...]) -> Any:
    node = event
    for part in path[:-1]:
        node = node[part]
    return node


def mutate(data: st.DataObject, event: dict[str, Any]) -> Any:
    """One to three mutations of a copy of ``event`` (or, sometimes, something that is not an object)."""
    if data.draw(st.integers(0, 19)) == 0:
        return data.draw(st.one_of(values, st.lists(st.just(event), max_size=2)))
    out = copy.deepcopy(event)
    for _ in range(data.draw(st.integers(1, 3))):
        where = sorted(paths(out), key=lambda p: (len(p), str(p)), reverse=True)  # the deepest first
        if not where:
            break
        path = data.draw(st.sampled_from(where))
        node, key = parent(out, path), path[-1]
        op = data.draw(st.sampled_from(["extra", "replace", "delete", "extra", "replace", "detail-type", "reasonData"]))
        if op == "delete":
            del node[key]
        elif op == "extra" and isinstance(node, dict):
            node[data.draw(st.text(max_size=12))] = data.draw(values)
        elif op == "detail-type" and "detail-type" in out:
            out["detail-type"] = data.draw(st.sampled_from(OTHER_DETAIL_TYPES))
        elif op == "reasonData" and isinstance(out.get("detail"), dict) and isinstance(out["detail"].get("state"),
                                                                                       dict):
            out["detail"]["state"]["reasonData"] = data.draw(st.sampled_from(
                ["{not json", "[]", '"a string"', "null", "{}", HUGE, '{"recentDatapoints": ["x"], "threshold": {}}']))
        else:
            node[key] = data.draw(values)
    return out


# ------------------------------------------------------------------------------------------- contracts
def acceptable(call: Call) -> list[str]:
    """What AWS would refuse about this request (documented limits); empty if nothing."""
    p, problems = call.params, []
    if call.short() == "sns:Publish":
        subject = p.get("Subject")
        if subject is not None and (len(subject) >= 100 or not subject or any(not ch.isprintable() for ch in subject)):
            problems.append(f"SNS Subject refused: {subject[:120]!r}")
        if len(p.get("Message", "").encode()) > 262_144:
            problems.append("SNS message over 256 KB")
    if call.short() == "sqs:SendMessage":
        if len(p.get("MessageBody", "").encode()) > 262_144:
            problems.append("SQS message over 256 KB")
        if not 0 <= int(p.get("DelaySeconds", 0)) <= 900:
            problems.append(f"SQS DelaySeconds {p.get('DelaySeconds')}")
    if call.service == "dynamodb" and call.operation in ("PutItem", "TransactWriteItems"):
        items = [p["Item"]] if "Item" in p else [t["Put"]["Item"] for t in p.get("TransactItems", []) if "Put" in t]
        for item in items:
            if len(json.dumps(item).encode()) > 400_000:
                problems.append(f"DynamoDB item over 400 KB: {item.get('PK')}")
    return problems


@pytest.fixture
def fuzzed(deps: Any, monkeypatch: pytest.MonkeyPatch) -> AwsLog:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return AwsLog().attach()


def forget(deps: Any) -> None:
    """Judge each example on its own: drop decision state and idempotency records (not policies, not ECS)."""
    from autopilot.aws.clients import client

    dynamodb = client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=deps.settings.table, ProjectionExpression="PK, SK"):
        for item in page["Items"]:
            if item["SK"]["S"] == "STATE" or item["PK"]["S"].startswith("IDEMPOTENCY#"):
                dynamodb.delete_item(TableName=deps.settings.table, Key=item)


def check(log: AwsLog, function: str, event: Any) -> Any:
    from autopilot import wiring

    forget(wiring.dependencies())
    log.clear()
    with log.recording(), RECORDER.capture(isolate=True):
        result = invoke(function, event)
    problems = [p for c in log.calls for p in acceptable(c)]
    assert not problems, problems
    assert isinstance(result, dict)
    json.dumps(result)  # what Lambda returns must serialise
    if function in DETAIL_TYPES:
        assert result["status"] in ("ok", "rejected", "ignored"), result
        if result["status"] in ("rejected", "ignored"):  # invalid, or from another account or region
            assert log.mutations() == [], f"an event {result['status']} made a mutating call"
            assert isinstance(result["reason"], str) and result["reason"]
        if isinstance(event, dict) and event.get("detail-type") not in (None, DETAIL_TYPES[function]) and not (
                function == "healer" and event.get("detail-type") == "ECS Service Action"):
            assert result["status"] == "rejected", f"{event.get('detail-type')!r} accepted by the {function}"
    return result


# ------------------------------------------------------------------------------------------- handlers
@FUZZ
@given(data=st.data())
def test_scaler(fuzzed: AwsLog, deps: Any, data: st.DataObject) -> None:
    if not getattr(deps, "_fuzz_world", False):
        scaler_world(deps)
        deps._fuzz_world = True
    check(fuzzed, "scaler", mutate(data, data.draw(st.sampled_from(samples_of("scaler")))))


@FUZZ
@given(data=st.data())
def test_healer(fuzzed: AwsLog, deps: Any, data: st.DataObject) -> None:
    if not getattr(deps, "_fuzz_world", False):
        healer_world(deps)
        deps._fuzz_world = True
    check(fuzzed, "healer", mutate(data, data.draw(st.sampled_from(samples_of("healer")))))


@FUZZ
@given(data=st.data())
def test_rollout(fuzzed: AwsLog, deps: Any, data: st.DataObject) -> None:
    if not getattr(deps, "_fuzz_world", False):
        rollout_world(deps)
        deps._fuzz_world = True
    check(fuzzed, "rollout", mutate(data, data.draw(st.sampled_from(samples_of("rollout")))))


@settings(FUZZ, max_examples=15)
@given(event=values)
def test_reconciler(fuzzed: AwsLog, deps: Any, event: Any) -> None:
    if not getattr(deps, "_fuzz_world", False):
        scaler_world(deps)
        deps._fuzz_world = True
    result = check(fuzzed, "reconciler", event)
    assert result["status"] == "ok"


@FUZZ
@given(data=st.data())
def test_restarter(fuzzed: AwsLog, deps: Any, data: st.DataObject) -> None:
    """Garbage bodies are rejected (audited, the message consumed: retrying garbage cannot help); mutated
    restart messages either run, are rejected, or fail their record (SQS retries it, then the DLQ)."""
    if not getattr(deps, "_fuzz_world", False):
        deps._fuzz_net = restarter_world(deps)
        deps._fuzz_world = True
    net = deps._fuzz_net
    good = json.loads(restarter_sample("restarter-restart-due.json", net["subnet"], net["group"])
                      ["Records"][0]["body"])
    bodies = []
    for kind in data.draw(st.lists(st.sampled_from(["text", "json", "mutated", "mutated", "good"]), min_size=1,
                                   max_size=3)):
        if kind == "text":
            bodies.append(data.draw(st.one_of(st.text(max_size=50), st.sampled_from(
                [HUGE, "Hello from SQS!", "null", "[]", "{", ""]))))
        elif kind == "json":
            bodies.append(json.dumps(data.draw(values)))
        else:
            bodies.append(json.dumps(mutate(data, good) if kind == "mutated" else good))
    from pydantic import ValidationError

    from autopilot.models.healing_state import RestartMessage

    garbage = []
    for body in bodies:
        try:
            RestartMessage.model_validate_json(body)
        except ValidationError:
            garbage.append(body)
    event = sqs_event(*((f"m-{n}", body) for n, body in enumerate(bodies)))
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    fuzzed.clear()
    try:
        with fuzzed.recording(), RECORDER.capture(isolate=True):
            result = invoke("restarter", event)
    except BatchProcessingError:  # every record failed: Powertools fails the batch, SQS retries each record
        assert not garbage, "garbage is rejected, never failed (retrying it cannot help)"
        return
    assert set(result) == {"batchItemFailures"}
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert not failed & {f"m-{n}" for n, body in enumerate(bodies) if body in garbage}
    problems = [p for c in fuzzed.calls for p in acceptable(c)]
    assert not problems, problems
    if len(garbage) == len(bodies):
        assert fuzzed.mutations() == [], "garbage started or queued something"


# ------------------------------------------------------------------------------------------- policy files
EXAMPLE = list(yaml.safe_load_all((ROOT / "examples" / "policies.yaml").read_text()))
LINE = re.compile(r"^(?P<file>[^:]+): (document (?P<doc>\d+): (?P<field>[^\n]*?): )?(?P<reason>\S.*)$")


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_autopilot_validate(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
                            data: st.DataObject) -> None:
    from autopilot_tools.cli.main import main

    documents = [mutate(data, doc) if data.draw(st.booleans()) else doc for doc in EXAMPLE]
    path = tmp_path_factory.mktemp("policies") / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False), encoding="utf-8")
    capsys.readouterr()
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (0, 1), (code, out, err)
    if code == 0:
        assert out.startswith(f"ok: {path}")
        return
    errors = [line for line in out.splitlines() if line.strip()]
    assert errors, err
    for line in errors:
        match = LINE.match(line)
        assert match and match["file"] == str(path), line
        assert match["doc"] is not None and match["field"] is not None, f"no document/field: {line}"
