"""What the proofs share (no tests here).

- ``AwsLog``: every AWS API call the code under test makes, with its parameters, recorded through
  botocore's event system (``before-parameter-build``, once per API call, not per retry) on the
  process's shared clients. ``mutations()`` are the calls that change something outside our own table.
- ``Faults``: answers chosen requests instead of AWS, through a ``before-send`` hook registered first
  on the client: a throttling error, an HTTP 500/503, a read timeout before the request left, or a
  read timeout *after* the request was applied (the write happened, the answer was lost). botocore's
  own retry handler sees these exactly as it would see AWS's, so its standard retry mode is what is
  tested. Nothing in the production code is changed.
- ``SerialMotoServer``: moto's threaded server with one lock around each request. moto's own server
  handles requests in parallel threads without a lock, so its DynamoDB conditional writes are not
  atomic there; with the lock they are, as DynamoDB's are per item, and concurrent invocations race
  for real on the wire.
- Worlds: the clusters, services, task definitions, policies and state that make each function's
  ``events/`` samples matter (every sample names prod/web, prod/worker or batch/nightly-etl).
"""

from __future__ import annotations

import copy
import json
import logging
import socket
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from io import BytesIO
from typing import Any

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy, TaskPolicy, family_key, service_key
from autopilot.models.rollout_state import RolloutState
from autopilot.models.state import ServiceState
from autopilot.ports import Deployment, RunTaskResult, ServiceView
from tests.conftest import LambdaContextStub, load_handler, sample

ARN = "arn:aws:ecs:us-east-1:123456789012"
# The services the functions call. ECS, SQS and SNS are the only ones IAM lets them change (and DynamoDB,
# our own table); CloudWatch they only read. (Each client made costs ~0.1 s: not one more than needed.)
SERVICES = ("ecs", "sqs", "sns", "dynamodb")
_READS = ("Describe", "List", "Get", "Receive", "Query", "Scan", "BatchGet")


def clients_of(services: Iterable[str]) -> list[Any]:
    """The shared clients of ``services``, and ECS's single-attempt one (RegisterTaskDefinition goes through it)."""
    found = [client(name) for name in services]
    if "ecs" in services:
        found.append(client("ecs", single_attempt=True))
    return found


def is_mutation(service: str, operation: str) -> bool:
    """A call that changes something in AWS other than our own state table (state and audit are ours)."""
    return service != "dynamodb" and not operation.startswith(_READS)


# ------------------------------------------------------------------------------------------ recording
@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]

    @property
    def mutation(self) -> bool:
        return is_mutation(self.service, self.operation)

    def signature(self) -> str:
        """The call with its parameters, comparable across runs."""
        return f"{self.service}:{self.operation} {json.dumps(self.params, sort_keys=True, default=str)}"

    def short(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class AwsLog:
    """Calls made through the shared clients while ``armed`` (the test's own set-up calls are not wanted)."""

    calls: list[Call] = field(default_factory=list)
    armed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _attached: set[int] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)  # emulator-made ids -> stable names

    def attach(self, services: Iterable[str] = SERVICES) -> AwsLog:
        for found in clients_of(services):
            if id(found) in self._attached:
                continue
            self._attached.add(id(found))
            found.meta.events.register("before-parameter-build", self._record, unique_id=f"proofs-log-{id(self)}")
        return self

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.armed:
            return
        service = model.service_model.service_name
        call = Call(service, model.name, copy.deepcopy(params))
        with self._lock:
            self.calls.append(call)

    @contextmanager
    def recording(self) -> Iterator[AwsLog]:
        self.armed = True
        try:
            yield self
        finally:
            self.armed = False

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def mutations(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.mutation]

    def signatures(self) -> list[str]:
        """The mutations with their parameters, resource ids the emulator makes up (``aliases``) neutralised."""
        out = []
        for call in self.mutations():
            text = call.signature()
            for real, alias in self.aliases.items():
                text = text.replace(real, alias)
            out.append(text)
        return out

    def count(self, short: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.short() == short)


