"""pytest plugin: record every AWS call each Lambda function makes while the tests run.

Loaded for every test run by the repository's root ``conftest.py``. It wraps
``botocore.client.BaseClient._make_api_call`` once per session, so every client is covered, whoever
created it: ``autopilot.aws.clients``, Powertools idempotency's own DynamoDB client, a test's
``boto3.client``.

**Attribution**: a call belongs to the function whose handler module (``functions/<dir>/app.py``,
mapped to its logical id through ``CodeUri`` in template.yaml) is on the calling thread's stack. So a
test needs no marker: calls made while a handler runs (also in threads the test starts) are the
function's; the test's own set-up calls (create_cluster, put_policy, ...) belong to no function and
are not recorded. Code that runs a use case without a handler can say whose calls they are with
``with as_function("ReconcilerFunction"): ...``.

Each call becomes one or more ``Call`` rows: the IAM action(s) it needs (TransactWriteItems needs
PutItem/UpdateItem/DeleteItem/ConditionCheckItem per item; SendMessageBatch needs SendMessage; a
RegisterTaskDefinition with roles also needs iam:PassRole on them), the resource ARN IAM evaluates,
and the condition keys we know. ``origin`` says which part of the code made it (idempotency
bookkeeping, audit, state, or the decision's own AWS calls), for the benchmarks.

**Output**: at the end of the session the controller writes ``$AUTOPILOT_BUILD_DIR/aws-calls.json``
(default ``build/``), merging what pytest-xdist workers recorded; the functions this session recorded
replace their entries, the others are kept (``make test`` deletes the file before the full run).
``tests/template/test_iam.py`` checks it against each function's IAM policies (see there for why
that check runs as a second pytest invocation in ``make test``).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ACCOUNT = "123456789012"  # moto's account, and what the IAM check resolves AWS::AccountId to
IAM_COVERAGE = "iam_coverage"

_explicit: contextvars.ContextVar[str | None] = contextvars.ContextVar("aws_calls_function", default=None)


@dataclass(frozen=True)
class Call:
    function: str
    service: str  # botocore service name (ecs, dynamodb, ...)
    operation: str  # the API operation (UpdateService, TransactWriteItems, ...)
    action: str  # the IAM action it needs (ecs:UpdateService, dynamodb:PutItem, ...)
    resource: str | None  # ARN IAM evaluates; "*" = the action has no resource-level permissions; None = unknown
    context: tuple[tuple[str, str], ...] = ()  # condition keys known for this call
    origin: str = "aws"  # idempotency | audit | state | aws
    test: str | None = None  # the test that was running
    seq: int = 0  # one number per API call (a call can need several IAM actions)
    principal: str | None = None  # the role the call was made as, when not the function's own (a member role)

    def key(self) -> tuple[Any, ...]:
        return (self.function, self.action, self.resource, self.context, self.principal)


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    current_test: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    capturing: list[list[Call]] = field(default_factory=list)
    remote: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)  # xdist workers' summaries

    def add(self, calls: list[Call]) -> None:
        with self.lock:
            self.calls.extend(calls)
            for sink in self.capturing:
                sink.extend(calls)

    @contextmanager
    def capture(self, isolate: bool = False) -> Iterator[list[Call]]:
        """Collect the calls made inside the block (benchmarks count them). ``isolate``: keep them out
        of the session's records (for tests of the recorder itself, whose calls prove nothing about IAM)."""
        sink: list[Call] = []
        with self.lock:
            self.capturing.append(sink)
        try:
            yield sink
        finally:
            with self.lock:
                self.capturing.remove(sink)
                if isolate:
                    captured = {id(c) for c in sink}
                    self.calls[:] = [c for c in self.calls if id(c) not in captured]

    def summary(self) -> dict[str, list[dict[str, Any]]]:
        """Distinct (action, resource, context) per function, with a few of the tests that needed it."""
        out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        with self.lock:
            for c in self.calls:
                rows = out.setdefault(c.function, {})
                row = rows.setdefault(c.key(), {
                    "service": c.service, "operations": set(), "action": c.action, "resource": c.resource,
                    "context": dict(c.context), "count": 0, "tests": set(), "principal": c.principal})
                row["operations"].add(c.operation)
                row["count"] += 1
                if c.test:
                    row["tests"].add(c.test)
            for summary in self.remote:
                for fn, remote_rows in summary.items():
                    rows = out.setdefault(fn, {})
                    for r in remote_rows:
                        key = (fn, r["action"], r["resource"], tuple(sorted(r["context"].items())),
                               r.get("principal"))
                        row = rows.setdefault(key, {**r, "operations": set(), "count": 0, "tests": set()})
                        row["operations"].update(r["operations"])
                        row["count"] += r["count"]
                        row["tests"].update(r["tests"])
        return {fn: [dict(r, operations=sorted(r["operations"]), tests=sorted(r["tests"])[:5])
                     for r in sorted(rows.values(), key=lambda r: (r["action"], str(r["resource"])))]
                for fn, rows in sorted(out.items())}


