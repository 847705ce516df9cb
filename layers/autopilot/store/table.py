"""The single DynamoDB table: policies, the alarm index, per-service state, the audit trail.

Key design (PK / SK, plus an overloaded GSI1 for listings):

| item              | PK                    | SK                    | GSI1PK            | GSI1SK            |
|-------------------|-----------------------|-----------------------|-------------------|-------------------|
| policy            | SVC#c#s / TASK#c#f    | POLICY                | POLICIES          | SVC#c#s           |
| alarm index entry | ALARM#name            | SVC#c#s               |                   |                   |
| service state     | SVC#c#s / TASK#c#f    | STATE                 |                   |                   |
| audit record      | AUDIT#c#s             | <iso time>#<id>       | AUDIT#<yyyy-mm-dd>| <iso time>#<id>   |
| idempotency       | IDEMPOTENCY#<fn>      | <hash>  (Powertools)  |                   |                   |
| demand forecast   | SVC#c#s               | FORECAST#<rule hash>  |                   |                   |
| derivation ledger | DERIVATION#<id hash>  | DERIVATION            |                   |                   |
| member registry   | HUB                   | MEMBERS               |                   |                   |

Services and families of a member place (issue 13) have the place in their keys: ``SVC#<account>#<region>#c#s``
(``AUDIT#<account>#<region>#c#s`` for their audit partition); the hub's own keep the keys above, so the state of a
deployment from before places existed stays valid as it is. Alarm index entries stay ``ALARM#name``: the scaler
keeps the entries whose policy is in the alarm's own place. A member place's derivation ids carry the place
(``ledger_at``): the same family and revision in two accounts are two derivations.

An alarm index entry carries a copy of the policy, so an alarm event finds every policy naming it
with one strongly consistent Query. State items carry a ``version``; every write is conditional on
the version that was read, so two concurrent invocations can never both act on the same state.
Expiring items carry ``expiration`` (epoch seconds), the table's TTL attribute.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from autopilot.backoff import Sleep, pause, real_sleep
from autopilot.models.audit import AuditEntry
from autopilot.models.place import Place, Registration, key_prefix
from autopilot.models.policy import Policy, ServicePolicy, TaskPolicy
from autopilot.models.state import ServiceState, Snapshot
from autopilot.models.state_budget import fit
from autopilot.ports import ConcurrentUpdate, PolicyOwned

__all__ = ["AUDIT_TTL", "AuditEntry", "ConcurrentUpdate", "PolicyOwned", "StateTable"]  # re-exports: ports, models

AUDIT_TTL = timedelta(days=90)
DERIVATION_TTL = timedelta(days=14)  # far beyond any retry of a step (Lambda keeps an event 6 h, EventBridge 24 h)
UNPROCESSED_ATTEMPTS = 8  # BatchGetItem calls for one batch before its unprocessed keys count as a failure
REGISTRATION_TTL_SECONDS = 30.0  # how long a sandbox reuses the member registry it read


class PlacedLedger:
    """The derivation ledger of a member place (``StateTable.ledger_at``): the same items, ids prefixed by the
    place."""

    def __init__(self, table: StateTable, place: Place) -> None:
        self.table, self.prefix = table, f"{place.account}#{place.region}#"

    def find_derivation(self, derivation_id: str) -> str | None:
        return self.table.find_derivation(self.prefix + derivation_id)

    def record_derivation(self, derivation_id: str, arn: str, now: datetime) -> None:
        self.table.record_derivation(self.prefix + derivation_id, arn, now)


@cache
def _policy_adapter() -> TypeAdapter[ServicePolicy | TaskPolicy]:
    """Built on first use: building the policy union's validator costs tens of ms at import."""
    return TypeAdapter(Policy)


AUDIT_BUDGET_BYTES = 100_000