# ------------------------------------------------------------------------------------------ faults
class _Raw(BytesIO):
    """The raw body botocore reads an AWSResponse from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


FAULT_KINDS = ("throttle", "500", "503", "timeout", "lost")
ALWAYS = 10**9


@dataclass
class Plan:
    service: str  # hyphenated service id as in botocore event names: ecs, dynamodb, sqs, sns
    operation: str
    kind: str
    times: int
    when: Callable[[dict[str, Any]], bool] | None = None  # on the JSON request body (JSON protocols)


def _error_body(protocol: str, service: str, code: str, message: str) -> tuple[dict[str, str], bytes]:
    if protocol == "query":  # SNS
        body = (f'<ErrorResponse xmlns="http://{service}.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>")
        return {"Content-Type": "text/xml", "x-amzn-RequestId": "fault"}, body.encode()
    content_type = "application/x-amz-json-1.0" if service in ("dynamodb", "sqs") else "application/x-amz-json-1.1"
    headers = {"Content-Type": content_type, "x-amzn-RequestId": "fault"}
    if service == "sqs":  # awsQueryCompatible
        headers["x-amzn-query-error"] = f"{code};Sender"
    return headers, json.dumps({"__type": code, "message": message}).encode()


class Faults:
    """Fails chosen requests before (or, ``lost``, after) they reach AWS. Counts what it did."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.injected: Counter[str] = Counter()  # "service:Operation:kind" -> times
        self.sent: Counter[str] = Counter()  # "service:Operation" -> requests that reached AWS
        self._lock = threading.Lock()
        self._attached: set[int] = set()

    def attach(self, services: Iterable[str] = SERVICES) -> Faults:
        for found in clients_of(services):
            if id(found) in self._attached:
                continue
            self._attached.add(id(found))
            found.meta.events.register_first("before-send", self._before_send, unique_id=f"proofs-faults-{id(self)}")
        return self

    def fail(self, service: str, operation: str, kind: str, times: int = 1,
             when: Callable[[dict[str, Any]], bool] | None = None) -> Faults:
        assert kind in FAULT_KINDS, kind
        with self._lock:
            self.plans.append(Plan(service, operation, kind, times, when))
        return self

    def clear(self) -> None:
        with self._lock:
            self.plans.clear()

    def _take(self, service: str, operation: str, body: bytes | None) -> Plan | None:
        with self._lock:
            for plan in self.plans:
                if plan.service != service or plan.operation != operation or plan.times <= 0:
                    continue
                if plan.when is not None:
                    try:
                        parsed = json.loads(body or b"{}")
                    except ValueError:
                        continue
                    if not plan.when(parsed):
                        continue
                plan.times -= 1
                self.injected[f"{service}:{operation}:{plan.kind}"] += 1
                return plan
        return None

    def _before_send(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ReadTimeoutError

        _, service, operation = event_name.split(".", 2)
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode() \
            if isinstance(request.body, str) else None
        plan = self._take(service, operation, body)
        if plan is None:
            with self._lock:
                self.sent[f"{service}:{operation}"] += 1
            return None  # on to AWS (the moto server)
        if plan.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if plan.kind == "lost":
            from botocore.httpsession import URLLib3Session

            URLLib3Session().send(request)  # AWS applies it ...
            with self._lock:
                self.sent[f"{service}:{operation}"] += 1
            raise ReadTimeoutError(endpoint_url=request.url)  # ... and the answer never arrives
        protocol = "query" if service == "sns" else "json"
        if plan.kind == "throttle":
            status, code, message = 400, "Throttling" if service == "sns" else "ThrottlingException", "Rate exceeded"
        elif plan.kind == "500":
            status, code, message = 500, "InternalFailure", "We encountered an internal error. Please try again."
        else:
            status, code, message = 503, "ServiceUnavailable", "Service is unavailable. Please try again."
        headers, payload = _error_body(protocol, service, code, message)
        return AWSResponse(request.url, status, headers, _Raw(payload))


def no_retry_delays(monkeypatch: Any) -> None:
    """botocore's standard retry mode, without its jittered sleeps (the attempts are what is tested)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


# ------------------------------------------------------------------------------------------ moto server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SerialMotoServer:
    """moto's server on 127.0.0.1, answering one request at a time (see the module docstring)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> SerialMotoServer:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serial(environ: Any, start_response: Any) -> Any:
            with lock:
                return list(app(environ, start_response))

        self._server = make_server("127.0.0.1", self.port, serial, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ------------------------------------------------------------------------------------------ handlers
@cache
def template() -> dict[str, Any]:
    """template.yaml, parsed once per session (the pure-Python YAML loader takes ~0.25 s a time)."""
    from autopilot_tools.localstack import load_template

    return load_template()


CONTEXT = LambdaContextStub()
_HANDLERS: dict[str, Any] = {}


def handler(function: str) -> Any:
    """functions/<function>/app.py, loaded once per test session. Its module imported ``dependencies`` by
    name, so it is bound again on each use to what ``autopilot.wiring.dependencies`` is now (the test's)."""
    from autopilot import wiring

    if function not in _HANDLERS:
        _HANDLERS[function] = load_handler(function)
    module = _HANDLERS[function]
    module.dependencies = wiring.dependencies
    return module


def invoke(function: str, event: Any) -> Any:
    return handler(function).lambda_handler(event, CONTEXT)


def sqs_event(*bodies: tuple[str, str]) -> dict[str, Any]:
    """An SQS event (the shape of events/restarter-restart-due.json) with these (message id, body) records."""
    base = sample("restarter-restart-due.json")["Records"][0]
    return {"Records": [{**base, "messageId": mid, "body": body} for mid, body in bodies]}


def td(family: str, revision: int) -> str:
    return f"{ARN}:task-definition/{family}:{revision}"


def default_network() -> tuple[str, str]:
    """moto's default VPC subnet and security group (RunTask with awsvpc needs real ones)."""
    ec2 = client("ec2")
    return (ec2.describe_subnets()["Subnets"][0]["SubnetId"],
            ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"])


def table_snapshot(deps: Any) -> dict[str, Any]:
    """Everything in the state table but the audit trail: what a failed action must leave as it found it.
    A state is compared as the state it holds (a released claim bumps the version, and leaves an item
    holding the empty state where there was none: the same thing to every reader)."""
    items: dict[str, Any] = {}
    paginator = client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=deps.settings.table, ConsistentRead=True):
        for item in page["Items"]:
            pk, sk = item["PK"]["S"], item["SK"]["S"]
            if pk.startswith(("AUDIT#", "DERIVATION#")):  # the ledger records what AWS holds, not a decision
                continue
            if sk == "STATE":
                state = ServiceState.model_validate_json(item["doc"]["S"])
                if state != ServiceState():
                    items[f"{pk}|{sk}"] = state.model_dump(mode="json")
                continue
            items[f"{pk}|{sk}"] = item
    return items


def outcomes(deps: Any, cluster: str | None = None, service: str | None = None) -> list[str]:
    return [h.outcome for h in deps.store.history(cluster=cluster, service=service, now=deps.clock(), limit=1000)]


# ------------------------------------------------------------------------------------------ worlds
def _register_web(revisions: int = 7) -> list[str]:
    ecs = client("ecs")
    arns = []
    for _ in range(revisions):
        arns.append(ecs.register_task_definition(
            family="web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="1024",
            executionRoleArn="arn:aws:iam::123456789012:role/web-execution",
            containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512, "essential": True},
                                  {"name": "aws-otel-collector", "image": "otel", "memoryReservation": 128}],
            tags=[{"key": "team", "value": "payments"}])["taskDefinition"]["taskDefinitionArn"])
    return arns


