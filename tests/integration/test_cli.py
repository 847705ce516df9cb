"""The ``autopilot`` CLI against the template's table on moto: exit codes, output, and what it stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from autopilot.models.state import ServiceState
from autopilot.store.table import AuditEntry, StateTable
from autopilot_tools.cli import commands, external
from autopilot_tools.cli.main import main
from tests.conftest import load_handler, published, variant

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies.yaml"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MOTO_IDENTITY = "arn:aws:sts::123456789012:user/moto"  # what moto's STS GetCallerIdentity answers

WEB = """\
apiVersion: autopilot/v1
kind: ServicePolicy
metadata: {cluster: prod, service: web}
spec:
  scaling:
    minTasks: 2
    maxTasks: 40
    scaleOutCooldownSeconds: 60
    rules:
      - alarm: web-cpu-high
        steps:
          - {lowerBound: 0, upperBound: 20, adjustment: 1}
          - {lowerBound: 20, adjustment: "30%", minAdjustmentMagnitude: 2}
      - alarm: web-cpu-low
        steps:
          - {upperBound: 0, adjustment: -1}
  rollout:
    rollbackAlarms: [web-5xx-high]
"""
ETL = """\
apiVersion: autopilot/v1
kind: TaskPolicy
metadata: {cluster: batch, family: nightly-etl}
spec:
  restart: {maxRestarts: 5}
"""


class Run:
    """Run ``main`` and keep what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.out = self.err = ""

    def __call__(self, *argv: Any) -> int:
        code = main([str(a) for a in argv])
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def write(tmp_path: Path):
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def store(env: dict[str, str]) -> StateTable:
    return StateTable(env["AUTOPILOT_TABLE"])


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(commands, "utcnow", lambda: NOW)
    return NOW


# ------------------------------------------------------------------------------------ validate, schema
def test_validate_ok(cli: Run) -> None:
    assert cli("validate", EXAMPLES) == 0
    assert cli.lines == [f"ok: {EXAMPLES} (4 policies)"] and cli.err == ""


def test_validate_reports_every_error_and_exits_1(cli: Run, write) -> None:
    good = write("good.yaml", ETL)
    bad = write("bad.yaml", WEB.replace("minTasks: 2", "minTasks: 50") + "---\n"
                + ETL.replace("maxRestarts", "maxRestart"))
    assert cli("validate", good, bad) == 1
    assert cli.lines == [
        f"{bad}: document 1: spec.scaling: minTasks (50) must not exceed maxTasks (40) (line 5)",
        f"{bad}: document 2: spec.restart.maxRestart: unknown field (did you mean maxRestarts?) (line 24)",
        f"ok: {good} (1 policy)",
    ]


def test_validate_syntax_error(cli: Run, write) -> None:
    bad = write("broken.yaml", ETL + "---\nkind: [\n")
    assert cli("validate", bad) == 1
    assert cli.lines == [f"{bad}: document 2: line 8:1: expected the node content, but found '<stream end>' "
                         "(while parsing a flow node)"]


def test_validate_missing_file_and_json(cli: Run, tmp_path: Path) -> None:
    assert cli("validate", tmp_path / "nope.yaml") == 1
    assert cli.lines == [f"{tmp_path / 'nope.yaml'}: no such file"]
    assert cli("validate", "--json", EXAMPLES) == 0
    result = json.loads(cli.out)
    assert result["ok"] is True and result["errors"] == []
    assert {p["target"] for p in result["policies"]} == {"prod/web", "prod/api", "prod/worker", "batch/nightly-etl"}


def test_validate_empty_file_is_an_error_unless_allowed(cli: Run, write) -> None:
    empty = write("empty.yaml", "# nothing yet\n")
    assert cli("validate", empty) == 1
    assert cli.lines == [f"{empty}: contains no policies (pass --allow-empty if that is intended)"]
    assert cli("validate", "--allow-empty", empty) == 0
    assert cli.lines == [f"ok: {empty} (0 policies)"]


def test_apply_of_an_empty_file_is_an_error_unless_allowed(cli: Run, write, store: StateTable) -> None:
    empty = write("empty.yaml", "---\n# nothing yet\n")
    assert cli("apply", empty) == 1
    assert cli.err.splitlines() == [f"{empty}: contains no policies (pass --allow-empty if that is intended)",
                                    "autopilot: nothing was applied: fix the errors above first"]
    assert cli("apply", "--allow-empty", empty) == 0
    assert cli.lines == [f"nothing to apply: no policies in {empty}"]


def test_validate_reports_field_and_cross_field_errors_together(cli: Run, write) -> None:
    """minTasks > maxTasks no longer hides a repeated alarm, and the repeat is located at its own line."""
    bad = write("bad.yaml", WEB.replace("minTasks: 2", "minTasks: 50").replace("maxTasks: 40", 'maxTasks: "40"')
                .replace("[web-5xx-high]", "[web-5xx-high, web-cpu-low]"))
    assert cli("validate", bad) == 1
    assert cli.lines == [
        f"{bad}: document 1: spec.scaling.maxTasks: must be a whole number, not the string '40' "
        "(write it without quotes: 40) (line 7)",
        f"{bad}: document 1: spec.rollout.rollbackAlarms[1]: alarm 'web-cpu-low' is already used at "
        "spec.scaling.rules[1].alarm: each alarm may appear once per policy (rules, rollbackAlarms and recycleAlarms "
        "together) (line 18)",
    ]
    bad = write("bad2.yaml", WEB.replace("minTasks: 2", "minTasks: 50")
                .replace("[web-5xx-high]", "[web-5xx-high, web-cpu-low]"))
    assert cli("validate", bad) == 1
    assert [line.split(": ", 3)[2] for line in cli.lines] == ["spec.scaling", "spec.rollout.rollbackAlarms[1]"]