def _bounded_doc(entry: AuditEntry) -> str:
    """The audit document within its byte budget: oversized action bodies are summarised, texts cut."""
    doc = entry.model_dump_json()
    if len(doc.encode()) <= AUDIT_BUDGET_BYTES:
        return doc
    summary = [{"kind": a.get("kind", "?"), "truncated": True} for a in entry.actions]
    changes = [c[:500] for c in entry.changes[:100]]
    if len(entry.changes) > 100:
        changes.append(f"... and {len(entry.changes) - 100} more changes")
    short = entry.model_copy(update={"actions": summary, "reason": entry.reason[:2000],
                                     "trigger": entry.trigger[:500], "calls": entry.calls[:100],
                                     "changes": changes})
    return short.model_dump_json()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _derivation_pk(derivation_id: str) -> str:
    return "DERIVATION#" + hashlib.sha256(derivation_id.encode()).hexdigest()[:32]


def _forecast_sk(rule: str) -> str:
    """A rule key can be long (a metric spec's dimensions): the sort key carries a digest of it."""
    return "FORECAST#" + hashlib.sha256(rule.encode()).hexdigest()[:24]


def _owner(item: dict[str, Any]) -> str | None:
    return item["owner"]["S"] if "owner" in item else None


# Builds the audit entry of a policy change from the stored document it replaces (None: there was none), so
# the entry describes exactly what the conditional write replaced, and lands in the same transaction.
PolicyAudit = Callable[[dict[str, Any] | None], AuditEntry]