SCALER_POLICIES: list[dict[str, Any]] = [
    {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
     "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "scaleOutCooldownSeconds": 60, "rules": [
         {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                             {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2}]},
         {"alarm": "web-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]},
         {"alarm": "web-requests-anomaly", "steps": [{"upperBound": 0, "adjustment": -2},
                                                     {"lowerBound": 0, "adjustment": 2}]},
         {"alarm": "launch-day", "exactCapacity": 20},
     ]}}},
    {"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "worker"},
     "spec": {"scaling": {"minTasks": 1, "maxTasks": 50,
                          "rules": [{"alarm": "jobs-backlog-high", "targetValue": 100}]}}},
]


def scaler_world(deps: Any, mode: str = "enforce") -> None:
    """prod/web and prod/worker at 4 tasks; every alarm the scaler samples name has a rule (but the
    unmanaged one)."""
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    for name in ("web", "worker"):
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition="web", desiredCount=4)
    for doc in SCALER_POLICIES:
        deps.store.put_policy(ServicePolicy.model_validate(_with_mode(doc, mode)), deps.clock())


HEALER_POLICY: dict[str, Any] = {
    "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
    "spec": {"healing": {"crashLoop": {"failures": 3, "windowSeconds": 600, "action": "rollback"},
                         "oom": {"growPercent": 25, "maxMemoryMiB": 4096},
                         "spotFallback": {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800,
                                          "onDemandProvider": "FARGATE"}},
             "rollout": {"rollbackOnImagePullFailure": True}}}