RECORDER = Recorder()


@contextmanager
def as_function(logical_id: str) -> Iterator[None]:
    """Attribute the calls made in this block (this thread/context) to ``logical_id``."""
    token = _explicit.set(logical_id)
    try:
        yield
    finally:
        _explicit.reset(token)


# ------------------------------------------------------------------------------------ attribution
@cache
def handler_files() -> dict[str, str]:
    """Absolute path of each function's app.py -> its logical id (from CodeUri in template.yaml)."""
    from autopilot_tools.localstack import load_template

    files: dict[str, str] = {}
    for logical, resource in load_template().get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code = resource.get("Properties", {}).get("CodeUri")
        if isinstance(code, str):
            files[str((ROOT / code / "app.py").resolve())] = logical
            # load_handler() imports app.py from this path; keep the unresolved spelling too
            files[str(ROOT / code.rstrip("/") / "app.py")] = logical
    return files


_SDK_PARTS = tuple(os.sep + p + os.sep for p in ("botocore", "boto3", "moto", "s3transfer"))


def _origin(frame: Any) -> str | None:
    """Which part of the code made the call: decided by the innermost frame outside the SDK."""
    filename = frame.f_code.co_filename
    if filename == __file__ or any(part in filename for part in _SDK_PARTS):
        return None
    if "aws_lambda_powertools" in filename and "idempotency" in filename:
        return "idempotency"
    if filename.endswith(os.path.join("store", "table.py")):
        return "audit" if "audit" in frame.f_code.co_name else "state"
    return "aws"


def _attribute(frame: Any) -> tuple[str | None, str]:
    """(function, origin) from the stack: the handler on it, and which layer of our code called."""
    explicit = _explicit.get()
    files = handler_files()
    function, origin = explicit, None
    while frame is not None:
        filename = frame.f_code.co_filename
        if origin is None:
            origin = _origin(frame)
        if function is None and filename in files:
            function = files[filename]
        if function is not None and origin is not None:
            break
        frame = frame.f_back
    if function is None:  # a thread a handler started (the reconciler's places): the handler's
        function = getattr(threading.current_thread(), "_aws_calls_function", None)
    return function, origin or "aws"


# ------------------------------------------------------------------------------------ call -> IAM
_IAM_PREFIX = {"stepfunctions": "states", "elbv2": "elasticloadbalancing"}
_BATCH_ACTION = {  # batch APIs authorised by their single-item action
    ("sqs", "SendMessageBatch"): "SendMessage", ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility", ("sns", "PublishBatch"): "Publish",
}
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
             "Get": "GetItem"}
# Actions IAM only authorises with Resource "*" (no resource-level permissions).
NO_RESOURCE_LEVEL = {
    "ecs:RegisterTaskDefinition", "ecs:ListTaskDefinitions", "ecs:ListClusters", "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitionFamilies", "ecs:DeregisterTaskDefinition", "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData", "cloudwatch:ListMetrics", "cloudwatch:GetMetricStatistics",
    "sts:GetCallerIdentity", "sqs:ListQueues", "sns:ListTopics", "dynamodb:ListTables",
}


