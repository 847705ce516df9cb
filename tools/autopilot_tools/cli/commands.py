"""What each ``autopilot`` subcommand does. Each takes the parsed arguments and returns an exit code.

Commands that need AWS import the store lazily (``validate`` and ``schema`` never load boto3).
Problems the user can fix raise CliError; ``main`` turns every error into one line on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from autopilot.models.place import Place, elsewhere
from autopilot.models.policy import ServicePolicy, TaskPolicy, family_key, placed, service_key
from autopilot_tools.cli import render
from autopilot_tools.cli.discovery import CliError, find_table
from autopilot_tools.policyfile import SourcedPolicy, describe, label, load_sourced

if TYPE_CHECKING:
    from autopilot.store.table import AuditEntry, StateTable

AnyPolicy = ServicePolicy | TaskPolicy
# Draft 7: what the YAML editors (yaml-language-server, VS Code) fully support; they warn on 2020-12.
# The keywords pydantic emits for these models ($defs pointers, const, numeric exclusiveMinimum) are valid draft 7.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
PAUSE_ATTEMPTS = 10
DEFAULT_SINCE = timedelta(hours=24)


def utcnow() -> datetime:
    return datetime.now(UTC)


def out(text: str = "") -> None:
    print(text, file=sys.stdout)


def err(text: str) -> None:
    print(text, file=sys.stderr)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def open_store(args: argparse.Namespace) -> StateTable:
    """The state table chosen by --table / AUTOPILOT_TABLE / the stack's outputs."""
    from autopilot.store.table import StateTable

    choice = find_table(args.table, args.stack)
    args.resolved_table = choice.name
    return StateTable(choice.name)


# ------------------------------------------------------------------------------------ places (issue 13)
def hub_place(args: argparse.Namespace, store: StateTable) -> Place:
    """The hub's own account and region: the state table's (its ARN), asked once per command and only when
    a place must be compared with it. The region is the one the CLI talks to; the account comes from
    DescribeTable, else from STS GetCallerIdentity (no permission needed)."""
    found = getattr(args, "resolved_home", None)
    if isinstance(found, Place):
        return found
    region = str(store.client.meta.region_name)
    try:
        arn = str(store.client.describe_table(TableName=store.name)["Table"]["TableArn"]).split(":")
        account, region = arn[4], arn[3] or region
    except Exception:  # no dynamodb:DescribeTable: the caller's own account is the table's in practice
        import boto3

        account = str(boto3.session.Session().client("sts").get_caller_identity()["Account"])
    home = Place(account, region)
    args.resolved_home = home
    return home


def _place_filter(args: argparse.Namespace, store: StateTable) -> tuple[str | None, str | None]:
    """(account, region) that --account and --region narrow the command to; None where they leave it open or
    name the hub's own region (its policies need no look-up: the table is where the CLI talks to)."""
    if not getattr(args, "places", False):
        return None, None
    region = args.region or None
    if region is not None and not getattr(args, "hub_region", None) and not getattr(args, "account", None):
        region = None  # --region alone picks the stack, whose own region every place-less policy is in
    return getattr(args, "account", None) or None, region


def _filters_place(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "places", False) and (getattr(args, "account", None) or args.region))


def _in_wanted_place(place: Place | None, args: argparse.Namespace, store: StateTable) -> bool:
    """``place`` (None: the hub's own) is in the account and region --account and --region name."""
    account, region = _place_filter(args, store)
    if account is None and region is None:
        return place is None or not args.region or place.region == args.region
    actual = place or hub_place(args, store)
    return (account is None or actual.account == account) and (region is None or actual.region == region)


def _target_place(args: argparse.Namespace, store: StateTable) -> Place | None:
    """The place --account/--region name for one target (None: the hub's own, whose keys carry no place)."""
    account, region = _place_filter(args, store)
    if account is None and region is None:
        return None
    home = hub_place(args, store)
    return elsewhere(Place(account or home.account, region or home.region), home)