STRATEGY = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]


def task_policy(subnet: str, group: str, mode: str = "enforce", max_restarts: int = 5) -> dict[str, Any]:
    return {"apiVersion": "autopilot/v1", "kind": "TaskPolicy",
            "metadata": {"cluster": "batch", "family": "nightly-etl"},
            "spec": {"mode": mode, "restart": {"maxRestarts": max_restarts, "initialBackoffSeconds": 10,
                                               "maxBackoffSeconds": 300, "resetAfterSeconds": 600},
                     "network": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}}


def _register_etl() -> None:
    ecs = client("ecs")
    for _ in range(3):
        ecs.register_task_definition(
            family="nightly-etl", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "nightly-etl", "image": "etl", "memory": 512}])


def healer_world(deps: Any, mode: str = "enforce") -> dict[str, Any]:
    """prod/web on web:7 (the samples' revision; LKG web:6) with a Spot strategy and a healing policy;
    batch/nightly-etl:3 with a TaskPolicy on the default VPC."""
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.create_cluster(clusterName="batch")
    web = _register_web(7)
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=web[6], desiredCount=10)
    ecs.update_service(cluster="prod", service="web", capacityProviderStrategy=STRATEGY)
    deps.store.put_policy(ServicePolicy.model_validate(_with_mode(HEALER_POLICY, mode)), deps.clock())
    deps.store.save_state(service_key("prod", "web"), ServiceState(rollout=RolloutState(lkg=web[5])), 0)
    _register_etl()
    subnet, group = default_network()
    deps.store.put_policy(TaskPolicy.model_validate(task_policy(subnet, group, mode)), deps.clock())
    return {"web": web, "subnet": subnet, "group": group}


ROLLOUT_POLICY: dict[str, Any] = {
    "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
    "spec": {"rollout": {"rollbackAlarms": ["web-5xx-high"], "recycleAlarms": ["web-memory-leak"],
                         "bakeSeconds": 1800}}}


