"""The soak's invariants, checked as the run goes (and once more at its end).

1. bounds: a managed service's desired count is within [minTasks, maxTasks] once settled (out of bounds for
   at most SETTLE_MINUTES, outages of the services the repair needs excepted), and the code never sets one
   outside them;
2. no event lost: every delivered event ends applied or deliberately ignored with an audit record (an
   invocation returned and the audit trail has the event's id), or in the dead-letter queue;
3. every notify decision was notified (SNS received it) or counted (NotificationFailed);
4. no stored item over 350 KB (DynamoDB's limit is 400 KB);
5. no derived revision registered twice (one RegisterTaskDefinition per derivation id);
6. at most one rollback per bad revision;
7. one failing service never delays another beyond one run: every reconciler run that got through its
   scaling pass visited every service whose scaling alarm was in ALARM (a service missed by two runs in a
   row is a violation);
8. events from another account never act (their only audit outcome is ignored:foreign-account);
9. nothing mutates a paused or switched-off service.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autopilot.aws.notifier import sns_subject
from bench.soak.aws import Aws
from bench.soak.estate import Estate
from bench.soak.runtime import Ledger
from bench.soak.world import World

SETTLE_MINUTES = 10
ITEM_LIMIT = 350 * 1024
INVARIANTS = ("bounds", "no event lost", "notify or counted", "item size", "derived once", "one rollback",
              "failure isolation", "foreign events", "paused untouched")


@dataclass
class Audit:
    event_id: str
    target: str
    outcome: str
    source: str
    calls: list[str]
    actions: list[dict[str, Any]]
    mode: str


@dataclass
class Checks:
    estate: Estate
    world: World
    aws: Aws
    ledger: Ledger
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    audits: dict[str, list[Audit]] = field(default_factory=lambda: defaultdict(list))  # event id -> records
    notify_rows: list[Audit] = field(default_factory=list)
    failed_publishes: int = 0
    metrics: Counter[str] = field(default_factory=Counter)
    audit_keys: set[tuple[str, str]] = field(default_factory=set)
    rollbacks: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, bad revision) -> rollbacks
    out_since: dict[tuple[str, str], datetime] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)  # service key -> consecutive runs that missed it
    runs_judged: int = 0
    updates_seen: int = 0
    largest: int = 0

    def __post_init__(self) -> None:
        self.plans = {(p.cluster, p.name): p for p in self.estate.services}
        self.quiet = {f"SVC#{p.cluster}#{p.name}" for p in self.estate.services if p.mode == "off"}

    def fail(self, invariant: str, example: str) -> None:
        self.violations[invariant] += 1
        if len(self.examples[invariant]) < 5:
            self.examples[invariant].append(example)

    # ---------------------------------------------------------------- as items are written
    def on_write(self, item: dict[str, Any]) -> None:
        pk = item["PK"]["S"]
        if pk.startswith("AUDIT#"):
            key = (pk, item["SK"]["S"])
            if key in self.audit_keys:
                return  # the same record written again (botocore retried a put whose answer was lost)
            self.audit_keys.add(key)
            doc = json.loads(item["doc"]["S"])
            audit = Audit(event_id=doc["event_id"], target=doc["target"], outcome=doc["outcome"], source=doc["source"],
                          calls=list(doc.get("calls") or []), actions=list(doc.get("actions") or []),
                          mode=doc.get("mode", "enforce"))
            self.audits[audit.event_id].append(audit)
            if any(a.get("kind") == "notify" for a in audit.actions):
                self.notify_rows.append(audit)
            self.failed_publishes += sum(1 for c in audit.calls if c.startswith("sns:Publish failed"))
            if audit.target in self.quiet and audit.source == "reconciler":
                self.fail("paused untouched", f"a reconciler audit record every minute for {audit.target}")

    def on_metrics(self, document: dict[str, Any]) -> None:
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                self.metrics[metric["Name"]] += sum(value) if isinstance(value, list) else (value or 0)

    # ---------------------------------------------------------------- every minute
    def minute(self, now: datetime) -> None:
        self._updates()
        for key, service in self.world.services.items():
            plan = self.plans[key]
            if plan.kind == "healing-only" or plan.mode != "enforce" or plan.poisoned:
                continue
            inside = plan.min_tasks <= service.desired <= plan.max_tasks
            if inside:
                self.out_since.pop(key, None)
                continue
            since = self.out_since.setdefault(key, now)
            if now - since > timedelta(minutes=SETTLE_MINUTES) and not self._outage_within(now):
                self.fail("bounds", f"{key[0]}/{key[1]}: desired {service.desired} outside "
                                    f"[{plan.min_tasks}, {plan.max_tasks}] since {since:%H:%M}")
                self.out_since[key] = now  # counted once per settle period
        if self.aws.services["dynamodb"].largest > ITEM_LIMIT and self.largest <= ITEM_LIMIT:
            self.fail("item size", f"{self.aws.services['dynamodb'].largest_key}: "
                                   f"{self.aws.services['dynamodb'].largest} bytes")
        self.largest = self.aws.services["dynamodb"].largest

    def _outage_within(self, now: datetime) -> bool:
        start = self.aws.seconds(now) - SETTLE_MINUTES * 60
        return any(o.end > start and o.service in ("dynamodb", "ecs", "cloudwatch") for o in self.aws.outages)

    def _updates(self) -> None:
        rollbacks = self.rollbacks
        for update in self.world.updates[self.updates_seen:]:
            key = (update["cluster"], update["service"])
            plan = self.plans[key]
            where = f"{key[0]}/{key[1]} at {update['at']:%H:%M:%S} by {update['function']}"
            if plan.mode != "enforce":
                self.fail("paused untouched", f"{where}: UpdateService on a {plan.mode} service")
            desired = update["desiredCount"]
            if desired is not None and plan.kind != "healing-only" and not plan.min_tasks <= desired <= plan.max_tasks:
                self.fail("bounds", f"{where}: set desired {desired} outside [{plan.min_tasks}, {plan.max_tasks}]")
            target, before = update["taskDefinition"], update["before"]["td"]
            if target and target != before and _revision(target) < _revision(before):
                bad = self.world.taskdefs.get(before)
                if bad is not None and bad.behaviour != "healthy":
                    rollbacks[(f"{key[0]}/{key[1]}", before)] += 1
                    if rollbacks[(f"{key[0]}/{key[1]}", before)] == 2:
                        self.fail("one rollback", f"{where}: a second rollback from {before.rsplit('/', 1)[-1]}")
        self.updates_seen = len(self.world.updates)

    # ---------------------------------------------------------------- after each reconciler run
    def reconciled(self, reads: set[str], died: bool, expected: set[str], steps: set[str]) -> None:
        if died or not (reads & steps):
            return  # cut off, or the scaling pass failed as a whole (an outage): nothing to judge
        self.runs_judged += 1
        for key in expected:
            if key in reads:
                self.missed.pop(key, None)
                continue
            self.missed[key] = self.missed.get(key, 0) + 1
            if self.missed[key] == 2:
                self.fail("failure isolation", f"{key}: in ALARM and not decided by two reconciler runs in a row")

    # ---------------------------------------------------------------- at the end
    def finish(self) -> None:
        self._updates()
        audited = set(self.audits)
        for event_id, function in self.ledger.succeeded.items():
            if event_id not in audited:
                self.fail("no event lost", f"{function} event {event_id}: returned without an audit record: "
                                           f"{self.ledger.answers.get(event_id, '')}")
        for event_id in self.ledger.foreign:
            outcomes = {a.outcome for a in self.audits.get(event_id, [])}
            if outcomes - {"ignored:foreign-account"}:
                self.fail("foreign events", f"{event_id}: {sorted(outcomes)}")
        published = Counter(str(m["subject"]) for m in self.world.published)
        for row in self.notify_rows:
            for action in row.actions:
                if action.get("kind") != "notify":
                    continue
                if "sns:Publish" in row.calls and not published[sns_subject(str(action.get("subject", "")))]:
                    self.fail("notify or counted", f"{row.target} {row.outcome}: audited as published, never received")
                if not any(c.startswith("sns:Publish") for c in row.calls):
                    self.fail("notify or counted", f"{row.target} {row.outcome}: neither published nor counted")
        if self.failed_publishes > self.metrics.get("NotificationFailed", 0):
            self.fail("notify or counted", f"{self.failed_publishes} failed publishes audited, "
                                           f"{self.metrics.get('NotificationFailed', 0)} counted")
        derived: Counter[str] = Counter()
        for definition in self.world.registered:
            tag = next((t["value"] for t in definition.tags if t["key"] == "autopilot:derivation-id"), None)
            if tag is not None:
                derived[tag] += 1
        for tag, count in derived.items():
            if count > 1:
                self.fail("derived once", f"derivation {tag} registered {count} times")
        largest = self.aws.services["dynamodb"].largest
        if largest > ITEM_LIMIT and self.violations["item size"] == 0:
            self.fail("item size", f"{self.aws.services['dynamodb'].largest_key}: {largest} bytes")


def _revision(arn: str) -> int:
    tail = arn.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
