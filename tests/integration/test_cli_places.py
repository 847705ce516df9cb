"""The CLI with policies in several accounts and regions (issue 13): apply stores each policy under its place,
get / history / pause / resume / delete take --account and --region, and a stack's policy stays the stack's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autopilot.models.place import Place
from autopilot.models.policy import ServicePolicy, service_key
from autopilot.models.state import ServiceState
from autopilot.store.table import AuditEntry
from tests.integration.test_cli import Run  # the one CLI runner of the CLI tests

HOME_ACCOUNT = "123456789012"
MEMBER = "111111111111"


def policy(service: str, account: str | None = None, region: str | None = None) -> str:
    place = "".join(f", {k}: \"{v}\"" for k, v in (("account", account), ("region", region)) if v)
    return f"""\
apiVersion: autopilot/v1
kind: ServicePolicy
metadata: {{cluster: prod, service: {service}{place}}}
spec:
  scaling: {{minTasks: 1, maxTasks: 10}}
"""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> Run:
    return Run(capsys)


@pytest.fixture
def applied(cli: Run, deps: Any, tmp_path: Path) -> Any:
    """web in the hub's own place (one written with the hub's account named), api in a member in two regions."""
    path = tmp_path / "p.yaml"
    path.write_text("---\n".join([policy("web"), policy("api", MEMBER), policy("api", MEMBER, "eu-west-1"),
                                  policy("db", HOME_ACCOUNT, "us-east-1")]))
    assert cli("apply", path) == 0, cli.err
    return deps


def test_apply_stores_each_policy_under_its_place(cli: Run, applied: Any) -> None:
    keys = sorted(p.key for p in applied.store.list_policies())
    assert keys == ["SVC#111111111111#eu-west-1#prod#api", "SVC#111111111111#us-east-1#prod#api", "SVC#prod#db",
                    "SVC#prod#web"]
    db = applied.store.get_policy("SVC#prod#db")
    assert isinstance(db, ServicePolicy) and db.metadata.place is None, "the hub's own place is stored as no place"
    assert cli("apply", "--dry-run", "-") == 1  # stdin is empty: an error, nothing else changes


def test_the_hubs_account_named_or_not_is_one_target(cli: Run, deps: Any, tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("---\n".join([policy("web"), policy("web", HOME_ACCOUNT)]))
    assert cli("apply", path) == 1
    assert "ServicePolicy prod/web is already defined in" in cli.err and "123456789012/us-east-1" in cli.err
    assert deps.store.list_policies() == []


def test_get_filters_by_account_and_region(cli: Run, applied: Any) -> None:
    assert cli("get", "--json") == 0
    everything = {p["target"] for p in json.loads(cli.out)}
    assert len(everything) == 4
    assert cli("get", "--account", MEMBER, "--json") == 0
    assert sorted(p["policy"]["metadata"].get("region") for p in json.loads(cli.out)) == [
        "eu-west-1", "us-east-1"]
    assert cli("get", "--account", HOME_ACCOUNT, "--json") == 0
    assert sorted(p["policy"]["metadata"]["service"] for p in json.loads(cli.out)) == ["db", "web"]
    assert cli("get", "--region", "eu-west-1", "--hub-region", "us-east-1", "--json") == 0
    assert [p["policy"]["metadata"]["service"] for p in json.loads(cli.out)] == ["api"]
    assert cli("get", "--account", "222222222222") == 0
    assert cli.out.strip() == "no policies found matching the filters"


def test_pause_and_resume_a_members_service(cli: Run, applied: Any) -> None:
    key = service_key("prod", "api", Place(MEMBER, "eu-west-1"))
    assert cli("pause", "--cluster", "prod", "--service", "api", "--account", MEMBER, "--region", "eu-west-1",
               "--hub-region", "us-east-1", "--reason", "incident") == 0, cli.err
    assert cli.out.strip() == "paused ServicePolicy prod/api in 111111111111/eu-west-1 (incident)"
    assert applied.store.load_state(key).state.paused
    assert not applied.store.load_state("SVC#111111111111#us-east-1#prod#api").state.paused
    assert cli("resume", "--cluster", "prod", "--service", "api", "--account", MEMBER, "--region", "eu-west-1",
               "--hub-region", "us-east-1") == 0
    assert not applied.store.load_state(key).state.paused
    # without --account: the hub's own prod/api, which has no policy
    assert cli("pause", "--cluster", "prod", "--service", "api") == 1
    assert "no ServicePolicy for prod/api" in cli.err


def test_history_filters_by_account_and_region(cli: Run, applied: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = applied.clock()
    from autopilot_tools.cli import commands

    monkeypatch.setattr(commands, "utcnow", lambda: now)
    for target, place in (("SVC#prod#web", None), ("SVC#111111111111#eu-west-1#prod#api", None),
                          ("-", "999999999999/us-east-1")):
        applied.store.audit(AuditEntry(at=now, target=target, event_id="e", source="scaler", trigger="t",
                                       outcome="ignored:foreign-account" if place else "scale-out", reason="r",
                                       place=place))
    assert cli("history", "--account", MEMBER, "--json") == 0
    entries = json.loads(cli.out)
    assert {e["target"] for e in entries if e["source"] == "scaler"} == {"SVC#111111111111#eu-west-1#prod#api"}
    assert cli("history", "--account", "999999999999", "--json") == 0
    assert [e["outcome"] for e in json.loads(cli.out)] == ["ignored:foreign-account"]
    assert cli("history", "--cluster", "prod", "--service", "api", "--account", MEMBER, "--region", "eu-west-1",
               "--hub-region", "us-east-1", "--json") == 0
    assert {e["target"] for e in json.loads(cli.out)} >= {"SVC#111111111111#eu-west-1#prod#api"}


def test_delete_a_members_policy_and_a_stacks_policy_stays_the_stacks(cli: Run, applied: Any) -> None:
    assert cli("delete", "--cluster", "prod", "--service", "api", "--account", MEMBER) == 0, cli.err
    assert applied.store.get_policy("SVC#111111111111#us-east-1#prod#api") is None
    assert applied.store.get_policy("SVC#111111111111#eu-west-1#prod#api") is not None
    owner = "arn:aws:cloudformation:us-east-1:123456789012:stack/team-web/guid#WebPolicy"
    applied.store.delete_policy("SVC#prod#web")
    applied.store.put_policy(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {}}), applied.clock(), owner=owner)
    assert cli("delete", "--cluster", "prod", "--service", "web") == 1
    assert cli.err.strip() == ("autopilot: error: the policy of prod/web is declared by the CloudFormation resource "
                               "team-web/WebPolicy: change or remove it there")
    applied.store.save_state("SVC#prod#web", ServiceState(), 0)
    assert applied.store.get_policy("SVC#prod#web") is not None


def test_apply_refuses_a_policy_a_stack_declares(cli: Run, deps: Any, tmp_path: Path) -> None:
    owner = "arn:aws:cloudformation:us-east-1:123456789012:stack/team-web/guid#WebPolicy"
    deps.store.put_policy(ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {}}), deps.clock(), owner=owner)
    path = tmp_path / "web.yaml"
    path.write_text(policy("web"))
    assert cli("apply", path) == 1
    assert "declared by the CloudFormation resource team-web/WebPolicy: change or remove it there" in cli.err
    assert deps.store.policy_owner("SVC#prod#web") == owner