class SampleDeployments:
    """Moto for every call; DescribeServices also reports the deployments the events/ rollout samples name
    (moto models none): ecs-svc/123 (web:2, the samples' deployment) over ecs-svc/100 (web:1, completed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deployments = [
            Deployment(id="ecs-svc/123", status="PRIMARY", task_definition=td("web", 2), rollout_state="IN_PROGRESS",
                       created_at="2020-05-23T11:00:00+00:00", updated_at="2020-05-23T11:00:00+00:00"),
            Deployment(id="ecs-svc/100", status="ACTIVE", task_definition=td("web", 1), rollout_state="COMPLETED",
                       created_at="2020-05-22T10:00:00+00:00", updated_at="2020-05-22T10:10:00+00:00"),
        ]

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, ServiceView]:
        return {name: replace(view, deployments=list(self.deployments))
                for name, view in self.inner.describe_services(cluster, services).items()}

    def set_desired_count(self, cluster: str, service: str, desired: int) -> None:
        self.inner.set_desired_count(cluster, service, desired)

    def update_service(self, cluster: str, service: str, **changes: Any) -> None:
        self.inner.update_service(cluster, service, **changes)

    def run_task(self, request: dict[str, Any]) -> RunTaskResult:
        return self.inner.run_task(request)  # type: ignore[no-any-return]


def use_ecs(deps: Any, ecs: Any) -> Any:
    """Point the dependencies (and a fresh executor) at ``ecs``."""
    from autopilot.execute import Executor, derive_revision_handler

    executor = Executor(ecs, deps.notifier, deps.executor.restart_queue)
    if deps.taskdefs is not None:
        executor.register("derive-revision", derive_revision_handler(ecs, deps.taskdefs, ledger=deps.store))
    deps.ecs = ecs
    deps.executor = executor
    return ecs


def rollout_world(deps: Any, mode: str = "enforce") -> None:
    """prod/web running web:2 from deployment ecs-svc/123 (the samples'), LKG web:1, default rollout policy."""
    from autopilot.aws.ecs import Ecs

    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    _register_web(3)
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web:2", desiredCount=2)
    deps.store.put_policy(ServicePolicy.model_validate(_with_mode(ROLLOUT_POLICY, mode)), deps.clock())
    deps.store.save_state(service_key("prod", "web"), ServiceState(rollout=RolloutState(lkg=td("web", 1))), 0)
    use_ecs(deps, SampleDeployments(Ecs()))


def restarter_world(deps: Any, mode: str = "enforce") -> dict[str, str]:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="batch")
    _register_etl()
    subnet, group = default_network()
    deps.store.put_policy(TaskPolicy.model_validate(task_policy(subnet, group, mode)), deps.clock())
    return {"subnet": subnet, "group": group}


def restarter_sample(name: str, subnet: str, group: str) -> dict[str, Any]:
    """events/<name> with the RunTask network of moto's default VPC (the sample's subnet-0abc does not exist)."""
    event = sample(name)
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
        except ValueError:
            continue
        body["request"]["networkConfiguration"]["awsvpcConfiguration"].update(subnets=[subnet], securityGroups=[group])
        record["body"] = json.dumps(body, sort_keys=True)
    return event


def _with_mode(doc: dict[str, Any], mode: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["spec"]["mode"] = mode
    return out


def state_of(deps: Any, key: str) -> ServiceState:
    return deps.store.load_state(key).state  # type: ignore[no-any-return]


WEB = service_key("prod", "web")
ETL = family_key("batch", "nightly-etl")



def reconciler_world(deps: Any, mode: str = "enforce") -> None:
    """scaler_world, with web-cpu-high and jobs-backlog-high staying in ALARM and prod/worker drifted to 60
    (above maxTasks 50): every reconciler run has scaling to do."""
    scaler_world(deps, mode)
    cw = client("cloudwatch")
    for name, threshold in (("web-cpu-high", 50.0), ("jobs-backlog-high", 100.0)):
        cw.put_metric_alarm(AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/ECS", Statistic="Average",
                            Period=60, EvaluationPeriods=1, Threshold=threshold,
                            ComparisonOperator="GreaterThanThreshold")
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="still breaching",
                           StateReasonData=json.dumps({"recentDatapoints": [threshold * 2.5], "threshold": threshold}))
    client("ecs").update_service(cluster="prod", service="worker", desiredCount=60)


def dump_table(deps: Any) -> list[dict[str, Any]]:
    paginator = client("dynamodb").get_paginator("scan")
    return [item for page in paginator.paginate(TableName=deps.settings.table, ConsistentRead=True)
            for item in page["Items"]]


def restore_table(deps: Any, items: list[dict[str, Any]]) -> None:
    """Put the state table back to ``items`` exactly (policies, state, idempotency records, audit)."""
    dynamodb, table = client("dynamodb"), deps.settings.table
    for item in dump_table(deps):
        dynamodb.delete_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})