def test_schema_validates_what_the_model_validates(cli: Run) -> None:
    import jsonschema
    import yaml

    assert cli("schema") == 0
    schema = json.loads(cli.out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"  # what YAML editors fully support
    assert schema["title"] == "ecs-autopilot policy"
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for document in yaml.safe_load_all(EXAMPLES.read_text()):
        assert list(validator.iter_errors(document)) == []
    bad = yaml.safe_load(WEB)
    bad["spec"]["scaling"]["maxTask"] = 3
    assert any("maxTask" in e.message for e in validator.iter_errors(bad))
    bad = yaml.safe_load(ETL)
    bad["kind"] = "Deployment"
    assert list(validator.iter_errors(bad))
    for adjustment, valid in (("30", False), ("30 percent", False), ("-10%", True), (" 12.5% ", True), (2, True)):
        document = yaml.safe_load(WEB)
        document["spec"]["scaling"]["rules"][0]["steps"][0]["adjustment"] = adjustment
        assert (not list(validator.iter_errors(document))) == valid, adjustment


def test_schema_help_explains_editor_use(cli: Run) -> None:
    assert cli("schema", "--help") == 0
    assert "yaml-language-server: $schema=" in cli.out


def test_validate_and_schema_do_not_load_boto3(tmp_path: Path) -> None:
    """Editors and pre-commit hooks call these often: they must not pay for boto3."""
    script = (f"import sys; from autopilot_tools.cli.main import main; "
              f"codes = [main(['validate', {str(EXAMPLES)!r}]), main(['schema'])]; "
              f"loaded = [m for m in ('boto3', 'botocore') if m in sys.modules]; "
              f"print(codes, loaded, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr.strip().splitlines()[-1] == "[0, 0] []"


# ------------------------------------------------------------------------------------ apply
def test_apply_get_and_apply_again(cli: Run, write, store: StateTable) -> None:
    path = write("p.yaml", WEB + "---\n" + ETL)
    assert cli("apply", path) == 0
    assert cli.lines == ["created ServicePolicy prod/web", "created TaskPolicy batch/nightly-etl",
                         "2 policies: 2 created"]
    assert sorted(p.key for p in store.list_policies()) == ["SVC#prod#web", "TASK#batch#nightly-etl"]

    assert cli("get") == 0
    assert "prod/web  (ServicePolicy)" in cli.out and "batch/nightly-etl  (TaskPolicy)" in cli.out
    assert "web-cpu-high (2 steps), web-cpu-low (1 step)" in cli.out

    assert cli("apply", path) == 0
    assert cli.lines == ["unchanged ServicePolicy prod/web", "unchanged TaskPolicy batch/nightly-etl",
                         "2 policies: 2 unchanged"]


def test_apply_change_updates_the_alarm_index(cli: Run, write, store: StateTable) -> None:
    assert cli("apply", write("v1.yaml", WEB)) == 0
    assert [p.key for p in store.policies_for_alarm("web-cpu-low")] == ["SVC#prod#web"]
    changed = WEB.replace("maxTasks: 40", "maxTasks: 30").replace("web-cpu-low", "web-latency-low")
    assert cli("apply", write("v2.yaml", changed)) == 0
    assert cli.lines == [
        "updated ServicePolicy prod/web",
        '    spec.scaling.maxTasks: 40 -> 30',
        '    spec.scaling.rules[1].alarm: "web-cpu-low" -> "web-latency-low"',
        "1 policy: 1 updated",
    ]
    assert store.policies_for_alarm("web-cpu-low") == []
    new = store.policies_for_alarm("web-latency-low")
    assert [p.key for p in new] == ["SVC#prod#web"] and new[0].spec.scaling and new[0].spec.scaling.maxTasks == 30
    assert [p.spec.scaling.maxTasks for p in store.policies_for_alarm("web-cpu-high") if p.spec.scaling] == [30]


def test_apply_refuses_everything_if_one_document_is_invalid(cli: Run, write, store: StateTable) -> None:
    path = write("p.yaml", ETL + "---\n" + WEB.replace("minTasks: 2", "minTasks: -2"))
    assert cli("apply", path) == 1
    assert cli.out == ""
    assert cli.err.splitlines() == [
        f"{path}: document 2: spec.scaling.minTasks: must be at least 0 (got -2) (line 12)",
        "autopilot: nothing was applied: fix the errors above first",
    ]
    assert store.list_policies() == []


def test_apply_dry_run_stores_nothing(cli: Run, write, store: StateTable) -> None:
    path = write("p.yaml", WEB)
    assert cli("apply", "--dry-run", path) == 0
    assert cli.lines == ["created ServicePolicy prod/web", "1 policy: 1 created (dry run: nothing stored)"]
    assert store.list_policies() == []
    assert cli("apply", path) == 0
    assert cli("apply", "--dry-run", write("q.yaml", WEB.replace("maxTasks: 40", "maxTasks: 41"))) == 0
    assert cli.lines[:2] == ["updated ServicePolicy prod/web", "    spec.scaling.maxTasks: 40 -> 41"]
    stored = store.get_policy("SVC#prod#web")
    assert isinstance(stored, ServicePolicy) and stored.spec.scaling and stored.spec.scaling.maxTasks == 40


def test_apply_example_file(cli: Run, store: StateTable) -> None:
    assert cli("apply", EXAMPLES) == 0
    assert cli.lines[-1] == "4 policies: 4 created"
    assert {p.key for p in store.policies_for_alarm("jobs-backlog-high")} == {"SVC#prod#worker"}


def test_apply_and_delete_are_audited_with_who_and_what_changed(cli: Run, write, store: StateTable) -> None:
    path = write("p.yaml", WEB)
    assert cli("apply", path) == 0
    assert cli("apply", path) == 0  # unchanged: nothing written, nothing audited
    assert cli("apply", write("q.yaml", WEB.replace("maxTasks: 40", "maxTasks: 20"))) == 0
    assert cli("delete", "--cluster", "prod", "--service", "web") == 0
    now = datetime.now(UTC)
    entries = store.history(cluster="prod", service="web", since=now - timedelta(hours=1),
                            now=now + timedelta(minutes=1))
    assert [e.outcome for e in entries] == ["policy:deleted", "policy:updated", "policy:created"]
    deleted, updated, created = entries
    assert all(e.actor == MOTO_IDENTITY and e.source == "cli" and e.target == "SVC#prod#web" for e in entries)
    assert updated.changes == ["spec.scaling.maxTasks: 40 -> 20"]
    assert updated.reason == f"updated by {MOTO_IDENTITY} with autopilot apply {path.with_name('q.yaml')}"
    assert created.trigger == "autopilot apply" and deleted.trigger == "autopilot delete"
    assert "spec.scaling.minTasks: (added) 2" in created.changes
    assert "spec.scaling.maxTasks: 20 -> (removed)" in deleted.changes  # what the deleted policy said
    assert deleted.reason == (f"deleted by {MOTO_IDENTITY} with autopilot delete --cluster prod --service web")


def test_history_shows_policy_changes_beside_decisions(cli: Run, write, store: StateTable) -> None:
    assert cli("apply", write("p.yaml", WEB + "---\n" + ETL)) == 0
    changed = write("q.yaml", WEB.replace("maxTasks: 40", "maxTasks: 20")
                    .replace("scaleOutCooldownSeconds: 60", "scaleOutCooldownSeconds: 90"))
    assert cli("apply", changed) == 0
    now = datetime.now(UTC)
    store.audit(AuditEntry(at=now, target="SVC#prod#web", event_id="e1", source="scaler",
                           trigger="alarm web-cpu-high -> ALARM", outcome="scale-out", reason="step +1",
                           calls=["ecs:UpdateService"]))
    assert cli("history", "--cluster", "prod", "--service", "web") == 0
    outcomes = [line.split("  ")[2] for line in cli.lines]
    assert outcomes == ["scale-out", "policy:updated", "policy:created"]
    assert cli.lines[1].endswith(f"policy:updated  updated by {MOTO_IDENTITY} with autopilot apply "
                                 f"{changed}: spec.scaling.maxTasks: 40 -> 20; "
                                 "spec.scaling.scaleOutCooldownSeconds: 60 -> 90  calls: -")
    assert cli.lines[2].endswith(f"policy:created  created by {MOTO_IDENTITY} with autopilot apply "
                                 f"{changed.with_name('p.yaml')} (24 fields: --json shows them)  calls: -")
    assert cli("history", "--cluster", "batch") == 0
    assert [line.split("  ")[1:3] for line in cli.lines] == [["batch/nightly-etl (task)", "policy:created"]]
    assert cli("history", "--json", "--cluster", "prod", "--service", "web") == 0
    changes = json.loads(cli.out)[1]["changes"]
    assert changes == ["spec.scaling.maxTasks: 40 -> 20", "spec.scaling.scaleOutCooldownSeconds: 60 -> 90"]


def test_a_huge_policy_change_is_audited_within_the_item_budget(cli: Run, write, store: StateTable) -> None:
    from autopilot.store.table import AUDIT_BUDGET_BYTES

    dims = ", ".join(f"d{i}: {'x' * 1000}" for i in range(30))
    rules = "".join(f"      - targetTracking: {{metric: {{namespace: N, name: m{r}, dimensions: {{{dims}}}}}, "
                    f"targetValue: 50}}\n" for r in range(8))
    text = WEB[: WEB.index("    rules:")] + "    rules:\n" + rules
    assert cli("apply", write("huge.yaml", text)) == 0
    [entry] = store.history(cluster="prod", service="web", since=datetime.now(UTC) - timedelta(hours=1))
    assert entry.outcome == "policy:created" and len(entry.model_dump_json()) <= AUDIT_BUDGET_BYTES
    assert entry.changes[-1].startswith("... and ") and entry.changes[-1].endswith(" more changes")


def test_without_an_aws_identity_the_os_user_is_recorded(cli: Run, write, store: StateTable,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from botocore.exceptions import EndpointConnectionError

    def unreachable(self: Any, operation: str, params: Any) -> Any:
        if operation == "GetCallerIdentity":
            raise EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com")
        return real(self, operation, params)

    from botocore.client import BaseClient

    real = BaseClient._make_api_call
    monkeypatch.setattr(BaseClient, "_make_api_call", unreachable)
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    commands.who.cache_clear()
    try:
        assert cli("apply", write("p.yaml", ETL)) == 0
    finally:
        commands.who.cache_clear()
    [entry] = store.history(cluster="batch", service="nightly-etl", since=datetime.now(UTC) - timedelta(hours=1))
    assert entry.actor == "alice (OS user)" and entry.reason.startswith("created by alice (OS user) with")


def test_a_concurrent_change_makes_delete_retry_and_audit_what_it_deleted(
        cli: Run, write, store: StateTable, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delete is conditional on the document it read: a concurrent apply cannot leave alarm entries behind."""
    assert cli("apply", write("p.yaml", WEB)) == 0
    import yaml

    changed = ServicePolicy.model_validate(yaml.safe_load(WEB.replace("web-cpu-low", "web-slow")))
    real_get = store.client.get_item
    raced: list[bool] = []

    def get_then_race(**kwargs: Any) -> Any:
        found = real_get(**kwargs)
        if kwargs["Key"]["SK"]["S"] == "POLICY" and not raced:
            raced.append(True)
            store.put_policy(changed, datetime.now(UTC))  # someone else applies between our read and delete
        return found

    monkeypatch.setattr(store.client, "get_item", get_then_race)
    assert store.delete_policy("SVC#prod#web", audit=lambda old: commands._policy_change(
        "SVC#prod#web", "delete", None, old, "me")) is True
    assert store.get_policy("SVC#prod#web") is None
    assert store.policies_for_alarm("web-slow") == [] and store.policies_for_alarm("web-cpu-high") == []
    [entry] = [e for e in store.history(cluster="prod", service="web", since=datetime.now(UTC) - timedelta(hours=1))
               if e.outcome == "policy:deleted"]
    assert 'spec.scaling.rules[1].alarm: "web-slow" -> (removed)' in entry.changes


# ------------------------------------------------------------------------------------ delete
def test_delete_removes_policy_and_alarm_entries(cli: Run, write, store: StateTable) -> None:
    assert cli("apply", write("p.yaml", WEB + "---\n" + ETL)) == 0
    assert cli("delete", "--cluster", "prod", "--service", "web") == 0
    assert cli.lines[0].startswith("deleted ServicePolicy prod/web")
    assert store.get_policy("SVC#prod#web") is None
    assert store.policies_for_alarm("web-cpu-high") == [] and store.policies_for_alarm("web-5xx-high") == []
    assert cli("delete", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert store.list_policies() == []
    assert cli("delete", "--cluster", "prod", "--service", "web") == 1
    assert cli.err.strip() == "autopilot: error: no ServicePolicy for prod/web (autopilot get lists stored policies)"


def test_delete_needs_a_target(cli: Run, env: dict[str, str]) -> None:
    assert cli("delete", "--cluster", "prod") == 2
    assert "one of the arguments --service --family is required" in cli.err


# ------------------------------------------------------------------------------------ pause, resume
def make_service(desired: int = 4) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=desired)


def desired_count() -> int:
    return client("ecs").describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"]


def alarm_event(name: str, value: float, ts: str) -> dict[str, Any]:
    base = published("cloudwatch-alarm-state-change-single-metric.json")
    reason = json.loads(base["detail"]["state"]["reasonData"])
    reason.update(recentDatapoints=[value], threshold=50.0)
    return variant(base, **{"detail.alarmName": name, "detail.state.value": "ALARM", "detail.state.timestamp": ts,
                            "detail.state.reasonData": json.dumps(reason), "id": f"evt-{name}-{ts}"})


def test_pause_skips_the_scaler_and_resume_restores_it(cli: Run, write, deps: Any, lambda_context: Any) -> None:
    make_service(4)
    assert cli("apply", write("p.yaml", WEB)) == 0
    assert cli("pause", "--cluster", "prod", "--service", "web", "--reason", "load test at 14:00") == 0
    assert cli.lines == ["paused ServicePolicy prod/web (load test at 14:00)"]
    snap = deps.store.load_state("SVC#prod#web")
    assert (snap.state.paused, snap.state.paused_reason) == (True, "load test at 14:00")

    scaler = load_handler("scaler")
    result = scaler.lambda_handler(alarm_event("web-cpu-high", 99.5, "2026-11-26T12:00:00.000+0000"), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["skipped:paused"]
    assert "load test at 14:00" in result["outcomes"][0]["reason"]
    assert desired_count() == 4

    assert cli("get", "--cluster", "prod", "--service", "web") == 0
    assert "paused:" in cli.out and "yes (load test at 14:00)" in cli.out

    assert cli("resume", "--cluster", "prod", "--service", "web") == 0
    assert cli.lines == ["resumed ServicePolicy prod/web"]
    assert deps.store.load_state("SVC#prod#web").state.paused is False
    result = scaler.lambda_handler(alarm_event("web-cpu-high", 99.5, "2026-11-26T12:01:00.000+0000"), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"]
    assert desired_count() == 6


def test_pause_is_audited_and_idempotent(cli: Run, write, store: StateTable) -> None:
    assert cli("apply", write("p.yaml", ETL)) == 0
    assert store.load_state("TASK#batch#nightly-etl").version == 0  # no state item yet
    assert cli("pause", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert cli.lines == ["paused TaskPolicy batch/nightly-etl"]
    assert cli("pause", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert cli.lines == ["TaskPolicy batch/nightly-etl is already paused"]
    assert store.load_state("TASK#batch#nightly-etl").version == 1
    assert cli("resume", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert cli("resume", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert cli.lines == ["TaskPolicy batch/nightly-etl is already running (not paused)"]
    now = datetime.now(UTC)
    entries = store.history(cluster="batch", service="nightly-etl", since=now - timedelta(hours=1),
                            now=now + timedelta(minutes=1))
    assert [e.outcome for e in entries] == ["operator:resumed", "operator:paused", "policy:created"]
    assert all(e.source == "cli" and e.calls == [] and e.actor == MOTO_IDENTITY for e in entries)
    assert entries[1].reason == f"paused by {MOTO_IDENTITY} with autopilot pause"


def test_pause_keeps_the_rest_of_the_state(cli: Run, write, store: StateTable) -> None:
    assert cli("apply", write("p.yaml", WEB)) == 0
    state = ServiceState.model_validate({"rollout": {"lkg": "arn:aws:ecs:us-east-1:1:task-definition/web:7"},
                                         "scaling": {"last_desired": 6}})
    store.save_state("SVC#prod#web", state, 0)
    assert cli("pause", "--cluster", "prod", "--service", "web") == 0
    snap = store.load_state("SVC#prod#web")
    assert snap.version == 2 and snap.state.paused
    assert snap.state.rollout.lkg == "arn:aws:ecs:us-east-1:1:task-definition/web:7"
    assert snap.state.scaling.last_desired == 6


def test_pause_retries_a_concurrent_update(cli: Run, write, store: StateTable, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("apply", write("p.yaml", WEB)) == 0
    real_load = StateTable.load_state
    raced = []

    def racing_load(self: StateTable, key: str) -> Any:
        snap = real_load(self, key)
        if not raced:  # someone else writes between our read and our write
            raced.append(True)
            real_save(self, key, snap.state.model_copy(update={"applied_events": ["evt-1"]}), snap.version)
        return snap

    real_save = StateTable.save_state
    monkeypatch.setattr(StateTable, "load_state", racing_load)
    assert cli("pause", "--cluster", "prod", "--service", "web") == 0
    snap = store.load_state("SVC#prod#web")
    assert snap.version == 2 and snap.state.paused and snap.state.applied_events == ["evt-1"]


def test_pause_needs_a_policy(cli: Run, env: dict[str, str], store: StateTable) -> None:
    assert cli("pause", "--cluster", "prod", "--service", "ghost") == 1
    assert cli.err.strip() == ("autopilot: error: no ServicePolicy for prod/ghost: autopilot only pauses what a policy "
                               "manages (autopilot get lists stored policies)")
    assert store.load_state("SVC#prod#ghost").version == 0


# ------------------------------------------------------------------------------------ get
def test_get_shows_state(cli: Run, write, store: StateTable, fixed_now: datetime) -> None:
    assert cli("apply", write("p.yaml", WEB + "---\n" + ETL)) == 0
    state = ServiceState.model_validate({
        "scaling": {"scale_out_until": (fixed_now + timedelta(seconds=150)).isoformat(),
                    "scale_in_until": (fixed_now - timedelta(seconds=5)).isoformat(),
                    "last_action_at": (fixed_now - timedelta(seconds=30)).isoformat(), "last_desired": 6},
        "rollout": {"lkg": "arn:aws:ecs:us-east-1:1:task-definition/web:7",
                    "bad_revisions": ["arn:aws:ecs:us-east-1:1:task-definition/web:8"]},
    })
    store.save_state("SVC#prod#web", state, 0)
    assert cli("get", "--cluster", "prod") == 0
    out = cli.out
    assert "batch/nightly-etl" not in out
    assert "prod/web  (ServicePolicy)" in out
    assert "scale-out until 2026-11-26T12:02:30Z (2m30s left); scale-in none" in out
    assert "2026-11-26T11:59:30Z (30s ago) to 6 tasks" in out
    assert "last known good: arn:aws:ecs:us-east-1:1:task-definition/web:7" in out
    assert "bad revisions:   arn:aws:ecs:us-east-1:1:task-definition/web:8" in out
    assert "mode:" in out and "enforce" in out and "paused:" in out

    assert cli("get", "--family", "nightly-etl") == 0
    assert "batch/nightly-etl  (TaskPolicy)" in cli.out and "prod/web" not in cli.out
    assert "state:   none recorded yet" in cli.out

    assert cli("get", "--json") == 0
    listed = json.loads(cli.out)
    assert [p["target"] for p in listed] == ["prod/web", "batch/nightly-etl"]
    assert listed[0]["state"]["rollout"]["lkg"] == "arn:aws:ecs:us-east-1:1:task-definition/web:7"
    assert listed[0]["stateVersion"] == 1 and listed[1]["stateVersion"] == 0
    assert listed[0]["policy"]["spec"]["scaling"]["maxTasks"] == 40


def test_get_shows_state_fields_it_does_not_know(cli: Run, write, store: StateTable) -> None:
    """Rollout and healing state grow with their capabilities; get shows their fields without a CLI change."""
    assert cli("apply", write("p.yaml", WEB)) == 0
    state = ServiceState.model_validate({"rollout": {"lkg_deployment": "ecs-svc/123"}})
    store.save_state("SVC#prod#web", state, 0)
    assert cli("get") == 0
    assert "rollout.lkg_deployment: ecs-svc/123" in cli.out


def test_get_with_no_policies(cli: Run, env: dict[str, str]) -> None:
    assert cli("get") == 0
    assert cli.lines == ["no policies found"]
    assert cli("get", "--cluster", "nope") == 0
    assert cli.lines == ["no policies found matching the filters"]


# ------------------------------------------------------------------------------------ history
def audit(store: StateTable, minutes_ago: int, target: str = "SVC#prod#web", outcome: str = "scale-out",
          calls: list[str] | None = None) -> None:
    store.audit(AuditEntry(at=NOW - timedelta(minutes=minutes_ago), target=target, event_id=f"e{minutes_ago}",
                           source="scaler", trigger="alarm web-cpu-high -> ALARM", outcome=outcome,
                           reason=f"reason {minutes_ago}", calls=calls or []))


def test_history_newest_first_with_since_and_limit(cli: Run, store: StateTable, fixed_now: datetime) -> None:
    audit(store, 5, calls=["ecs:UpdateService", "sns:Publish"])
    audit(store, 90, outcome="skipped:cooldown")
    audit(store, 30, target="SVC#prod#api")
    audit(store, 60 * 30, outcome="scale-in")  # 30 hours ago: outside the default 24 h
    audit(store, 10, target="TASK#batch#nightly-etl", outcome="restart")

    assert cli("history") == 0
    assert cli.lines == [
        "2026-11-26T11:55:00Z  prod/web  scale-out  reason 5  calls: ecs:UpdateService, sns:Publish",
        "2026-11-26T11:50:00Z  batch/nightly-etl (task)  restart  reason 10  calls: -",
        "2026-11-26T11:30:00Z  prod/api  scale-out  reason 30  calls: -",
        "2026-11-26T10:30:00Z  prod/web  skipped:cooldown  reason 90  calls: -",
    ]
    assert cli("history", "--cluster", "prod", "--service", "web", "--since", "1h") == 0
    assert [line.split("  ")[2] for line in cli.lines] == ["scale-out"]
    assert cli("history", "--cluster", "prod", "--service", "web", "--since", "2d") == 0
    assert [line.split("  ")[2] for line in cli.lines] == ["scale-out", "skipped:cooldown", "scale-in"]
    assert cli("history", "--cluster", "prod", "--since", "45m") == 0
    assert [line.split("  ")[1] for line in cli.lines] == ["prod/web", "prod/api"]
    assert cli("history", "--service", "web", "--since", "2026-11-26T10:00:00Z") == 0
    assert [line.split("  ")[2] for line in cli.lines] == ["scale-out", "skipped:cooldown"]
    assert cli("history", "--cluster", "batch", "--family", "nightly-etl") == 0
    assert [line.split("  ")[2] for line in cli.lines] == ["restart"]
    assert cli("history", "--limit", "2") == 0
    assert len(cli.lines) == 2
    assert cli("history", "--json", "--since", "15m") == 0
    assert [e["event_id"] for e in json.loads(cli.out)] == ["e5", "e10"]


def test_history_empty_and_bad_since(cli: Run, store: StateTable, fixed_now: datetime) -> None:
    assert cli("history", "--since", "30m") == 0
    assert cli.lines == ["no audit entries since 2026-11-26T11:30:00Z"]
    assert cli("history", "--since", "yesterday") == 2
    assert cli.err.strip() == ("autopilot: error: --since: 'yesterday' is neither a duration (30m, 1h, 2d, 1w) nor "
                               "an ISO time (2026-11-26T12:00)")
    assert cli("history", "--limit", "0") == 2


# ------------------------------------------------------------------------------------ table discovery
def test_table_from_option_overrides_env(cli: Run, write, env: dict[str, str]) -> None:
    assert cli("apply", "--table", "other-table", write("p.yaml", ETL)) == 1
    assert cli.err.strip() == ("autopilot: error: table 'other-table' not found in region us-east-1 "
                               "(check --table, AUTOPILOT_TABLE, --stack and --region)")


def test_botocore_errors_in_one_line() -> None:
    from botocore.exceptions import EndpointConnectionError, NoRegionError, ParamValidationError

    from autopilot_tools.cli.main import describe_error

    assert describe_error(ParamValidationError(report="Invalid length for parameter TableName\nvalue: x")) == (
        "invalid request: Parameter validation failed: Invalid length for parameter TableName value: x")
    assert describe_error(NoRegionError()).startswith("no AWS region configured: pass --region, set AWS_REGION")
    assert describe_error(EndpointConnectionError(endpoint_url="https://dynamodb.x")).startswith(
        "cannot reach AWS (EndpointConnectionError): Could not connect to the endpoint URL")


def test_table_from_stack_outputs(cli: Run, write, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOPILOT_TABLE", raising=False)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"StateTableName": {"Value": stack.ref("StateTable")}}}
    client("cloudformation").create_stack(StackName="ecs-autopilot", TemplateBody=json.dumps(template))
    assert cli("apply", write("p.yaml", ETL)) == 0
    assert StateTable(stack.ref("StateTable")).get_policy("TASK#batch#nightly-etl") is not None

    client("cloudformation").create_stack(StackName="autopilot-staging", TemplateBody=json.dumps(template))
    monkeypatch.setenv("AUTOPILOT_STACK", "autopilot-staging")
    assert cli("get", "--json") == 0  # --stack defaults to $AUTOPILOT_STACK
    assert [p["target"] for p in json.loads(cli.out)] == ["batch/nightly-etl"]


def test_no_table_anywhere(cli: Run, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOPILOT_TABLE", raising=False)
    assert cli("get") == 1
    assert cli.err.strip() == ("autopilot: error: no state table: stack 'ecs-autopilot' was not found in this region; "
                               "pass --table NAME, set AUTOPILOT_TABLE, or name the deployed stack with --stack")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    client("cloudformation").create_stack(StackName="bare", TemplateBody=json.dumps(template))
    assert cli("get", "--stack", "bare") == 1
    assert "stack 'bare' (CREATE_COMPLETE) has no output StateTableName" in cli.err


def test_region_option(cli: Run, env: dict[str, str]) -> None:
    assert cli("get", "--region", "eu-west-1") == 1
    assert "not found in region eu-west-1" in cli.err
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"  # restored for whatever runs next
    assert cli("get") == 0


def _table_in(region: str, name: str) -> None:
    import boto3

    boto3.client("dynamodb", region_name=region).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("PK", "SK", "GSI1PK", "GSI1SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
            {"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]}])


@pytest.mark.parametrize(("region_option", "aws_region", "aws_default_region", "used"), [
    (None, "eu-west-1", "us-east-1", "eu-west-1"),           # AWS_REGION wins over AWS_DEFAULT_REGION (AWS CLI v2)
    (None, None, "ap-southeast-2", "ap-southeast-2"),       # AWS_DEFAULT_REGION alone, as boto3 reads it
    ("ap-southeast-2", "eu-west-1", "us-east-1", "ap-southeast-2"),  # --region wins over both
])
def test_region_precedence_is_the_aws_clis(cli: Run, aws: None, monkeypatch: pytest.MonkeyPatch,
                                            region_option: str | None, aws_region: str | None,
                                            aws_default_region: str, used: str) -> None:
    for region in ("eu-west-1", "ap-southeast-2", "us-east-1"):
        _table_in(region, f"state-{region}")
    if aws_region is None:
        monkeypatch.delenv("AWS_REGION")
    else:
        monkeypatch.setenv("AWS_REGION", aws_region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", aws_default_region)
    region = ["--region", region_option] if region_option else []
    assert cli("get", "--table", f"state-{used}", *region) == 0, cli.err
    for other in {"eu-west-1", "ap-southeast-2", "us-east-1"} - {used}:
        assert cli("get", "--table", f"state-{other}", *region) == 1
        assert cli.err.strip().endswith(f"table 'state-{other}' not found in region {used} (check --table, "
                                        "AUTOPILOT_TABLE, --stack and --region)")
    assert os.environ["AWS_DEFAULT_REGION"] == aws_default_region  # restored for whatever runs next
    assert os.environ.get("AWS_REGION") == aws_region


def test_aws_region_alone_is_enough(tmp_path: Path) -> None:
    """`AWS_REGION=eu-west-1 autopilot get` no longer says "no AWS region configured" (it now needs credentials)."""
    result = _run_cli(["get", "--table", "t"], tmp_path, AWS_REGION="eu-west-1")
    assert result.returncode == 1 and "no usable AWS credentials" in result.stderr, result.stderr


def test_the_profile_region_is_used_last(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-central-1\n")
    result = _run_cli(["get", "--table", "t"], tmp_path, AWS_CONFIG_FILE=str(config))
    assert result.returncode == 1 and "no usable AWS credentials" in result.stderr, result.stderr


# ------------------------------------------------------------------------------------ errors
def test_throttling_is_one_line(cli: Run, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def throttled(self: StateTable) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")

    monkeypatch.setattr(StateTable, "list_policies", throttled)
    assert cli("get") == 1
    assert cli.err == ("autopilot: error: AWS is throttling Query (ThrottlingException) even after retries; "
                       "wait a minute and try again\n")


def test_policy_from_a_newer_version_is_one_line(cli: Run, env: dict[str, str]) -> None:
    newer = {"apiVersion": "autopilot/v1", "kind": "TaskPolicy", "metadata": {"cluster": "b", "family": "f"},
             "spec": {"restart": {"maxRestarts": 1}, "someFutureField": True}}
    client("dynamodb").put_item(TableName=env["AUTOPILOT_TABLE"], Item={
        "PK": {"S": "TASK#b#f"}, "SK": {"S": "POLICY"}, "GSI1PK": {"S": "POLICIES"}, "GSI1SK": {"S": "TASK#b#f"},
        "kind": {"S": "TaskPolicy"}, "doc": {"S": json.dumps(newer)}})
    assert cli("get") == 1
    assert cli.err.startswith("autopilot: error: stored data this version of autopilot cannot read (is the CLI "
                              "older than the stack?): 1 validation error")
    assert len(cli.err.splitlines()) == 1


def test_unexpected_errors_are_one_line(cli: Run, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: StateTable) -> Any:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(StateTable, "list_policies", broken)
    monkeypatch.delenv("AUTOPILOT_DEBUG", raising=False)
    assert cli("get") == 1
    assert cli.err == ("autopilot: error: unexpected RuntimeError: disk on fire second line "
                       "(set AUTOPILOT_DEBUG=1 for the traceback)\n")


def _run_cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point's code in a clean process: no credentials, no region, no metadata service."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("AUTOPILOT_")}
    clean.update({"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                  "AWS_EC2_METADATA_DISABLED": "true", **env})
    return subprocess.run([sys.executable, "-m", "autopilot_tools.cli.main", *args], capture_output=True, text=True,
                          env=clean, timeout=60, check=False)


def test_missing_credentials_and_region(tmp_path: Path) -> None:
    result = _run_cli(["get", "--table", "t"], tmp_path, AWS_DEFAULT_REGION="us-east-1")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("autopilot: error: no usable AWS credentials: configure a profile (AWS_PROFILE, aws "
                             "configure / aws sso login) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n")
    result = _run_cli(["get", "--table", "t"], tmp_path)
    assert (result.returncode, result.stderr) == (1, "autopilot: error: no AWS region configured: pass --region, "
                                                     "set AWS_REGION (or AWS_DEFAULT_REGION), or set region in your "
                                                     "AWS profile (aws configure)\n")


# ------------------------------------------------------------------------------------ usage, external commands
def test_usage_errors_exit_2(cli: Run) -> None:
    assert cli() == 2 and "usage: autopilot" in cli.err
    assert cli("frobnicate") == 2 and "invalid choice" in cli.err
    assert cli("--version") == 0 and cli.out.startswith("autopilot ")


def test_external_commands_are_registered() -> None:
    table = {name: (spec.module, spec.function) for name, spec in external.EXTERNAL_COMMANDS.items()}
    assert table == {"demo": ("autopilot_tools.demo.cli", "run"),
                     "backtest": ("autopilot_tools.backtest.cli", "run_backtest"),
                     "recommend": ("autopilot_tools.backtest.cli", "run_recommend"),
                     "dlq": ("autopilot_tools.dlq.cli", "run"),
                     "local": ("autopilot_tools.local", "run")}


def test_external_command_gets_the_remaining_arguments(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []
    module = types.ModuleType("autopilot_fake_ext")
    module.go = lambda argv: received.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autopilot_fake_ext", module)
    monkeypatch.setitem(external.EXTERNAL_COMMANDS, "fake", external.External("autopilot_fake_ext", "go", "a fake"))
    assert cli("fake", "--scenario", "spot", "--help") == 3
    assert received == [["--scenario", "spot", "--help"]]


def test_external_command_not_installed(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(external.EXTERNAL_COMMANDS, "later", external.External("autopilot.not_yet.cli", "run", "x"))
    assert cli("later", "--x") == 2
    assert cli.err.strip() == ("autopilot: 'later' is not available in this installation "
                               "(module autopilot.not_yet.cli not found)")


def test_external_command_with_a_broken_import_is_not_hidden(cli: Run, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    (tmp_path / "autopilot_broken_ext.py").write_text("import a_dependency_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(external.EXTERNAL_COMMANDS, "broken", external.External("autopilot_broken_ext", "run", "x"))
    assert cli("broken") == 1
    assert "ModuleNotFoundError: No module named 'a_dependency_that_is_missing'" in cli.err


def test_external_command_names_the_extra_that_installs_a_missing_package(
        cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "autopilot_extra_ext.py").write_text("import a_package_of_the_extra\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(external.EXTERNAL_COMMANDS, "needy",
                        external.External("autopilot_extra_ext", "run", "x", extra="demo"))
    assert cli("needy") == 2
    assert "needs the Python package 'a_package_of_the_extra'" in cli.err
    assert "pip install -e '.[demo]'" in cli.err


def test_demo_without_moto_says_what_to_install() -> None:
    """`pip install -e .` alone has no emulator: the demo says how to get it instead of a traceback."""
    code = ("import sys; sys.modules['moto'] = None; sys.modules['moto.server'] = None\n"
            "from autopilot_tools.cli.main import main; sys.exit(main(['demo', '--scenario', 'scale']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install -e '.[demo]'" in done.stderr and "Traceback" not in done.stderr


def test_help_lists_external_commands(cli: Run) -> None:
    assert cli("--help") == 0
    for name in ("validate", "schema", "apply", "get", "delete", "pause", "resume", "history", "demo", "backtest",
                 "local"):
        assert f"    {name} " in cli.out
