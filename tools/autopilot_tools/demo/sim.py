"""One scenario's world: a fresh stack and estate on the emulator, a virtual clock, and the verbs
stories are told with (an alarm changes, a pipeline deploys, time passes, ...).

After every handler invocation the world is observed the way an operator would: the audit trail
(StateTable.history) gives the decision, its reason and the AWS calls made; an SQS queue subscribed
to the SNS topic gives the notifications; DescribeServices gives the resulting desired count,
revision and capacity strategy. That is what the timeline shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autopilot.aws.clients import client
from autopilot.store.table import AuditEntry, StateTable
from autopilot_tools.demo import backdoor, estate
from autopilot_tools.demo.bus import EventRouter
from autopilot_tools.demo.clock import VirtualClock, story_start
from autopilot_tools.demo.dataplane import Behaviour, EcsDataPlane, revision
from autopilot_tools.demo.emulator import REGION, Emulator
from autopilot_tools.demo.events import alarm_action_payload, alarm_state_change, cw_time
from autopilot_tools.demo.lambdas import FOLDERS, FunctionHost, Invocation
from autopilot_tools.demo.timeline import AlarmSample, Check, Row, ScenarioResult, ServiceSample
from autopilot_tools.localstack import create_stack, load_template

RECONCILE_EVERY = 60  # the template's rate(1 minute)
SHORT = {**FOLDERS, "PolicyResourceFunction": "resource"}  # the timeline's actor column is narrow


class Sim:
    """A scenario's world. Every verb adds rows to ``result`` (and streams them to ``on_row``)."""

    def __init__(self, emulator: Emulator, result: ScenarioResult, *, policies: Path,
                 parameters: dict[str, str] | None = None, on_row: Callable[[Row], None] | None = None,
                 template: dict[str, Any] | None = None) -> None:
        self.result = result
        self.on_row = on_row
        self.clock = VirtualClock(story_start())
        result.started_at = self.clock.start.isoformat()
        emulator.reset()
        self.template = template or load_template()
        self.stack = create_stack(client, parameters={"ManagedClusters": "prod,batch", **(parameters or {})},
                                  template=self.template)
        self.store = StateTable(self.stack.ref("StateTable"))
        self._probe = self._subscribe_probe()
        self.estate = estate.build(self.store, policies, self.clock())
        self.router = EventRouter(self.stack, self.template)
        self.host = FunctionHost(self.stack, self.template, self.clock)
        self.ecs = EcsDataPlane(self.clock, self.estate.clusters)
        self.ecs.adopt(self.estate.services)
        self._seen_audit: set[str] = set()
        self._next_tick = self.clock.start + timedelta(seconds=RECONCILE_EVERY)
        self._restart_due: dict[str, datetime] = {}
        self.restart_delays: list[float] = []  # DelaySeconds of each restart message, as sent
        self._restart_queue = self.stack.attributes.get(("RestartQueue", "QueueName"))
        self._results: dict[tuple[str, str], Any] = {}  # (function, event id) -> first result
        self._alarm_changed: dict[str, datetime] = {}
        for alarm, (cluster, service) in self.estate.alarm_owner.items():
            result.alarm_owner[alarm] = f"{cluster}/{service}"
        self._last_sample: dict[str, ServiceSample] = {}
        self._sample_services()
        self._row(Row(0.0, "ecs", "setup", self._setup_summary(parameters or {})))
        for alarm in self.estate.alarms:
            result.alarms[alarm] = [AlarmSample(0.0, "OK")]

    def _setup_summary(self, parameters: dict[str, str]) -> str:
        rules: dict[str, int] = {}
        for rule in self.router.rules:
            name = SHORT.get(rule.function, rule.function)
            rules[name] = rules.get(name, 0) + 1
        shown = ", ".join(f"{k} {v}" for k, v in rules.items())
        mode = self.stack.parameters.get("Mode", "enforce")
        return (f"fresh stack from template.yaml · Mode={mode} · EventBridge rules: {shown} · "
                f"{len(self.estate.services)} services, 1 task family, {len(self.estate.alarms)} alarms · "
                f"autopilot apply: {self.estate.applied[-1] if self.estate.applied else 'nothing applied'}")

    # ================================================================== narration and checks
    def say(self, text: str) -> None:
        self._row(Row(self.clock.elapsed, "story", "demo", text))

    def check(self, description: str, expected: Any, actual: Any, passed: bool | None = None) -> bool:
        ok = (expected == actual) if passed is None else passed
        self.result.checks.append(Check(self.clock.elapsed, description, str(expected), str(actual), ok))
        self._row(Row(self.clock.elapsed, "check", "demo", description, passed=ok,
                      reason="" if ok else f"expected {expected}, got {actual}"))
        return ok

    def expect_desired(self, cluster: str, service: str, desired: int) -> bool:
        actual = self.service(cluster, service)["desiredCount"]
        return self.check(f"{cluster}/{service} runs {desired} tasks", desired, actual)

    def expect_revision(self, cluster: str, service: str, wanted: str) -> bool:
        actual = revision(self.service(cluster, service)["taskDefinition"])
        return self.check(f"{cluster}/{service} runs {wanted}", wanted, actual)

    def expect_capacity(self, cluster: str, service: str, providers: list[str]) -> bool:
        strategy = self.service(cluster, service).get("capacityProviderStrategy") or []
        actual = [s["capacityProvider"] for s in strategy]
        return self.check(f"{cluster}/{service} runs on {' + '.join(providers)}", sorted(providers), sorted(actual))

    def expect_notifications(self, count: int | None = None, *, contains: str | None = None,
                             at_least: int | None = None) -> bool:
        notes = self.result.notifications
        if contains is not None:
            hits = [n for n in notes if contains.lower() in n.lower()]
            wanted = count if count is not None else at_least or 1
            ok = len(hits) == wanted if count is not None else len(hits) >= wanted
            return self.check(f"{'exactly' if count is not None else 'at least'} {wanted} notification"
                              f"{'s' if wanted != 1 else ''} saying “{contains}”", wanted, len(hits), ok)
        if at_least is not None:
            return self.check(f"at least {at_least} notifications", at_least, len(notes), len(notes) >= at_least)
        return self.check(f"{count} notification{'s' if count != 1 else ''} published", count, len(notes))

    def expect_outcome(self, outcome: str, *, count: int | None = None, target: str | None = None) -> bool:
        entries = [r for r in self.result.rows if r.kind == "decision" and r.outcome == outcome
                   and (target is None or r.target == target)]
        where = f" for {target}" if target else ""
        if outcome == "idempotent-replay":  # not an audit record: the handler answered from its idempotency store
            return self.check("the redelivered event changed nothing (Powertools idempotency returned the first "
                              "result)", count if count is not None else "≥1", len(entries),
                              len(entries) == count if count is not None else bool(entries))
        if count is None:
            return self.check(f"audit trail records “{outcome}”{where}", "≥1", len(entries), bool(entries))
        return self.check(f"audit trail records “{outcome}”{where} {count} time{'s' if count != 1 else ''}",
                          count, len(entries))

    # ================================================================== the estate
    def service(self, cluster: str, name: str) -> dict[str, Any]:
        return dict(client("ecs").describe_services(cluster=cluster, services=[name])["services"][0])

    def register_revision(self, family: str, **changes: Any) -> str:
        """CI registers a new revision of a family (e.g. a new image tag)."""
        return estate.register_task_definition(family, estate.TASK_DEFINITIONS[family], **changes)

    # ================================================================== what happens in the story
    def alarm(self, name: str, state: str, value: float | None = None, *, via: str = "eventbridge") -> dict[str, Any]:
        """An alarm changes state (moto never evaluates alarms: SetAlarmState, then CloudWatch's event)."""
        spec = self.estate.alarms[name]
        cw = client("cloudwatch")
        before = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        now = self.clock()
        previous = {"reason": before.get("StateReason", ""), "reasonData": before.get("StateReasonData", "{}"),
                    "timestamp": cw_time(self._alarm_changed.get(name, self.clock.start - timedelta(hours=3))),
                    "value": before["StateValue"]}
        state_value = estate.state_value(spec, state, value, now)
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=state_value["reason"],
                           StateReasonData=state_value["reasonData"])
        after = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        self._alarm_changed[name] = now
        self.result.alarms.setdefault(name, []).append(AlarmSample(self.clock.elapsed, after["StateValue"]))
        shown = ("" if value is None
                 else f" ({spec.metric} {_num(value)}{spec.unit}, threshold {_num(spec.threshold)}{spec.unit})")
        label = f"{name}: {before['StateValue']} → {state}{shown}"
        if via == "eventbridge":
            event = alarm_state_change(after, state=state_value, previous=previous, at=now)
            self.publish(event, "CloudWatch", label)
        else:
            event = alarm_action_payload(after, state=state_value, previous=previous, at=now)
            self.invoke("ScalerFunction", event, actor="CloudWatch", label=f"{label} [alarm action → ScalerFunction]")
        return event

    def publish(self, event: dict[str, Any], actor: str, label: str) -> list[str]:
        """Put an event on the bus; deliver it to every function whose template rule matched."""
        rules = self.router.route(event)
        if not rules:
            self._row(Row(self.clock.elapsed, "undelivered", actor, label,
                          reason="no rule in template.yaml matches it: not delivered"))
            return []
        functions = [r.function for r in rules]
        self._row(Row(self.clock.elapsed, "event", actor, label, functions=functions))
        for function in functions:
            self.invoke(function, event)
        return functions

    def invoke(self, function: str, event: Any, *, actor: str | None = None, label: str | None = None) -> Invocation:
        """Invoke a handler in-process, then record what the system did."""
        if label:
            self._row(Row(self.clock.elapsed, "event", actor or "demo", label, functions=[function]))
        invocation = self.host.invoke(function, event)
        self.result.invocations[function] = self.result.invocations.get(function, 0) + 1
        self._after(invocation)
        return invocation

    def deploy(self, cluster: str, service: str, task_definition: str, behaviour: Behaviour, why: str) -> None:
        """A CI pipeline rolls the service to a new revision."""
        self._row(Row(self.clock.elapsed, "story", "CI",
                      f"CI deploys {revision(task_definition)} to {cluster}/{service}: {why}"))
        self.ecs.deploy(cluster, service, task_definition, behaviour)
        services = self._describe_all()
        for note in self.ecs.observe(services):
            self._row(Row(self.clock.elapsed, "ecs", "ECS", note))
        self._sample_services(services)

    def stop_tasks(self, cluster: str, service: str, count: int, **kwargs: Any) -> None:
        self.ecs.stop_service_tasks(cluster, service, count, **kwargs)

    def run_standalone(self, cluster: str, family: str, *, run_seconds: int) -> str:
        arn = self.ecs.run_standalone(cluster, family, Behaviour.FAILS, run_seconds, self.estate.network)
        self._row(Row(self.clock.elapsed, "ecs", "Scheduler",
                      f"EventBridge Scheduler starts {family} (RunTask): task {arn.rsplit('/', 1)[1][:8]}"))
        return arn

    def advance(self, seconds: float) -> None:
        """Let simulated time pass: ECS's events fall due, restart delays end, the reconciler runs each minute."""
        target = self.clock() + timedelta(seconds=seconds)
        while True:
            candidates = (self.ecs.next_due(), self._next_restart(), self._next_tick)
            due = [t for t in candidates if t is not None and t <= target]
            if not due:
                self.clock.set(target)
                break
            moment = min(due)
            self.clock.set(moment)
            if self.ecs.next_due() is not None and self.ecs.next_due() == moment:
                emission = self.ecs.pop_due(moment)
                if emission is not None:
                    self.publish(emission.event, "ECS", emission.note)
            elif self._next_restart() == moment:
                self._deliver_restarts(moment)
            else:
                self._next_tick += timedelta(seconds=RECONCILE_EVERY)
                self.invoke("ReconcilerFunction", {})
        self.result.simulated_seconds = self.clock.elapsed
        self._sample_services()

    # ================================================================== restart queue (SQS -> Lambda)
    def _next_restart(self) -> datetime | None:
        return min(self._restart_due.values()) if self._restart_due else None

    def _collect_restarts(self) -> None:
        if not self._restart_queue:
            return
        for message in backdoor.delayed_messages(self._restart_queue):
            if message.message_id not in self._restart_due:
                backdoor.hold(self._restart_queue, message.message_id)
                delay = round(message.delay_seconds)  # SQS DelaySeconds is whole seconds; moto measures in ms
                self._restart_due[message.message_id] = self.clock() + timedelta(seconds=delay)
                self.restart_delays.append(delay)
                self._row(Row(self.clock.elapsed, "ecs", "SQS",
                              f"RestartQueue holds the restart for {delay}s (DelaySeconds)"))
        for message_id in backdoor.visible_messages(self._restart_queue):
            if message_id not in self._restart_due:
                backdoor.hold(self._restart_queue, message_id)
                self._restart_due[message_id] = self.clock()

    def _deliver_restarts(self, now: datetime) -> None:
        assert self._restart_queue is not None
        due = [m for m, t in self._restart_due.items() if t <= now]
        for message_id in due:
            backdoor.release(self._restart_queue, message_id)
            del self._restart_due[message_id]
        sqs = client("sqs")
        url = self.stack.ref("RestartQueue")
        arn = self.stack.attributes[("RestartQueue", "Arn")]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=360,
                                       AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return
        event = {"Records": [_sqs_record(m, arn) for m in messages]}
        invocation = self.invoke("RestarterFunction", event, actor="SQS",
                                 label=f"RestartQueue delivers {len(messages)} "
                                       f"message{'s' if len(messages) > 1 else ''}")
        failed = set()
        if invocation.error:
            failed = {m["MessageId"] for m in messages}
        elif isinstance(invocation.result, dict):
            failed = {f.get("itemIdentifier") for f in invocation.result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:  # visible again after the queue's visibility timeout
                backdoor.hold(self._restart_queue, message["MessageId"])
                self._restart_due[message["MessageId"]] = now + timedelta(seconds=360)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # ================================================================== observation
    def _after(self, invocation: Invocation) -> None:
        function = SHORT.get(invocation.function, invocation.function)
        if _quiet_reconcile(invocation):  # its result says it decided nothing: no audit record to read
            self._row(Row(self.clock.elapsed, "quiet", function, "nothing to do"))
            return
        entries = self._new_audit()
        # Every publish comes from a decision the runner audits (or a failed one): read SNS only then.
        notes = self._drain_notifications() if (entries or invocation.error) else []
        # Only a recorded decision (or a failure) can have changed anything: skip the reads otherwise.
        services = self._describe_all() if (entries or notes or invocation.error) else None
        snapshot = _snapshot(services) if services is not None else {}
        event_key = _event_identity(invocation.event)
        first = self._results.get((invocation.function, event_key)) if event_key else None
        if event_key and (invocation.function, event_key) not in self._results:
            self._results[(invocation.function, event_key)] = invocation.result
        if invocation.error:
            self._row(Row(self.clock.elapsed, "error", function, f"{invocation.function} failed: {invocation.error}",
                          reason="Lambda retries the event (twice for EventBridge), then it goes to the DLQ"))
        for record in invocation.logs:
            if str(record.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
                extra = {k: v for k, v in record.items() if k not in _LOG_KEYS}
                detail = ", ".join(f"{k}={v}" for k, v in extra.items())
                text = f"log {record.get('level')}: {record.get('message')}" + (f" ({detail})" if detail else "")
                self._row(Row(self.clock.elapsed, "log", function, text))
        for entry in entries:
            target = _target(entry.target)
            self._row(Row(self.clock.elapsed, "decision", entry.source or function, entry.trigger, target=target,
                          outcome=entry.outcome, reason=entry.reason, calls=list(entry.calls), mode=entry.mode,
                          result=snapshot.get(target, "")))
        if not entries and not invocation.error:
            if invocation.function == "PolicyResourceFunction":
                pass  # it answered CloudFormation: the story shows the answer
            elif invocation.function == "ReconcilerFunction" and not notes:
                self._row(Row(self.clock.elapsed, "quiet", function, "nothing to do"))
            elif first is not None and first == invocation.result:
                self._row(Row(self.clock.elapsed, "decision", function,
                              "returned the first delivery's result again: no decision, no AWS call",
                              outcome="idempotent-replay",
                              reason="Powertools idempotency recognised the event and returned the stored result"))
            else:
                self._row(Row(self.clock.elapsed, "decision", function, "no decision recorded",
                              outcome="none", reason=_short(json.dumps(invocation.result, default=str))))
        for note in notes:
            self.result.notifications.append(note)
            self._row(Row(self.clock.elapsed, "notify", "SNS", note))
        if services is not None:
            for note in self.ecs.observe(services):
                self._row(Row(self.clock.elapsed, "ecs", "ECS", note))
            self._sample_services(services)
        self._collect_restarts()

    def _new_audit(self) -> list[AuditEntry]:
        entries = self.store.history(since=self.clock.start, now=self.clock(), limit=1000)
        fresh = []
        for entry in reversed(entries):  # oldest first
            if entry.outcome.startswith("policy:") and entry.source == "cli":  # the setup's own apply (its setup
                continue  # row says so): not a decision; a stack's policy resource is one (policy-in-stack)
            key = entry.model_dump_json()
            if key not in self._seen_audit:
                self._seen_audit.add(key)
                fresh.append(entry)
        fresh.sort(key=lambda e: e.at)
        return fresh

    def _subscribe_probe(self) -> str:
        sqs, sns = client("sqs"), client("sns")
        url = sqs.create_queue(QueueName="demo-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.stack.ref("NotificationTopic"), Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true"})
        return str(url)

    def _drain_notifications(self) -> list[str]:
        sqs = client("sqs")
        found: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self._probe, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(message["Body"].split("\n", 1)[0].strip())
                sqs.delete_message(QueueUrl=self._probe, ReceiptHandle=message["ReceiptHandle"])

    def _describe_all(self) -> dict[str, dict[str, Any]]:
        """DescribeServices for the estate, one call per cluster: "cluster/service" -> the service."""
        by_cluster: dict[str, list[str]] = {}
        for cluster, name in self.estate.services:
            by_cluster.setdefault(cluster, []).append(name)
        found: dict[str, dict[str, Any]] = {}
        for cluster, names in by_cluster.items():
            for raw in client("ecs").describe_services(cluster=cluster, services=names)["services"]:
                found[f"{cluster}/{raw['serviceName']}"] = raw
        return found

    def _sample_services(self, services: dict[str, dict[str, Any]] | None = None) -> None:
        for key, raw in (services if services is not None else self._describe_all()).items():
            sample = ServiceSample(self.clock.elapsed, raw["desiredCount"], revision(raw["taskDefinition"]),
                                   capacity_label(raw))
            last = self._last_sample.get(key)
            if last is None or (last.desired, last.revision, last.capacity) != (
                    sample.desired, sample.revision, sample.capacity):
                self.result.services.setdefault(key, []).append(sample)
                self._last_sample[key] = sample

    def _row(self, row: Row) -> None:
        self.result.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)


