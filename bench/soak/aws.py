"""The soak's AWS boundary: boto3-shaped clients over in-process services, with AWS's semantics and limits.

The code under test makes every client through ``autopilot.aws.clients`` (``use_factory``): the adapters,
the store and Powertools idempotency run unchanged. A call goes through what sits between the code and
AWS in production, modelled here because the fake sits *above* botocore (no request is serialised):

- **botocore's standard retry mode**, as configured (``RETRY_CONFIG``: 6 attempts; the single-attempt
  client: 1): throttling, 5xx and connection errors are retried with botocore's exponential back-off
  (random up to 2^(attempt-1) s, at most 20 s), charged to the invocation's simulated time;
- **latency** per call (simulated, never slept), so an invocation has a duration and a timeout;
- **rate limits** as token buckets refilled in simulated time (aws-facts section 4 for ECS; CloudWatch's
  default TPS quotas; DynamoDB's per-partition-key limits of 1,000 WCU/s and 3,000 RCU/s, GSI included),
  answering with the real throttling error codes;
- **injected faults** per attempt: throttling, HTTP 500/503, a timeout before the request left, a timeout
  after it was applied (the answer is lost: botocore's retry repeats an applied request), and outage
  windows of a service (every call fails for a few minutes);
- **Lambda's timeout**: a call made after the invocation's deadline raises ``InvocationDied`` (a
  BaseException: nothing in the code catches it), as would an invocation cut off between two calls.

Errors are botocore's: ``ClientError`` subclasses named by the code (``client.exceptions.X`` works) with
the response shape botocore parses, and ``ReadTimeoutError`` / ``ConnectionClosedError``.
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from bench.soak import expressions as expr

ACCOUNT = "123456789012"
REGION = "us-east-1"


class InvocationDied(BaseException):
    """The Lambda invocation ended here (its timeout, or an injected crash): not an Exception on purpose."""


_ERROR_CLASSES: dict[str, type[ClientError]] = {}


def error_class(code: str) -> type[ClientError]:
    found = _ERROR_CLASSES.get(code)
    if found is None:
        found = _ERROR_CLASSES[code] = type(code, (ClientError,), {})
    return found


def client_error(code: str, message: str, operation: str, status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message},
                                "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "soak"}, **extra}
    return error_class(code)(response, operation)  # type: ignore[arg-type]


class Exceptions:
    """``client.exceptions``: any name is the ClientError subclass raised with that code."""

    def __getattr__(self, name: str) -> type[ClientError]:
        return error_class(name)


THROTTLE_CODES = {"dynamodb": "ProvisionedThroughputExceededException", "sns": "Throttling",
                  "cloudwatch": "Throttling", "sqs": "RequestThrottled"}
RETRYABLE_CODES = {"ThrottlingException", "Throttling", "ProvisionedThroughputExceededException",
                   "RequestThrottled", "TooManyRequestsException", "RequestLimitExceeded", "InternalFailure",
                   "ServiceUnavailable", "InternalServerError", "InternalError", "RequestTimeout"}


# ------------------------------------------------------------------------------------------ rate limits
@dataclass
class Bucket:
    capacity: float
    rate: float  # tokens a second
    tokens: float = -1.0
    at: float = 0.0  # seconds since the simulation's start

    def take(self, now: float, amount: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens = self.capacity
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False


# (burst, per second). ECS: aws-facts section 4. CloudWatch: default TPS quotas (DescribeAlarms 9,
# GetMetricData 50; no documented burst: one second's worth). SNS Publish: 300/s (the smallest regional
# default). SQS: effectively unlimited for standard queues.
API_LIMITS: dict[tuple[str, str], tuple[float, float]] = {
    ("ecs", "UpdateService"): (50, 5), ("ecs", "DescribeServices"): (100, 20),
    ("ecs", "RegisterTaskDefinition"): (20, 1), ("ecs", "DescribeTaskDefinition"): (50, 20),
    ("ecs", "ListTaskDefinitions"): (50, 20), ("ecs", "RunTask"): (100, 40),
    ("cloudwatch", "DescribeAlarms"): (9, 9), ("cloudwatch", "GetMetricData"): (50, 50),
    ("sns", "Publish"): (300, 300),
}
PARTITION_WCU, PARTITION_RCU = 1000.0, 3000.0

# Simulated latency of one attempt, seconds (medians of what these calls take in-region; jittered x0.5-2).
LATENCY: dict[str, float] = {"dynamodb": 0.006, "sns": 0.025, "sqs": 0.012, "cloudwatch": 0.06}
LATENCY_OPS: dict[tuple[str, str], float] = {
    ("ecs", "DescribeServices"): 0.045, ("ecs", "UpdateService"): 0.09, ("ecs", "RunTask"): 0.2,
    ("ecs", "RegisterTaskDefinition"): 0.15, ("ecs", "DescribeTaskDefinition"): 0.03,
    ("ecs", "ListTaskDefinitions"): 0.05, ("cloudwatch", "GetMetricData"): 0.12,
    ("dynamodb", "TransactWriteItems"): 0.015, ("dynamodb", "BatchGetItem"): 0.012, ("dynamodb", "Query"): 0.01,
}


# ------------------------------------------------------------------------------------------ faults
@dataclass
class FaultRates:
    """Per-attempt probabilities. botocore retries each call up to 5 times, so independent faults at these
    rates almost never fail a call (0.3% ^ 6); what does fail calls is what is correlated: the token
    buckets, outage windows, and (for calls without botocore's retries) single faults. The rates are
    those of a bad day, well above AWS's usual error rates, so that every path is exercised many times."""

    throttle: float = 0.004
    server_error: float = 0.003
    timeout_before: float = 0.002  # the request never reached AWS
    lost_answer: float = 0.002  # AWS applied it, the answer timed out
    invocation_dies: float = 0.005  # per invocation: cut off between two of its calls (a Lambda timeout)
    concurrent: float = 0.5  # per state read with another delivery for that service pending: it runs right then


@dataclass
class Outage:
    service: str
    start: float
    end: float
    kind: str  # "500" | "throttle"


@dataclass
class Invocation:
    """One Lambda invocation: its simulated clock, deadline and the call at which it is cut off (if any)."""

    function: str
    started: datetime
    timeout: float
    die_at_call: int | None = None
    elapsed: float = 0.0
    calls: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)

    @property
    def now(self) -> datetime:
        return self.started + timedelta(seconds=self.elapsed)

    def remaining_ms(self) -> int:
        return max(0, int((self.timeout - self.elapsed) * 1000))