def _loaded(files: list[str], allow_empty: bool) -> tuple[list[SourcedPolicy], bool]:
    """Load policy files, printing every error to stderr; returns the policies and whether all were valid."""
    policies, errors = load_sourced(files, allow_empty=allow_empty)
    for error in errors:
        err(str(error))
    return policies, not errors


# ------------------------------------------------------------------------------------ validate, schema
def cmd_validate(args: argparse.Namespace) -> int:
    """Report every error of every file (one line each) or ``ok: FILE (N policies)``."""
    policies, errors = load_sourced(args.files, allow_empty=args.allow_empty)
    if args.json:
        out(json.dumps({"ok": not errors, "policies": [
            {"file": p.file, "document": p.document, "kind": p.policy.kind, "target": render.name_of(p.policy)}
            for p in policies], "errors": [vars(e) for e in errors]}, indent=2))
        return 1 if errors else 0
    for error in errors:
        out(str(error))
    failed = {e.file for e in errors}
    for file in dict.fromkeys(label(f) for f in args.files):
        if file not in failed:
            count = sum(1 for p in policies if p.file == file)
            out(f"ok: {file} ({_plural(count, 'policy')})")
    return 1 if errors else 0


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of one policy document (either kind), for editors and other tools."""
    from pydantic import TypeAdapter

    from autopilot.models.policy import _PERCENT, Policy

    schema = TypeAdapter(Policy).json_schema()
    # The model checks percent strings in a validator, which the schema cannot express: add the pattern so
    # editors flag adjustment: "30" as they flag everything else.
    adjustment = schema.get("$defs", {}).get("Step", {}).get("properties", {}).get("adjustment", {})
    for branch in adjustment.get("anyOf", []):
        if branch.get("type") == "string":
            branch["pattern"] = _PERCENT.pattern.replace("^", r"^\s*", 1).replace("$", r"\s*$")
    return {"$schema": SCHEMA_DIALECT, "title": "ecs-autopilot policy",
            "description": "One ServicePolicy or TaskPolicy document (apiVersion autopilot/v1).", **schema}


def cmd_schema(args: argparse.Namespace) -> int:
    out(json.dumps(policy_schema(), indent=2))
    return 0


# ------------------------------------------------------------------------------------ apply, delete
def _plan(old: AnyPolicy | None, new: AnyPolicy) -> str:
    """What put_policy would answer, without writing (same comparison: the stored JSON document)."""
    if old is None:
        return "created"
    same = old.model_dump_json(exclude_none=True) == new.model_dump_json(exclude_none=True)
    return "unchanged" if same else "updated"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


@cache
def who() -> str:
    """Who acts, for the audit trail: the caller's AWS identity (STS GetCallerIdentity needs no permission),
    else the OS user. Asked once per command, with few retries: the audit must not stall the change."""
    try:
        import boto3
        from botocore.config import Config

        sts = boto3.session.Session().client("sts", config=Config(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=5))
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # no identity (e.g. STS unreachable from a private network): still record someone
        return f"{_os_user()} (OS user)"


def _document(policy: AnyPolicy) -> dict[str, Any]:
    """The policy as the store keeps it (the same JSON document), to diff against a stored one."""
    document: dict[str, Any] = json.loads(policy.model_dump_json(exclude_none=True))
    return document


def _policy_change(target: str, command: str, new: dict[str, Any] | None, old: dict[str, Any] | None,
                   actor: str) -> AuditEntry:
    """The audit record of a policy change: who, when, and every field that changed."""
    from autopilot.store.table import AuditEntry

    what = "deleted" if new is None else "updated" if old is not None else "created"
    mode = str(((new or old or {}).get("spec") or {}).get("mode") or "enforce")
    return AuditEntry(at=utcnow(), target=target, event_id=f"cli-{uuid.uuid4().hex[:12]}", source="cli",
                      trigger=f"autopilot {command.split()[0]}", outcome=f"policy:{what}",
                      reason=f"{what} by {actor} with autopilot {command}", mode=mode, actor=actor,
                      changes=render.document_diff(old, new, limit=render.MAX_AUDIT_CHANGES))


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate every document first; store nothing unless all are valid. Each change is audited."""
    policies, valid = _loaded(args.files, args.allow_empty)
    if not valid:
        err("autopilot: nothing was applied: fix the errors above first")
        return 1
    if not policies:
        out("nothing to apply: no policies in " + ", ".join(args.files))
        return 0
    store = open_store(args)
    if any(s.policy.metadata.place is not None for s in policies):  # a place is stored the way events name it
        home = hub_place(args, store)
        policies = [SourcedPolicy(placed(s.policy, home), s.file, s.document) for s in policies]
        first: dict[str, SourcedPolicy] = {}
        for sourced in policies:
            earlier = first.setdefault(sourced.policy.key, sourced)
            if earlier is not sourced:
                raise CliError(f"{sourced.file}: document {sourced.document}: {describe(sourced.policy)} is "
                               f"already defined in {earlier.file} document {earlier.document} (the hub's own "
                               f"account and region, {home}, is the default place)")
    actor = "" if args.dry_run else who()
    counts: dict[str, int] = {"created": 0, "updated": 0, "unchanged": 0}
    for sourced in policies:
        policy = sourced.policy
        old = store.get_policy(policy.key)

        def audit(replaced: dict[str, Any] | None, policy: AnyPolicy = policy, file: str = sourced.file) -> AuditEntry:
            return _policy_change(policy.key, f"apply {file}", _document(policy), replaced, actor)

        result = _plan(old, policy) if args.dry_run else store.put_policy(policy, utcnow(), audit=audit)
        counts[result] = counts.get(result, 0) + 1
        out(f"{result} {describe(policy)}")
        if result == "updated":
            for line in render.policy_diff(old, policy):
                out(f"    {line}")
    summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    suffix = " (dry run: nothing stored)" if args.dry_run else ""
    out(f"{_plural(len(policies), 'policy')}: {summary}{suffix}")
    return 0