_LOG_KEYS = {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
             "function_memory_size", "function_arn", "function_request_id", "xray_trace_id", "sampling_rate"}


def _snapshot(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """cluster/service -> "desired 6 · web:1 · FARGATE 2+1, FARGATE_SPOT 3"."""
    return {key: f"desired {raw['desiredCount']} · {revision(raw['taskDefinition'])} · {capacity_label(raw)}"
            for key, raw in services.items()}


def capacity_label(raw: dict[str, Any]) -> str:
    strategy = raw.get("capacityProviderStrategy") or []
    if not strategy:
        return str(raw.get("launchType") or "FARGATE")
    parts = []
    for item in strategy:
        base = f"{item.get('base')}+" if item.get("base") else ""
        parts.append(f"{item['capacityProvider']} {base}{item.get('weight', 0)}")
    return ", ".join(parts)


def _quiet_reconcile(invocation: Invocation) -> bool:
    result = invocation.result
    return (invocation.function == "ReconcilerFunction" and not invocation.error and isinstance(result, dict)
            and result.get("outcomes") == [])


def _target(target: str) -> str:
    """``prod/web`` (``prod/web @ account/region`` in a member place), "" for an event that named nothing."""
    from autopilot_tools.cli.render import target_of

    return "" if target == "-" else target_of(target).replace(" (task)", "")


def _num(value: float) -> str:
    return f"{value:g}"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _event_identity(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    if "id" in event:
        return str(event["id"])
    if "alarmArn" in event:
        return f"{event['alarmArn']}@{event.get('alarmData', {}).get('state', {}).get('timestamp')}"
    return None


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received message in the shape Lambda's SQS event source mapping delivers it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": {k: attributes[k] for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                                   "ApproximateFirstReceiveTimestamp") if k in attributes},
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                   "dataType": value.get("DataType", "String")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