class Aws:
    """The services, the call pipeline, and what was injected (``faults``: kind -> count)."""

    def __init__(self, rng: random.Random, start: datetime, rates: FaultRates | None = None) -> None:
        self.rng = rng
        self.start = start
        self.rates = rates or FaultRates()
        self.outages: list[Outage] = []
        self.buckets: dict[Any, Bucket] = {}
        self.faults: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.invocation: Invocation | None = None
        self.world_now: Callable[[], datetime] = lambda: start
        self.services: dict[str, Any] = {}
        self.on_state_read: Callable[[str], None] | None = None  # concurrency injection (the world's)
        self.enabled = True  # faults and limits (off while the world sets itself up)

    # ---------------------------------------------------------------- clients
    def factory(self, service: str, config: Any = None, place: Any = None, access: Any = None) -> Client:
        """A client of ``service`` (``autopilot.aws.clients.use_factory``). The simulated estate is one account
        and region (the hub's own, ``ACCOUNT`` and ``REGION``): a member place's client (issue 13: ``place`` and
        ``access``, the role the hub assumes there) has nothing to act on here, and is refused loudly."""
        if place is not None:
            raise NotImplementedError(f"the soak's estate is {ACCOUNT}/{REGION} only; no member place {place} "
                                      f"({getattr(access, 'role_arn', access)})")
        retries = dict(getattr(config, "retries", None) or {})
        attempts = int(retries.get("total_max_attempts") or (int(retries.get("max_attempts", 4)) + 1))
        return Client(self, service, attempts)

    def seconds(self, at: datetime | None = None) -> float:
        return ((at or self.now()) - self.start).total_seconds()

    def now(self) -> datetime:
        return self.invocation.now if self.invocation is not None else self.world_now()

    # ---------------------------------------------------------------- the pipeline
    def call(self, service: str, operation: str, handler: Callable[..., Any], kwargs: dict[str, Any],
             attempts: int) -> Any:
        inv = self.invocation
        self.calls[f"{service}:{operation}"] += 1
        for attempt in range(1, attempts + 1):
            if inv is not None:
                inv.calls += 1
                inv.by_operation[f"{service}:{operation}"] += 1
                if inv.die_at_call is not None and inv.calls >= inv.die_at_call:
                    self.faults["lambda:cut-off"] += 1
                    raise InvocationDied(f"{inv.function} cut off before call {inv.calls}")
                if inv.elapsed >= inv.timeout:
                    self.faults["lambda:timeout"] += 1
                    raise InvocationDied(f"{inv.function} timed out after {inv.timeout} s")
                inv.elapsed += self._latency(service, operation)
            fault = self._fault(service, operation) if self.enabled else None
            error: BaseException | None = None
            if fault in ("throttle", "500", "503", "timeout", "outage-throttle", "outage-500", "outage-503"):
                self.faults[f"{service}:{fault}"] += 1
                error = self._error(service, operation, fault.removeprefix("outage-"))
            elif self.enabled and not self._within_limits(service, operation, kwargs):
                self.faults[f"{service}:rate-limited"] += 1
                error = self._error(service, operation, "throttle")
            else:
                try:
                    result = handler(**kwargs)
                except ClientError as exc:
                    error = exc
                    if exc.response["Error"]["Code"] not in RETRYABLE_CODES:
                        raise
                else:
                    if fault == "lost":
                        self.faults[f"{service}:lost-answer"] += 1
                        error = ReadTimeoutError(endpoint_url=f"https://{service}.{REGION}.amazonaws.com/")
                    else:
                        return result
            if attempt == attempts:
                assert error is not None
                if isinstance(error, ClientError):
                    response: dict[str, Any] = error.response  # type: ignore[assignment]
                    response.setdefault("ResponseMetadata", {})["MaxAttemptsReached"] = attempts > 1
                raise error
            if inv is not None:  # botocore's standard mode back-off: random up to 2^(attempt-1) s, max 20 s
                inv.elapsed += self.rng.random() * min(20.0, 2.0 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _latency(self, service: str, operation: str) -> float:
        base = LATENCY_OPS.get((service, operation), LATENCY.get(service, 0.05))
        return base * (0.5 + 1.5 * self.rng.random())

    def _fault(self, service: str, operation: str) -> str | None:
        now = self.seconds()
        for outage in self.outages:
            if outage.service == service and outage.start <= now < outage.end:
                return f"outage-{outage.kind}"
        r, rates = self.rng.random(), self.rates
        if r < rates.throttle:
            return "throttle"
        r -= rates.throttle
        if r < rates.server_error:
            return "500" if self.rng.random() < 0.5 else "503"
        r -= rates.server_error
        if r < rates.timeout_before:
            return "timeout"
        r -= rates.timeout_before
        if r < rates.lost_answer and operation not in _READS_ONLY and not operation.startswith(("Describe", "List",
                                                                                                 "Get", "Query")):
            return "lost"
        return None

    def _error(self, service: str, operation: str, kind: str) -> BaseException:
        if kind == "timeout":
            return ReadTimeoutError(endpoint_url=f"https://{service}.{REGION}.amazonaws.com/")
        if kind == "closed":
            return ConnectionClosedError(endpoint_url=f"https://{service}.{REGION}.amazonaws.com/")
        if kind == "throttle":
            return client_error(THROTTLE_CODES.get(service, "ThrottlingException"), "Rate exceeded", operation)
        status = 500 if kind == "500" else 503
        code = "InternalFailure" if kind == "500" else "ServiceUnavailable"
        return client_error(code, "We encountered an internal error. Please try again.", operation, status)

    def _within_limits(self, service: str, operation: str, kwargs: dict[str, Any]) -> bool:
        now = self.seconds()
        limit = API_LIMITS.get((service, operation))
        if limit is not None:
            bucket = self.buckets.get((service, operation))
            if bucket is None:
                bucket = self.buckets[(service, operation)] = Bucket(*limit)
            if not bucket.take(now):
                return False
        if service == "dynamodb":
            table = self.services["dynamodb"]
            for partition, units, write in table.capacity_of(operation, kwargs):
                key = ("dynamodb", partition, write)
                bucket = self.buckets.get(key)
                if bucket is None:
                    rate = PARTITION_WCU if write else PARTITION_RCU
                    bucket = self.buckets[key] = Bucket(rate, rate)
                if not bucket.take(now, units):
                    return False
        return True


_READS_ONLY = {"BatchGetItem"}


class Client:
    """A boto3-shaped client of one fake service (``client.get_item(...)``, ``client.exceptions.X``)."""

    def __init__(self, aws: Aws, service: str, attempts: int) -> None:
        self._aws = aws
        self._service = service
        self._attempts = attempts
        self.exceptions = Exceptions()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        implementation = self._aws.services[self._service]
        handler = getattr(implementation, name, None)
        if handler is None or name.startswith("_"):
            raise AttributeError(f"the soak's {self._service} does not implement {name}")
        operation = "".join(part.title() for part in name.split("_"))

        def call(**kwargs: Any) -> Any:
            return self._aws.call(self._service, operation, handler, kwargs, self._attempts)

        return call


# ------------------------------------------------------------------------------------------ DynamoDB
MAX_ITEM_BYTES = 400 * 1024


@dataclass
class Write:
    """What the invariants read: every item written (its size) and every audit record."""

    key: tuple[str, str]
    size: int


def _copy(item: expr.Item) -> expr.Item:
    """A copy no caller can change the table through (strings and numbers are immutable: one level is enough)."""
    return {k: dict(v) if len(v) == 1 and ("S" in v or "N" in v) else copy.deepcopy(v) for k, v in item.items()}


class DynamoDB:
    """One table (PK/SK, GSI1 on GSI1PK/GSI1SK), as the state table. Conditions, transactions, batches,
    item size limits, pagination (1 MB pages) and per-partition capacity, with DynamoDB's error codes."""

    def __init__(self, table: str, aws: Aws) -> None:
        self.table = table
        self.aws = aws
        self.items: dict[tuple[str, str], expr.Item] = {}
        self.partitions: dict[str, dict[str, expr.Item]] = defaultdict(dict)
        self.gsi: dict[str, dict[tuple[str, str, str], expr.Item]] = defaultdict(dict)
        self.largest = 0
        self.largest_key: tuple[str, str] = ("", "")
        self.on_write: list[Callable[[expr.Item], None]] = []
        self.keep_audit = True  # the soak reads audit records as they are written (on_write), not from the table

    # ---------------------------------------------------------------- capacity (for the rate limits)
    def capacity_of(self, operation: str, kwargs: dict[str, Any]) -> list[tuple[str, float, bool]]:
        out: list[tuple[str, float, bool]] = []
        if operation in ("PutItem", "DeleteItem", "UpdateItem"):
            item = kwargs.get("Item") or kwargs.get("Key") or {}
            units = max(1.0, math.ceil(expr.item_size(item) / 1024))
            out.append((item["PK"]["S"], units, True))
            if "GSI1PK" in item:
                out.append(("GSI1#" + item["GSI1PK"]["S"], units, True))
        elif operation == "TransactWriteItems":
            for write in kwargs.get("TransactItems", []):
                (_, body), = write.items()
                item = body.get("Item") or body.get("Key") or {}
                units = 2 * max(1.0, math.ceil(expr.item_size(item) / 1024))
                out.append((item["PK"]["S"], units, True))
                if "GSI1PK" in item:
                    out.append(("GSI1#" + item["GSI1PK"]["S"], units, True))
        elif operation == "GetItem":
            out.append((kwargs["Key"]["PK"]["S"], 1.0, False))
        elif operation == "Query":
            values = kwargs.get("ExpressionAttributeValues") or {}
            partition = next((v.get("S") for v in values.values() if "S" in v), "?")
            prefix = "GSI1#" if kwargs.get("IndexName") else ""
            out.append((prefix + str(partition), 8.0, False))
        return out

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _k(item: expr.Item) -> tuple[str, str]:
        return item["PK"]["S"], item["SK"]["S"]

    def _check_table(self, name: str, operation: str) -> None:
        if name != self.table:
            raise client_error("ResourceNotFoundException", "Requested resource not found", operation)

    def _store(self, item: expr.Item, operation: str) -> None:
        size = expr.item_size(item)
        if size > MAX_ITEM_BYTES:
            raise client_error("ValidationException", "Item size has exceeded the maximum allowed size", operation)
        key = self._k(item)
        if size > self.largest:
            self.largest, self.largest_key = size, key
        for listener in self.on_write:
            listener(item)
        if not self.keep_audit and key[0].startswith("AUDIT#"):
            return
        old = self.items.get(key)
        if old is not None and "GSI1PK" in old:
            self.gsi[old["GSI1PK"]["S"]].pop((old["GSI1SK"]["S"], *key), None)
        self.items[key] = item
        self.partitions[key[0]][key[1]] = item
        if "GSI1PK" in item:
            self.gsi[item["GSI1PK"]["S"]][(item["GSI1SK"]["S"], *key)] = item

    def _delete(self, key: tuple[str, str]) -> None:
        old = self.items.pop(key, None)
        if old is None:
            return
        self.partitions[key[0]].pop(key[1], None)
        if "GSI1PK" in old:
            self.gsi[old["GSI1PK"]["S"]].pop((old["GSI1SK"]["S"], *key), None)

    def _condition(self, body: dict[str, Any], current: expr.Item | None, operation: str) -> bool:
        try:
            return expr.matches(body.get("ConditionExpression"), current, body.get("ExpressionAttributeNames"),
                                body.get("ExpressionAttributeValues"))
        except expr.ExpressionError as exc:
            raise client_error("ValidationException", str(exc), operation) from None

    # ---------------------------------------------------------------- operations
    def get_item(self, TableName: str, Key: expr.Item, ConsistentRead: bool = False,
                 ProjectionExpression: str | None = None,
                 ExpressionAttributeNames: expr.Names | None = None) -> dict[str, Any]:
        self._check_table(TableName, "GetItem")
        key = self._k(Key)
        found = self.items.get(key)
        answer = {} if found is None else {
            "Item": _copy(expr.project(found, ProjectionExpression, ExpressionAttributeNames))}
        if key[1] == "STATE" and self.aws.on_state_read is not None:
            self.aws.on_state_read(key[0])  # after the read: another invocation may write before this one does
        return answer

    def put_item(self, TableName: str, Item: expr.Item, ConditionExpression: str | None = None,
                 ExpressionAttributeNames: expr.Names | None = None,
                 ExpressionAttributeValues: expr.Values | None = None,
                 ReturnValuesOnConditionCheckFailure: str | None = None) -> dict[str, Any]:
        self._check_table(TableName, "PutItem")
        current = self.items.get(self._k(Item))
        body = {"ConditionExpression": ConditionExpression, "ExpressionAttributeNames": ExpressionAttributeNames,
                "ExpressionAttributeValues": ExpressionAttributeValues}
        if not self._condition(body, current, "PutItem"):
            extra: dict[str, Any] = {"Item": copy.deepcopy(current)} \
                if ReturnValuesOnConditionCheckFailure == "ALL_OLD" and current else {}
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", "PutItem",
                               **extra)
        self._store(copy.deepcopy(Item), "PutItem")
        return {}

    def update_item(self, TableName: str, Key: expr.Item, UpdateExpression: str,
                    ConditionExpression: str | None = None,
                    ExpressionAttributeNames: expr.Names | None = None,
                    ExpressionAttributeValues: expr.Values | None = None) -> dict[str, Any]:
        self._check_table(TableName, "UpdateItem")
        current = self.items.get(self._k(Key))
        body = {"ConditionExpression": ConditionExpression, "ExpressionAttributeNames": ExpressionAttributeNames,
                "ExpressionAttributeValues": ExpressionAttributeValues}
        if not self._condition(body, current, "UpdateItem"):
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", "UpdateItem")
        base = copy.deepcopy(current) if current is not None else copy.deepcopy(Key)
        try:
            updated = expr.apply_update(base, UpdateExpression, ExpressionAttributeNames, ExpressionAttributeValues)
        except expr.ExpressionError as exc:
            raise client_error("ValidationException", str(exc), "UpdateItem") from None
        self._store(updated, "UpdateItem")
        return {}

    def delete_item(self, TableName: str, Key: expr.Item, ConditionExpression: str | None = None,
                    ExpressionAttributeNames: expr.Names | None = None,
                    ExpressionAttributeValues: expr.Values | None = None) -> dict[str, Any]:
        self._check_table(TableName, "DeleteItem")
        body = {"ConditionExpression": ConditionExpression, "ExpressionAttributeNames": ExpressionAttributeNames,
                "ExpressionAttributeValues": ExpressionAttributeValues}
        if not self._condition(body, self.items.get(self._k(Key)), "DeleteItem"):
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", "DeleteItem")
        self._delete(self._k(Key))
        return {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        if not 1 <= len(TransactItems) <= 100:
            raise client_error("ValidationException", "Member must have length less than or equal to 100",
                               "TransactWriteItems")
        keys = []
        reasons = []
        failed = False
        for write in TransactItems:
            (kind, body), = write.items()
            self._check_table(body["TableName"], "TransactWriteItems")
            key = self._k(body.get("Item") or body["Key"])
            keys.append(key)
            ok = self._condition(body, self.items.get(key), "TransactWriteItems")
            if kind == "Put" and expr.item_size(body["Item"]) > MAX_ITEM_BYTES:
                raise client_error("ValidationException", "Item size has exceeded the maximum allowed size",
                                   "TransactWriteItems")
            reasons.append({"Code": "None"} if ok else {"Code": "ConditionalCheckFailed",
                                                          "Message": "The conditional request failed"})
            failed = failed or not ok
        if len(set(keys)) != len(keys):
            raise client_error("ValidationException", "Transaction request cannot include multiple operations on "
                               "one item", "TransactWriteItems")
        if failed:
            raise client_error("TransactionCanceledException",
                               "Transaction cancelled, please refer cancellation reasons for specific reasons",
                               "TransactWriteItems", CancellationReasons=reasons)
        for write in TransactItems:
            (kind, body), = write.items()
            if kind == "Put":
                self._store(copy.deepcopy(body["Item"]), "TransactWriteItems")
            elif kind == "Delete":
                self._delete(self._k(body["Key"]))
            elif kind == "Update":
                current = self.items.get(self._k(body["Key"])) or copy.deepcopy(body["Key"])
                self._store(expr.apply_update(copy.deepcopy(current), body["UpdateExpression"],
                                              body.get("ExpressionAttributeNames"),
                                              body.get("ExpressionAttributeValues")), "TransactWriteItems")
        return {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[expr.Item]] = {}
        unprocessed: dict[str, Any] = {}
        now = self.aws.seconds()
        for table, request in RequestItems.items():
            self._check_table(table, "BatchGetItem")
            keys = request["Keys"]
            if len(keys) > 100:
                raise client_error("ValidationException", "Too many items requested for the BatchGetItem call",
                                   "BatchGetItem")
            found, left = [], []
            for key in keys:
                bucket = self.aws.buckets.get(("dynamodb", key["PK"]["S"], False))
                if self.aws.enabled and bucket is not None and not bucket.take(now, 1.0):
                    left.append(key)  # that partition is hot: left for the caller to ask again
                    continue
                item = self.items.get(self._k(key))
                if item is not None:
                    found.append(_copy(expr.project(item, request.get("ProjectionExpression"),
                                                            request.get("ExpressionAttributeNames"))))
            responses[table] = found
            if left:
                unprocessed[table] = {**request, "Keys": left}
        return {"Responses": responses, "UnprocessedKeys": unprocessed}

    def query(self, TableName: str, KeyConditionExpression: str,
              ExpressionAttributeValues: expr.Values, IndexName: str | None = None,
              ExpressionAttributeNames: expr.Names | None = None, ScanIndexForward: bool = True,
              ExclusiveStartKey: expr.Item | None = None, Limit: int | None = None,
              ConsistentRead: bool = False, ProjectionExpression: str | None = None) -> dict[str, Any]:
        self._check_table(TableName, "Query")
        names = ExpressionAttributeNames or {}
        try:
            attribute, placeholder, evaluate = expr.key_condition(KeyConditionExpression)
        except expr.ExpressionError as exc:
            raise client_error("ValidationException", str(exc), "Query") from None
        partition = ExpressionAttributeValues[placeholder]["S"]
        attribute = names.get(attribute, attribute)
        if IndexName == "GSI1":
            if ConsistentRead:
                raise client_error("ValidationException", "Consistent reads are not supported on global secondary "
                                   "indexes", "Query")
            rows = sorted(self.gsi.get(partition, {}).items())
            ordered = [item for _, item in rows]
        else:
            ordered = [self.partitions[partition][sk] for sk in sorted(self.partitions.get(partition, {}))]

        def sort_of(i: expr.Item) -> tuple[str, ...]:
            return (i["GSI1SK"]["S"], i["PK"]["S"], i["SK"]["S"]) if IndexName == "GSI1" else (i["SK"]["S"],)

        if not ScanIndexForward:
            ordered.reverse()
        if ExclusiveStartKey is not None:
            start = sort_of(ExclusiveStartKey)
            ordered = [i for i in ordered if (sort_of(i) > start if ScanIndexForward else sort_of(i) < start)]
        out: list[expr.Item] = []
        size = 0
        last: expr.Item | None = None
        for item in ordered:
            if not evaluate(item, names, ExpressionAttributeValues):
                continue
            out.append(_copy(expr.project(item, ProjectionExpression, names)))
            size += expr.item_size(item)
            if (Limit is not None and len(out) >= Limit) or size >= 1024 * 1024:
                last = item
                break
        answer: dict[str, Any] = {"Items": out, "Count": len(out)}
        if last is not None and last is not ordered[-1]:
            key = {"PK": last["PK"], "SK": last["SK"]}
            if IndexName == "GSI1":
                key.update(GSI1PK=last["GSI1PK"], GSI1SK=last["GSI1SK"])
            answer["LastEvaluatedKey"] = key
        return answer
