"""Lambda as the soak runs the real handlers (functions/*/app.py ``lambda_handler``).

- EventBridge -> asynchronous invocation: a failed invocation (an error, or one cut off) is retried twice,
  1 then 2 minutes later, then the event goes to the dead-letter queue (the template's EventInvokeConfig);
- deliveries are at least once and not in order: most within seconds, some late (1-10 minutes), some twice;
- the restart queue's event source mapping: batches of up to 10 visible messages, ReportBatchItemFailures,
  redelivery after the visibility timeout, the dead-letter queue after 5 receives;
- the reconciler every minute (its schedule retries nothing; a failed run is just a failed run);
- concurrent invocations for one service: when an invocation has read a service's state, another pending
  delivery for that service sometimes runs right then, to completion, before the first one writes;
- a timeout: each invocation has its function's timeout, against its simulated duration (the sum of its
  calls' latencies and botocore's back-offs); some invocations are cut off between two calls.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.soak.aws import Aws, Invocation, InvocationDied
from bench.soak.world import Clock, Queue, World

ROOT = Path(__file__).resolve().parents[2]
TIMEOUTS = {"scaler": 60.0, "healer": 60.0, "rollout": 60.0, "restarter": 60.0, "reconciler": 120.0}
RETRY_DELAYS = (60.0, 120.0)  # Lambda's asynchronous retries (MaximumRetryAttempts: 2)


class Context:
    """What Powertools reads from the Lambda context object; the remaining time follows the simulated clock."""

    memory_limit_in_mb = 256
    log_group_name = "/aws/lambda/soak"
    log_stream_name = "soak"
    function_version = "live"

    def __init__(self, aws: Aws, function: str) -> None:
        self.aws = aws
        self.function_name = f"soak-{function}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:soak-{function}:live"
        self.aws_request_id = f"req-{random.getrandbits(64):016x}"

    def get_remaining_time_in_millis(self) -> int:
        inv = self.aws.invocation
        return inv.remaining_ms() if inv is not None else 60_000


@dataclass
class Delivery:
    function: str
    event: dict[str, Any]
    key: str | None  # the service or family it is about (for concurrency injection)
    attempt: int = 0
    done: bool = False
    event_id: str = ""


@dataclass
class RunStats:
    calls: int
    simulated: float
    real: float
    ok: bool
    by_operation: Counter[str]
    kind: str = "run"  # run (the scheduled invocation) | shard (one shard of a fanned-out run)
    at: Any = None


@dataclass
class Ledger:
    """What the invariants read about deliveries."""

    delivered: Counter[str] = field(default_factory=Counter)  # function -> deliveries (incl. duplicates)
    succeeded: dict[str, str] = field(default_factory=dict)  # event id -> function (an invocation returned)
    answers: dict[str, str] = field(default_factory=dict)  # event id -> what the handler returned (diagnostics)
    dead: dict[str, str] = field(default_factory=dict)  # event id -> function (dead-lettered)
    foreign: set[str] = field(default_factory=set)  # event ids from another account
    failures: Counter[str] = field(default_factory=Counter)  # function -> failed invocations
    cut_off: Counter[str] = field(default_factory=Counter)
    reconciler_runs: list[RunStats] = field(default_factory=list)
    nested: int = 0


class Runtime:
    def __init__(self, aws: Aws, world: World, clock: Clock, rng: random.Random, handlers: dict[str, Any],
                 service_of_alarm: dict[str, str]) -> None:
        self.aws, self.world, self.clock, self.rng, self.handlers = aws, world, clock, rng, handlers
        self.service_of_alarm = service_of_alarm
        self.ledger = Ledger()
        self.pending: dict[str, list[Delivery]] = defaultdict(list)
        self.state_reads: set[str] = set()
        self.on_reconciled: list[Callable[[set[str], bool, Invocation, tuple[int, int] | None], None]] = []
        self.late_share, self.duplicate_share, self.foreign_share = 0.02, 0.01, 0.005
        world.deliver = self.deliver
        aws.on_state_read = self._state_read

    # ---------------------------------------------------------------- EventBridge
    def deliver(self, function: str, event: dict[str, Any]) -> None:
        self.ledger.delivered[function] += 1
        key = self._key(function, event)
        for copy_index in range(2 if self.rng.random() < self.duplicate_share else 1):
            delay = 0.2 + 2.8 * self.rng.random()
            if self.rng.random() < self.late_share:
                delay += 60 + 540 * self.rng.random()
            if copy_index:
                delay += 1 + 59 * self.rng.random()
                self.aws.faults["eventbridge:duplicate"] += 1
            elif delay > 60:
                self.aws.faults["eventbridge:late"] += 1
            self._schedule(Delivery(function, event, key), delay)
        if function == "scaler" and "detail-type" in event and self.rng.random() < self.foreign_share:
            foreign = copy.deepcopy(event)  # a dev account's alarm of the same name, forwarded to this bus
            foreign["id"] = f"foreign-{foreign['id']}"
            foreign["account"] = "210987654321"
            foreign["resources"] = [r.replace(":123456789012:", ":210987654321:") for r in foreign.get("resources", [])]
            self.ledger.foreign.add(foreign["id"])
            self.aws.faults["eventbridge:foreign-account"] += 1
            self._schedule(Delivery(function, foreign, None), 0.5 + self.rng.random())

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        delivery.event_id = self._event_id(delivery.function, delivery.event)
        if delivery.key:
            self.pending[delivery.key].append(delivery)
        self.clock.after(delay, lambda: self._invoke_async(delivery))

    @staticmethod
    def _event_id(function: str, event: dict[str, Any]) -> str:
        if "alarmData" in event:
            return f"{event['alarmArn']}@{event['alarmData']['state']['timestamp']}"
        return str(event.get("id", "-"))

    def _key(self, function: str, event: dict[str, Any]) -> str | None:
        detail = event.get("detail") or {}
        if function == "scaler":
            name = detail.get("alarmName") or (event.get("alarmData") or {}).get("alarmName")
            return self.service_of_alarm.get(str(name))
        cluster = str(detail.get("clusterArn", "")).rsplit("/", 1)[-1]
        group = str(detail.get("group", ""))
        if group.startswith("service:"):
            return f"SVC#{cluster}#{group.split(':', 1)[1]}"
        if group.startswith("family:"):
            return f"TASK#{cluster}#{group.split(':', 1)[1]}"
        resources = event.get("resources") or []
        if function in ("rollout", "healer") and resources and ":service/" in resources[0]:
            _, cluster, name = resources[0].rsplit("/", 2)
            return f"SVC#{cluster}#{name}"
        return None

    def _invoke_async(self, delivery: Delivery) -> None:
        if delivery.done:
            return
        delivery.done = True
        if delivery.key:
            waiting = self.pending.get(delivery.key)
            if waiting and delivery in waiting:
                waiting.remove(delivery)
        handler = self.handlers[delivery.function]
        answer: dict[str, Any] = {}
        ok = self.run(delivery.function,
                      lambda context: answer.update(out=handler.lambda_handler(delivery.event, context)))
        if ok:
            self.ledger.succeeded[delivery.event_id] = delivery.function
            self.ledger.answers[delivery.event_id] = json.dumps(answer.get("out"), default=str)[:400]
            return
        if delivery.attempt < len(RETRY_DELAYS):
            retry = Delivery(delivery.function, delivery.event, delivery.key, delivery.attempt + 1)
            retry.event_id = delivery.event_id
            self.clock.after(RETRY_DELAYS[delivery.attempt], lambda: self._invoke_async(retry))
        else:
            self.ledger.dead[delivery.event_id] = delivery.function
            self.world.dead_letters.append({"kind": delivery.function, "id": delivery.event_id})

    # ---------------------------------------------------------------- one invocation
    def run(self, function: str, call: Callable[[Context], Any]) -> bool:
        outer = self.aws.invocation
        started = outer.now if outer is not None else self.clock.now
        die_at = None
        if self.aws.enabled and self.rng.random() < self.aws.rates.invocation_dies:
            die_at = 1 + int(self.rng.random() * 12)
        inv = Invocation(function=function, started=started, timeout=TIMEOUTS[function], die_at_call=die_at)
        self.aws.invocation = inv
        try:
            call(Context(self.aws, function))
            return True
        except InvocationDied:
            self.ledger.cut_off[function] += 1
            self.ledger.failures[function] += 1
            return False
        except Exception:
            self.ledger.failures[function] += 1
            return False
        finally:
            self.aws.invocation = outer

    def _state_read(self, key: str) -> None:
        inv = self.aws.invocation
        if inv is not None and inv.function == "reconciler":
            self.state_reads.add(key)
        if not self.aws.enabled or self.rng.random() >= self.aws.rates.concurrent:
            return
        waiting = [d for d in self.pending.get(key, []) if not d.done]
        if not waiting or inv is None or inv.function == "reconciler":
            return
        self.ledger.nested += 1
        self.aws.faults["lambda:concurrent-invocation"] += 1
        self._invoke_async(waiting[0])  # runs now, to completion, between this invocation's read and its write

    # ---------------------------------------------------------------- the reconciler
    def reconcile(self) -> None:
        """The schedule's invocation: a run, or its fan-out into shards (then the shards come from the queue)."""
        event = {"id": f"tick-{self.clock.now.isoformat()}", "detail-type": "Scheduled Event",
                 "source": "aws.scheduler"}
        self._reconciler_invocation(event, None)

    def _reconciler_invocation(self, event: dict[str, Any], shard: tuple[int, int] | None) -> bool:
        handler = self.handlers["reconciler"]
        self.state_reads = set()
        started = time.perf_counter()
        holder: dict[str, Any] = {}

        def call(context: Context) -> Any:
            assert self.aws.invocation is not None
            holder["inv"] = self.aws.invocation
            holder["answer"] = handler.lambda_handler(event, context)
            return holder["answer"]

        ok = self.run("reconciler", call)
        inv = holder["inv"]
        answer = holder.get("answer") if ok else None
        fanned = isinstance(answer, dict) and answer.get("status") == "fanned-out"
        stale = shard is not None and isinstance(answer, dict) and any(
            s.get("status") == "ignored" for s in answer.get("shards") or [])
        kind = "stale" if stale else "shard" if shard else "fan-out" if fanned else "run"
        self.ledger.reconciler_runs.append(RunStats(
            calls=inv.calls, simulated=inv.elapsed, real=time.perf_counter() - started, ok=ok,
            by_operation=inv.by_operation, kind=kind, at=inv.started))
        died = (inv.die_at_call is not None and inv.calls >= inv.die_at_call) or inv.elapsed >= inv.timeout
        if not fanned and not stale:
            for listener in self.on_reconciled:
                listener(set(self.state_reads), died, inv, shard)
        return ok

    def attach_shard_queue(self, queue: Queue) -> None:
        """The reconcile queue's event source mapping: batch size 1 (each shard in an invocation of its own)."""
        def visible(at: Any) -> None:
            self.clock.at(at, lambda: self._shard(queue))

        queue.on_visible = visible

    def _shard(self, queue: Queue) -> None:
        for message in queue.receive(1):
            body = json.loads(message.body)
            ok = self._reconciler_invocation({"Records": [{"messageId": message.id, "body": message.body}]},
                                             (int(body["shard"]), int(body["of"])))
            queue.settle(message, ok)

    # ---------------------------------------------------------------- the restart queue's event source
    def attach_queue(self, queue: Queue) -> None:
        def visible(at: Any) -> None:
            self.clock.at(at + timedelta(seconds=1), lambda: self._poll(queue))

        queue.on_visible = visible

    def _poll(self, queue: Queue) -> None:
        batch = queue.receive(10)
        if not batch:
            return
        template = json.loads((ROOT / "events" / "restarter-restart-due.json").read_text())["Records"][0]
        records = [{**template, "messageId": m.id, "receiptHandle": m.handle, "body": m.body,
                    "attributes": {**template["attributes"], "ApproximateReceiveCount": str(m.receives)}}
                   for m in batch]
        answer: dict[str, Any] = {}

        def call(context: Context) -> Any:
            answer.update(self.handlers["restarter"].lambda_handler({"Records": records}, context))

        ok = self.run("restarter", call)
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])} if ok else {m.id for m in batch}
        for message in batch:
            success = message.id not in failed
            if success:
                self.ledger.succeeded[f"sqs:{message.id}"] = "restarter"
            queue.settle(message, success)
            if not success and message.id not in queue.messages:
                self.ledger.dead[f"sqs:{message.id}"] = "restarter"
        if len(batch) == 10:
            self.clock.after(1, lambda: self._poll(queue))