def _key_of(args: argparse.Namespace, store: StateTable) -> tuple[str, str, str]:
    """(table key, kind, cluster/name) for --cluster with --service or --family (and --account/--region)."""
    place = _target_place(args, store)
    where = f" in {place}" if place is not None else ""
    if args.service:
        return (service_key(args.cluster, args.service, place), "ServicePolicy",
                f"{args.cluster}/{args.service}{where}")
    return family_key(args.cluster, args.family, place), "TaskPolicy", f"{args.cluster}/{args.family}{where}"


def cmd_delete(args: argparse.Namespace) -> int:
    store = open_store(args)
    key, kind, name = _key_of(args, store)
    actor = who()
    command = f"delete --cluster {args.cluster} " + (f"--service {args.service}" if args.service
                                                      else f"--family {args.family}")
    if not store.delete_policy(key, audit=lambda old: _policy_change(key, command, None, old, actor)):
        raise CliError(f"no {kind} for {name} (autopilot get lists stored policies)")
    out(f"deleted {kind} {name} (its alarm index entries too; autopilot no longer acts on it)")
    return 0


# ------------------------------------------------------------------------------------ pause, resume
def set_paused(args: argparse.Namespace, paused: bool) -> int:
    """Flip ServiceState.paused with a conditional write (retried on a concurrent update), audited."""
    from autopilot.store.table import AuditEntry, ConcurrentUpdate

    store = open_store(args)
    key, kind, name = _key_of(args, store)
    policy = store.get_policy(key)
    if policy is None:
        raise CliError(f"no {kind} for {name}: autopilot only pauses what a policy manages "
                       f"(autopilot get lists stored policies)")
    reason = ((args.reason or "").strip() or None) if paused else None
    verb = "paused" if paused else "resumed"
    actor = who()
    for _attempt in range(PAUSE_ATTEMPTS):
        snap = store.load_state(key)
        if snap.state.paused == paused and (not paused or snap.state.paused_reason == reason):
            out(f"{kind} {name} is already {'paused' if paused else 'running (not paused)'}"
                + (f" ({snap.state.paused_reason})" if paused and snap.state.paused_reason else ""))
            return 0
        state = snap.state.model_copy(update={"paused": paused, "paused_reason": reason})
        why = f"{verb} by {actor} with autopilot {'pause' if paused else 'resume'}"
        why += f": {reason}" if reason else ""
        entry = AuditEntry(at=utcnow(), target=key, event_id=f"cli-{uuid.uuid4().hex[:12]}", source="cli",
                           trigger=f"operator {'pause' if paused else 'resume'}", outcome=f"operator:{verb}",
                           reason=why, mode=policy.spec.mode, actor=actor)
        try:
            store.save_state(key, state, snap.version, audit=[entry])
        except ConcurrentUpdate:
            continue
        out(f"{verb} {kind} {name}" + (f" ({reason})" if reason else ""))
        return 0
    raise CliError(f"the state of {name} kept changing for {PAUSE_ATTEMPTS} attempts; try again")