class StateTable:
    """All reads and writes of the state table (``ports.StateStorePort`` and what the CLI needs).

    Nothing else talks to DynamoDB (but Powertools idempotency)."""

    def __init__(self, table_name: str, dynamodb_client: Any | None = None, sleep: Sleep = real_sleep) -> None:
        self.name = table_name
        self._client = dynamodb_client
        self.sleep = sleep  # jittered back-off between our own retries (botocore makes none of these)
        # The stored policies as last listed, parsed, by document: the reconciler lists every policy each minute
        # and validating thousands of documents again costs a second of CPU per run. Policies are immutable
        # (frozen models); the dict holds exactly the documents of the last listing, so it never grows stale.
        self._parsed: dict[str, ServicePolicy | TaskPolicy] = {}
        self._registration: tuple[float, Registration] | None = None

    @property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        from autopilot.aws.clients import client  # the shared one, looked up on each use (it may be replaced)

        return client("dynamodb")

    # ---------------------------------------------------------------- policies
    def put_policy(self, policy: ServicePolicy | TaskPolicy, now: datetime, attempts: int = 5,
                   audit: PolicyAudit | None = None, owner: str | None = None) -> str:
        """Store a policy and its alarm index entries in one transaction. Returns created|updated|unchanged.

        The policy write is conditional on the document that was read, so two concurrent applies cannot
        interleave and leave an alarm index entry of the older document behind (the loser retries).
        ``audit`` (given the replaced document) adds an audit record to the same transaction; an unchanged
        policy writes nothing, so it records nothing. ``owner`` names who declares the policy when it is not the
        CLI (a CloudFormation resource: ``stack id#logical id``); a policy of another owner is never replaced
        (``PolicyOwned``): a stack's policy changes in its stack, a CLI-applied one with the CLI.
        """
        for attempt in range(attempts):
            if attempt:
                pause(self.sleep, attempt - 1)  # the other writer goes first
            try:
                return self._put_policy_once(policy, now, audit, owner)
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"{policy.key}: policy kept changing for {attempts} attempts")

    def _put_policy_once(self, policy: ServicePolicy | TaskPolicy, now: datetime, audit: PolicyAudit | None,
                         owner: str | None = None) -> str:
        document = policy.model_dump_json(exclude_none=True)
        current = self.client.get_item(TableName=self.name, Key=self._key(policy.key, "POLICY"), ConsistentRead=True)
        old_item = current.get("Item")
        if old_item and _owner(old_item) != owner:
            raise PolicyOwned(policy.key, _owner(old_item))
        if old_item and old_item["doc"]["S"] == document:
            return "unchanged"
        old_alarms = set(json.loads(old_item["alarms"]["S"])) if old_item and "alarms" in old_item else set()
        new_alarms = set(policy.alarm_names()) if isinstance(policy, ServicePolicy) else set()
        put: dict[str, Any] = {"TableName": self.name, "Item": {
            **self._key(policy.key, "POLICY"), "GSI1PK": _s("POLICIES"), "GSI1SK": _s(policy.key),
            "kind": _s(policy.kind), "doc": _s(document), "alarms": _s(json.dumps(sorted(new_alarms))),
            "updatedAt": _s(now.isoformat()), **({"owner": _s(owner)} if owner else {}),
        }}
        if old_item:
            put["ConditionExpression"] = "doc = :old"
            put["ExpressionAttributeValues"] = {":old": old_item["doc"]}
        else:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        writes: list[dict[str, Any]] = [{"Put": put}]
        for alarm in sorted(new_alarms):
            writes.append({"Put": {"TableName": self.name, "Item": {
                **self._key(f"ALARM#{alarm}", policy.key), "doc": _s(document)}}})
        for alarm in sorted(old_alarms - new_alarms):
            writes.append({"Delete": {"TableName": self.name, "Key": self._key(f"ALARM#{alarm}", policy.key)}})
        if audit is not None:
            entry = audit(json.loads(old_item["doc"]["S"]) if old_item else None)
            writes.append({"Put": {"TableName": self.name, "Item": self._audit_item(entry)}})
        if len(writes) > 100:  # TransactWriteItems takes at most 100 items: policy, alarm entries, audit record
            limit = 99 - (audit is not None)
            raise ValueError(f"{policy.key}: one apply may change at most {limit} alarm index entries "
                             f"(this one changes {len(writes) - 1 - (audit is not None)})")
        try:
            self.client.transact_write_items(TransactItems=writes)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise ConcurrentUpdate(policy.key) from None
            raise
        return "updated" if old_item else "created"

    def get_policy(self, key: str) -> ServicePolicy | TaskPolicy | None:
        item = self.client.get_item(TableName=self.name, Key=self._key(key, "POLICY"), ConsistentRead=True).get("Item")
        return _policy_adapter().validate_json(item["doc"]["S"]) if item else None

    def policy_owner(self, key: str) -> str | None:
        """Who declares the stored policy (None: applied with the CLI, or no policy)."""
        item = self.client.get_item(TableName=self.name, Key=self._key(key, "POLICY"), ConsistentRead=True,
                                    ProjectionExpression="#o", ExpressionAttributeNames={"#o": "owner"}).get("Item")
        return _owner(item) if item else None

    def delete_policy(self, key: str, audit: PolicyAudit | None = None, attempts: int = 5,
                      owner: str | None = None) -> bool:
        """Remove a policy and its alarm index entries; False if there is none. A policy of another ``owner``
        (see ``put_policy``) is not deleted: ``PolicyOwned``.

        The delete is conditional on the document that was read (a concurrent apply makes it retry), so the
        alarm entries removed are that document's and ``audit`` (given it) records what was really deleted,
        in the same transaction as the policy itself.
        """
        for attempt in range(attempts):
            if attempt:
                pause(self.sleep, attempt - 1)
            item = self.client.get_item(TableName=self.name, Key=self._key(key, "POLICY"),
                                        ConsistentRead=True).get("Item")
            if not item:
                return False
            if _owner(item) != owner:
                raise PolicyOwned(key, _owner(item))
            alarms = json.loads(item["alarms"]["S"]) if "alarms" in item else []
            writes: list[dict[str, Any]] = [{"Delete": {
                "TableName": self.name, "Key": self._key(key, "POLICY"),
                "ConditionExpression": "doc = :old", "ExpressionAttributeValues": {":old": item["doc"]}}}]
            if audit is not None:
                entry = audit(json.loads(item["doc"]["S"]))
                writes.append({"Put": {"TableName": self.name, "Item": self._audit_item(entry)}})
            writes += [{"Delete": {"TableName": self.name, "Key": self._key(f"ALARM#{a}", key)}} for a in alarms]
            try:
                self.client.transact_write_items(TransactItems=writes[:100])
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    continue
                raise
            for start in range(100, len(writes), 100):  # left-over alarm entries of a policy naming 99+ alarms
                self.client.transact_write_items(TransactItems=writes[start:start + 100])
            return True
        raise ConcurrentUpdate(f"{key}: policy kept changing for {attempts} attempts")

    def list_policies(self) -> list[ServicePolicy | TaskPolicy]:
        """Every stored policy (GSI1, eventually consistent: fine for the reconciler and the CLI)."""
        items = self._query(IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                            ExpressionAttributeValues={":p": _s("POLICIES")})
        parsed: dict[str, ServicePolicy | TaskPolicy] = {}
        for item in items:
            doc = item["doc"]["S"]
            parsed[doc] = self._parsed.get(doc) or _policy_adapter().validate_json(doc)
        self._parsed = parsed
        return list(parsed.values())

    # ---------------------------------------------------------------- member registry (issue 13)
    def registration(self) -> Registration:
        """The members registered with the hub (written by the hub stack; none: a single-account deployment).

        Read at most every REGISTRATION_TTL_SECONDS per sandbox, and only for events of another place than the
        hub's own and by the reconciler: a deployment without members never reads it for its own events."""
        now = time.monotonic()
        if self._registration is not None and now - self._registration[0] < REGISTRATION_TTL_SECONDS:
            return self._registration[1]
        item = self.client.get_item(TableName=self.name, Key=self._key("HUB", "MEMBERS")).get("Item")
        found = Registration()
        if item:
            doc = json.loads(item["doc"]["S"])
            found = Registration(accounts=tuple(doc.get("accounts") or ()), regions=tuple(doc.get("regions") or ()),
                                 role_name=doc.get("roleName") or Registration.role_name,
                                 external_id=doc.get("externalId") or None)
        self._registration = (now, found)
        return found

    def put_registration(self, registration: Registration, now: datetime) -> None:
        doc = {"accounts": list(registration.accounts), "regions": list(registration.regions),
               "roleName": registration.role_name, "externalId": registration.external_id}
        self.client.put_item(TableName=self.name, Item={**self._key("HUB", "MEMBERS"), "doc": _s(json.dumps(doc)),
                                                        "updatedAt": _s(now.isoformat())})
        self._registration = None

    def delete_registration(self) -> None:
        self.client.delete_item(TableName=self.name, Key=self._key("HUB", "MEMBERS"))
        self._registration = None

    def names_place(self, place: Place) -> bool:
        """Whether a stored policy names ``place``: one small Query of the policy listing per kind (GSI1 sort
        keys start with the place), asked only for events from a place that is neither home nor a member."""
        for kind in ("SVC", "TASK"):
            response = self.client.query(
                TableName=self.name, IndexName="GSI1", Limit=1, ProjectionExpression="PK",
                KeyConditionExpression="GSI1PK = :p AND begins_with(GSI1SK, :s)",
                ExpressionAttributeValues={":p": _s("POLICIES"), ":s": _s(key_prefix(kind, place))})
            if response.get("Items"):
                return True
        return False

    def policies_for_alarm(self, alarm: str) -> list[ServicePolicy]:
        """Every service policy naming ``alarm``: one strongly consistent Query of the alarm index."""
        items = self._query(KeyConditionExpression="PK = :p", ConsistentRead=True,
                            ExpressionAttributeValues={":p": _s(f"ALARM#{alarm}")})
        return [ServicePolicy.model_validate_json(item["doc"]["S"]) for item in items]

    # ---------------------------------------------------------------- state
    def load_state(self, key: str) -> Snapshot:
        item = self.client.get_item(TableName=self.name, Key=self._key(key, "STATE"), ConsistentRead=True).get("Item")
        return self._snapshot(key, item)

    def load_states(self, keys: Iterable[str]) -> dict[str, Snapshot]:
        """Strongly consistent BatchGetItem of many state items (100 per call)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Snapshot] = {k: Snapshot(key=k, state=ServiceState()) for k in wanted}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {self.name: {"Keys": [self._key(k, "STATE") for k in wanted[start:start + 100]],
                                                   "ConsistentRead": True}}
            for item in self._batch_get(request):
                found[item["PK"]["S"]] = self._snapshot(item["PK"]["S"], item)
        return found

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The items of one BatchGetItem request, asking again for its ``UnprocessedKeys`` (throttled or over
        the answer's 16 MB) after a jittered back-off, as AWS advises; botocore does not retry those."""
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if attempt:
                pause(self.sleep, attempt - 1, base=0.05, cap=2.0)
            response = self.client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(self.name, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
        left = len(request.get(self.name, {}).get("Keys", []))
        raise RuntimeError(f"BatchGetItem left {left} keys unprocessed after {UNPROCESSED_ATTEMPTS} attempts")

    def save_state(self, key: str, state: ServiceState, expected_version: int,
                   audit: list[AuditEntry] | None = None) -> int:
        """Write ``state`` if the stored version is still ``expected_version``; returns the new version.

        Audit entries given here are written in the same transaction, so a decision and its record
        land together or not at all. Raises ConcurrentUpdate when someone else wrote first. The document
        is fitted to its byte budget first (models/state_budget.py): an item over DynamoDB's 400 KB could
        never be written again; StateTooLarge is raised if even the current state cannot fit.
        """
        state, pruned = fit(state)
        if pruned:
            from autopilot.observability import logger

            logger.warning("state over its byte budget: older history dropped", extra={"key": key, "pruned": pruned})
        new_version = expected_version + 1
        # Identifies this write: when AWS applied it but the answer was lost (a timeout), botocore's retry
        # fails the condition on our own write; the token tells it apart from a concurrent one.
        token = uuid.uuid4().hex
        put: dict[str, Any] = {
            "TableName": self.name,
            "Item": {**self._key(key, "STATE"), "doc": _s(state.model_dump_json(exclude_defaults=False)),
                     "version": {"N": str(new_version)}, "writeToken": _s(token)},
        }
        if expected_version == 0:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        try:
            if audit:
                items = [{"Put": put}] + [{"Put": {"TableName": self.name, "Item": self._audit_item(e)}} for e in audit]
                self.client.transact_write_items(TransactItems=items)
            else:
                self.client.put_item(**put)
        except self.client.exceptions.ConditionalCheckFailedException:
            if self._written(key, new_version, token):
                return new_version
            raise ConcurrentUpdate(key) from None
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                if self._written(key, new_version, token):
                    return new_version
                raise ConcurrentUpdate(key) from None
            raise
        return new_version

    def _written(self, key: str, version: int, token: str) -> bool:
        """Whether the stored state is this very write (applied on an attempt whose answer was lost)."""
        item = self.client.get_item(TableName=self.name, Key=self._key(key, "STATE"), ConsistentRead=True,
                                    ProjectionExpression="#v, #t",
                                    ExpressionAttributeNames={"#v": "version", "#t": "writeToken"}).get("Item") or {}
        return item.get("version", {}).get("N") == str(version) and item.get("writeToken", {}).get("S") == token

    # ---------------------------------------------------------------- forecasts (targetTracking predictive)
    def load_forecasts(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Stored forecasts by (policy key, rule key): eventually consistent BatchGetItem, 100 per call
        (a forecast is a cache the reconciler refreshes; a read a second stale is fine)."""
        wanted = list(dict.fromkeys(keys))
        by_sk = {(pk, _forecast_sk(rule)): (pk, rule) for pk, rule in wanted}
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            batch = [self._key(pk, _forecast_sk(rule)) for pk, rule in wanted[start:start + 100]]
            for item in self._batch_get({self.name: {"Keys": batch}}):
                key = by_sk.get((item["PK"]["S"], item["SK"]["S"]))
                if key is not None:
                    found[key] = json.loads(item["doc"]["S"])
        return found

    def save_forecast(self, key: str, rule: str, document: dict[str, Any], now: datetime,
                      keep: timedelta = timedelta(days=3)) -> None:
        """Store one rule's forecast (unconditionally: the latest fit wins); it expires if not refreshed."""
        self.client.put_item(TableName=self.name, Item={
            **self._key(key, _forecast_sk(rule)), "rule": _s(rule),
            "doc": _s(json.dumps(document, separators=(",", ":"))), "expiration": {"N": str(_epoch(now + keep))}})

    # ---------------------------------------------------------------- derivation ledger
    def find_derivation(self, derivation_id: str) -> str | None:
        """The task definition ARN registered for ``derivation_id`` (None: not recorded, or expired)."""
        item = self.client.get_item(TableName=self.name, Key=self._key(_derivation_pk(derivation_id), "DERIVATION"),
                                    ConsistentRead=True).get("Item")
        return item["arn"]["S"] if item and item.get("derivationId", {}).get("S") == derivation_id else None

    def record_derivation(self, derivation_id: str, arn: str, now: datetime,
                          keep: timedelta = DERIVATION_TTL) -> None:
        """Record the revision registered for ``derivation_id`` (first writer wins: a twin never replaces it)."""
        # already recorded: by this very write (retried after a lost answer), or by a concurrent one
        with suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(TableName=self.name, Item={
                **self._key(_derivation_pk(derivation_id), "DERIVATION"), "derivationId": _s(derivation_id),
                "arn": _s(arn), "recordedAt": _s(now.isoformat()), "expiration": {"N": str(_epoch(now + keep))}},
                ConditionExpression="attribute_not_exists(PK)")

    def ledger_at(self, place: Place | None) -> StateTable | PlacedLedger:
        """The derivation ledger of ``place`` (None: the hub's own, the ledger as it always was). A derivation id
        names a family's revision (``family:revision``), which two accounts may both have: a member place's ids
        carry the place, so one account's derived revision is never reused in another."""
        return self if place is None else PlacedLedger(self, place)

    # ---------------------------------------------------------------- audit
    def audit(self, *entries: AuditEntry) -> None:
        for entry in entries:
            self.client.put_item(TableName=self.name, Item=self._audit_item(entry))

    def history(self, *, cluster: str | None = None, service: str | None = None, since: datetime | None = None,
                now: datetime | None = None, limit: int = 200, place: Place | None = None,
                where: Callable[[AuditEntry], bool] | None = None) -> list[AuditEntry]:
        """Audit entries, newest first. With cluster and service: that service's partition (of ``place``, None:
        the hub's own); else by day, keeping the entries ``where`` accepts (default: all)."""
        # Sort keys are UTC ISO strings: compare in UTC, whatever offset the caller's times carry (a naive
        # time is taken as UTC).
        now = _utc(now or datetime.now(UTC))
        since = _utc(since or now - timedelta(days=1))
        entries: list[AuditEntry] = []
        if cluster and service:
            partition = f"{key_prefix('AUDIT', place)}{cluster}#{service}"
            items = self._query(KeyConditionExpression="PK = :p AND SK >= :s", ScanIndexForward=False,
                                ExpressionAttributeValues={":p": _s(partition), ":s": _s(since.isoformat())})
            entries = [AuditEntry.model_validate_json(i["doc"]["S"]) for i in items]
            entries = [e for e in entries if where is None or where(e)]
        else:
            day = now.date()
            while day >= since.date() and len(entries) < limit:
                items = self._query(IndexName="GSI1", KeyConditionExpression="GSI1PK = :p AND GSI1SK >= :s",
                                    ScanIndexForward=False,
                                    ExpressionAttributeValues={":p": _s(f"AUDIT#{day.isoformat()}"),
                                                               ":s": _s(since.isoformat())})
                for item in items:
                    entry = AuditEntry.model_validate_json(item["doc"]["S"])
                    if (cluster is None or entry.cluster_service[0] == cluster) and (where is None or where(entry)):
                        entries.append(entry)
                day -= timedelta(days=1)
        entries.sort(key=lambda e: e.at, reverse=True)
        return entries[:limit]

    # ---------------------------------------------------------------- helpers
    def _audit_item(self, entry: AuditEntry) -> dict[str, Any]:
        at = entry.at.astimezone(UTC)
        sort_key = f"{at.isoformat()}#{entry.event_id[:80]}#{uuid.uuid4().hex[:8]}"
        target = entry.target.split("#", 1)[1] if "#" in entry.target else entry.target
        return {
            "PK": _s(f"AUDIT#{target}"), "SK": _s(sort_key),
            "GSI1PK": _s(f"AUDIT#{at.date().isoformat()}"), "GSI1SK": _s(sort_key),
            "doc": _s(_bounded_doc(entry)), "expiration": {"N": str(_epoch(at + AUDIT_TTL))},
        }

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
        return {"PK": _s(pk), "SK": _s(sk)}

    @staticmethod
    def _snapshot(key: str, item: dict[str, Any] | None) -> Snapshot:
        if not item:
            return Snapshot(key=key, state=ServiceState(), version=0)
        return Snapshot(key=key, state=ServiceState.model_validate_json(item["doc"]["S"]),
                        version=int(item["version"]["N"]))

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs["TableName"] = self.name
        while True:
            response = self.client.query(**kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