def _ecs_arn(region: str, kind: str, rest: str, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:ecs:{region}:{account}:{kind}/{rest}"


def _cluster_name(cluster: str | None) -> str:
    cluster = cluster or "default"
    return cluster.split("cluster/", 1)[1] if cluster.startswith("arn:") else cluster


def _task_definition_arn(region: str, value: str, account: str = DEFAULT_ACCOUNT) -> str:
    if value.startswith("arn:"):
        return value
    return _ecs_arn(region, "task-definition", value if ":" in value else f"{value}:*", account)


def _ecs(operation: str, params: dict[str, Any], region: str,
         account: str = DEFAULT_ACCOUNT) -> list[tuple[str, str | None, dict[str, str]]]:
    action = f"ecs:{operation}"
    cluster = _cluster_name(params.get("cluster"))
    context = {"ecs:cluster": _ecs_arn(region, "cluster", cluster, account)}
    if operation in ("UpdateService", "CreateService", "DeleteService"):
        service = params.get("service") or params.get("serviceName") or ""
        arn = service if service.startswith("arn:") else _ecs_arn(region, "service", f"{cluster}/{service}", account)
        rows: list[tuple[str, str | None, dict[str, str]]] = [(action, arn, context)]
        if params.get("tags"):
            rows.append(("ecs:TagResource", arn, {**context, "ecs:CreateAction": operation}))
        return rows
    if operation == "DescribeServices":
        return [(action, s if s.startswith("arn:") else _ecs_arn(region, "service", f"{cluster}/{s}", account),
                 context) for s in params.get("services", [])] or [(action, None, context)]
    if operation in ("RunTask", "StartTask"):
        rows = [(action, _task_definition_arn(region, params.get("taskDefinition", ""), account), context)]
        if params.get("tags"):
            rows.append(("ecs:TagResource", _ecs_arn(region, "task", f"{cluster}/*", account),
                         {**context, "ecs:CreateAction": operation}))
        overrides = params.get("overrides") or {}
        rows += [("iam:PassRole", overrides[k], {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
                 for k in ("taskRoleArn", "executionRoleArn") if overrides.get(k)]
        return rows
    if operation in ("StopTask", "DescribeTasks"):
        tasks = params.get("tasks") or ([params["task"]] if params.get("task") else [])
        return [(action, t if t.startswith("arn:") else _ecs_arn(region, "task", f"{cluster}/{t}", account),
                 context) for t in tasks] or [(action, None, context)]
    if operation == "RegisterTaskDefinition":
        rows = [(action, "*", {})]
        if params.get("tags"):
            family_arn = _ecs_arn(region, "task-definition", f"{params.get('family')}:*", account)
            rows.append(("ecs:TagResource", family_arn, {"ecs:CreateAction": operation}))
        rows += [("iam:PassRole", params[k], {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
                 for k in ("taskRoleArn", "executionRoleArn") if params.get(k)]
        return rows
    if operation in ("TagResource", "UntagResource", "ListTagsForResource"):
        return [(action, params.get("resourceArn"), {})]
    if operation in ("ListTasks", "ListServices"):
        return [(action, None, context)]
    return [(action, "*" if action in NO_RESOURCE_LEVEL else None, {})]


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{DEFAULT_ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(operation: str, params: dict[str, Any], region: str) -> list[tuple[str, str | None, dict[str, str]]]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        rows: list[tuple[str, str | None, dict[str, str]]] = []
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                rows.append((f"dynamodb:{_TRANSACT[kind]}", _table_arn(region, body["TableName"]), {}))
        return rows
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(f"dynamodb:{operation}", _table_arn(region, t), {}) for t in params.get("RequestItems", {})]
    if "TableName" in params:
        return [(f"dynamodb:{operation}", _table_arn(region, params["TableName"], params.get("IndexName")), {})]
    action = f"dynamodb:{operation}"
    return [(action, "*" if action in NO_RESOURCE_LEVEL else None, {})]


def _queue_arn(region: str, url: str) -> str:
    parts = urlparse(url).path.strip("/").split("/")
    account, name = (parts[0], parts[-1]) if len(parts) >= 2 else (DEFAULT_ACCOUNT, parts[-1])
    return f"arn:aws:sqs:{region}:{account}:{name}"


Rows = list[tuple[str, str | None, dict[str, str]]]


def iam_rows(service: str, operation: str, params: dict[str, Any], region: str,
             account: str = DEFAULT_ACCOUNT) -> Rows:
    """The (IAM action, resource ARN, condition context) rows one API call is authorised by (``account``: the
    account the call is made in, a member's when made as its role)."""
    prefix = _IAM_PREFIX.get(service, service)
    operation = _BATCH_ACTION.get((service, operation), operation)
    if service == "ecs":
        return _ecs(operation, params, region, account)
    if service == "sts" and operation == "AssumeRole":
        return [("sts:AssumeRole", params.get("RoleArn"), {})]
    if service == "dynamodb":
        return _dynamodb(operation, params, region)
    action = f"{prefix}:{operation}"
    if service == "sns" and operation == "Publish":
        return [(action, params.get("TopicArn") or params.get("TargetArn"), {})]
    if service == "sqs" and params.get("QueueUrl"):
        return [(action, _queue_arn(region, params["QueueUrl"]), {})]
    return [(action, "*" if action in NO_RESOURCE_LEVEL else None, {})]


# ------------------------------------------------------------------------------------ the hook
_original: Any = None
_original_start: Any = None


def _install() -> None:
    global _original, _original_start
    from botocore.client import BaseClient

    if _original is not None:
        return
    _original = getattr(BaseClient, "_make_api_call")
    _original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        """A thread started while a handler runs makes that handler's calls (attributed at the thread's start)."""
        try:
            setattr(self, "_aws_calls_function", _attribute(sys._getframe(1))[0])
        except Exception:  # attribution must never break the code under test
            pass
        _original_start(self)

    threading.Thread.start = start  # type: ignore[method-assign]

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        try:
            function, origin = _attribute(sys._getframe(1))
            if function is not None:
                service = self.meta.service_model.service_name
                region = self.meta.region_name or "us-east-1"
                principal = assumed_role(self)
                account = principal.split(":")[4] if principal else DEFAULT_ACCOUNT
                seq = next(RECORDER.counter)
                RECORDER.add([
                    Call(function=function, service=service, operation=operation_name, action=action,
                         resource=resource, context=tuple(sorted(
                             {**context, **({"aws:RequestedRegion": region} if principal else {})}.items())),
                         origin=origin, test=RECORDER.current_test, seq=seq, principal=principal)
                    for action, resource, context in iam_rows(service, operation_name, api_params, region, account)
                ])
        except Exception as exc:  # recording must never change what the code under test sees
            sys.stderr.write(f"aws_calls: could not record {operation_name}: {exc!r}\n")
        return _original(self, operation_name, api_params)

    setattr(BaseClient, "_make_api_call", _make_api_call)


def assumed_role(aws_client: Any) -> str | None:
    """The role ARN a client's calls are made as, when its credentials come from AssumeRole (a member place's
    client, autopilot.aws.clients); None for the function's own credentials."""
    credentials = getattr(getattr(aws_client, "_request_signer", None), "_credentials", None)
    if getattr(credentials, "method", None) != "assume-role":
        return None
    fetcher = getattr(getattr(credentials, "_refresh_using", None), "__self__", None)
    role = getattr(fetcher, "_role_arn", None)
    return str(role) if role else None


def _uninstall() -> None:
    global _original, _original_start
    from botocore.client import BaseClient

    if _original is not None:
        setattr(BaseClient, "_make_api_call", _original)
        _original = None
    if _original_start is not None:
        threading.Thread.start = _original_start  # type: ignore[method-assign]
        _original_start = None


def build_dir() -> Path:
    return Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build")


def calls_file() -> Path:
    return build_dir() / "aws-calls.json"


def load_summary() -> dict[str, list[dict[str, Any]]] | None:
    """Per function: this session's records if it recorded any, else the last file's; None if neither."""
    path = calls_file()
    merged: dict[str, list[dict[str, Any]]] = json.loads(path.read_text())["functions"] if path.exists() else {}
    merged.update(RECORDER.summary())
    return merged or None


# ------------------------------------------------------------------------------------ pytest hooks
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{IAM_COVERAGE}: checks AWS calls recorded by other tests against IAM (runs after them)")
    _install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    RECORDER.current_test = item.nodeid
    try:
        return (yield)
    finally:
        RECORDER.current_test = None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """IAM coverage checks run last, after the tests whose calls they check; xdist workers skip them."""
    coverage = [i for i in items if i.get_closest_marker(IAM_COVERAGE)]
    if not coverage:
        return
    rest = [i for i in items if not i.get_closest_marker(IAM_COVERAGE)]
    if hasattr(config, "workerinput"):  # a worker sees only its share of the records: check in a second run
        config.hook.pytest_deselected(items=coverage)
        items[:] = rest
    else:
        items[:] = rest + coverage


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge a worker's records (its summary: distinct rows with counts)."""
    data = getattr(node, "workeroutput", {}).get("aws_calls")
    if data:
        with RECORDER.lock:
            RECORDER.remote.append(data)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["aws_calls"] = RECORDER.summary()  # type: ignore[attr-defined]
        return
    summary = RECORDER.summary()
    if not summary:
        return  # nothing ran a handler: keep the file as it is
    # A partial run replaces only the functions it recorded (`make test` deletes the file first, so a
    # full run starts from nothing).
    path = calls_file()
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())["functions"]
        except (ValueError, KeyError):
            merged = {}
    merged.update(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"functions": merged}, indent=1, sort_keys=True))
    tmp.replace(path)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    summary = RECORDER.summary()
    if summary:
        counts = ", ".join(f"{fn} {sum(r['count'] for r in rows)}" for fn, rows in summary.items())
        terminalreporter.write_line(f"AWS calls recorded per function: {counts} -> {calls_file()}")
    if getattr(config.option, "numprocesses", None):
        terminalreporter.write_line(f"under pytest-xdist the IAM coverage checks are deferred: "
                                    f"run `pytest -p no:xdist -m {IAM_COVERAGE}` next")