def cmd_pause(args: argparse.Namespace) -> int:
    return set_paused(args, True)


def cmd_resume(args: argparse.Namespace) -> int:
    return set_paused(args, False)


# ------------------------------------------------------------------------------------ get
def _wanted(policy: AnyPolicy, args: argparse.Namespace, store: StateTable) -> bool:
    if args.cluster and policy.metadata.cluster != args.cluster:
        return False
    if not _in_wanted_place(policy.metadata.place, args, store):
        return False
    if args.service and not (isinstance(policy, ServicePolicy) and policy.metadata.service == args.service):
        return False
    return not (args.family and not (isinstance(policy, TaskPolicy) and policy.metadata.family == args.family))


def cmd_get(args: argparse.Namespace) -> int:
    """Stored policies (filtered) with their state: mode, paused, cooldowns, LKG, and whatever else is kept."""
    store = open_store(args)
    policies = sorted((p for p in store.list_policies() if _wanted(p, args, store)), key=lambda p: p.key)
    snapshots = store.load_states([p.key for p in policies])
    now = utcnow()
    if args.json:
        out(json.dumps([{"kind": p.kind, "target": render.name_of(p), "policy": p.model_dump(mode="json"),
                         "state": snapshots[p.key].state.model_dump(mode="json"),
                         "stateVersion": snapshots[p.key].version} for p in policies], indent=2))
        return 0
    if not policies:
        filtered = args.cluster or args.service or args.family or args.account or (args.hub_region and args.region)
        out("no policies found" + (" matching the filters" if filtered else ""))
        return 0
    blocks = []
    for policy in policies:
        snap = snapshots[policy.key]
        rows = render.policy_summary(policy)
        rows += render.state_rows(snap.state, snap.version, now, isinstance(policy, ServicePolicy))
        blocks.append(render.block(f"{render.name_of(policy)}  ({policy.kind})", rows))
    out("\n\n".join(blocks))
    return 0


# ------------------------------------------------------------------------------------ history
def cmd_history(args: argparse.Namespace) -> int:
    """The audit trail, newest first."""
    now = utcnow()
    try:
        since = render.parse_since(args.since, now) if args.since else now - DEFAULT_SINCE
    except ValueError as exc:
        raise CliError(f"--since: {exc}", code=2) from None
    store = open_store(args)
    name = args.service or args.family  # a family's entries share the cluster/name partition

    def where(entry: AuditEntry) -> bool:
        return _in_wanted_place(entry.target_place, args, store)

    if name and not args.cluster:  # the store reads a service's partition only with its cluster
        entries = [e for e in store.history(since=since, now=now, limit=max(args.limit * 20, 2000), where=where)
                   if e.cluster_service[1] == name][: args.limit]
    else:
        entries = store.history(cluster=args.cluster, service=name, since=since, now=now, limit=args.limit,
                                place=_target_place(args, store) if args.cluster and name else None,
                                where=where if _filters_place(args) else None)
    if args.json:
        out(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return 0
    if not entries:
        out(f"no audit entries since {render.clock(since)}")
        return 0
    for entry in entries:
        out(render.history_line(entry))
    return 0
