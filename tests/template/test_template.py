"""template.yaml: the linters and SAM accept it, it builds for arm64, and its structure keeps its promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autopilot_tools.localstack import load_template
from tests.template.iam_policies import sam_python

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")
CONTRACT_FUNCTIONS = {"ScalerFunction": "scaler", "HealerFunction": "healer", "RolloutFunction": "rollout",
                      "RestarterFunction": "restarter", "ReconcilerFunction": "reconciler",
                      # issue 13: the handler of Custom::EcsAutopilotPolicy (and of the hub's member registry)
                      "PolicyResourceFunction": "policy_resource"}
ASYNC_EVENT_TYPES = {"EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2", "SNS", "S3"}


def prop(function: str, name: str) -> Any:
    """A function property as deployed: its own value, else the Globals value."""
    own = RESOURCES[function]["Properties"]
    return own[name] if name in own else GLOBALS.get(name)


def events_of(function: str) -> dict[str, Any]:
    return RESOURCES[function]["Properties"].get("Events") or {}


def tool_env() -> dict[str, str]:
    """No credentials needed; the project venv's bin first (sam build needs a real python3.13)."""
    env = dict(os.environ)
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def sam() -> str:
    return str(sam_python().parent / "sam")


def run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=timeout, check=False)


# ------------------------------------------------------------------------------------ tools
def test_cfn_lint_clean() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(ROOT / "template.yaml")
    assert [str(m) for m in matches] == []


def test_cfn_lint_would_catch_a_broken_function(tmp_path: Path) -> None:
    from cfnlint.api import lint_file

    broken = tmp_path / "template.yaml"
    broken.write_text((ROOT / "template.yaml").read_text().replace("Timeout: 60", "Timeout: 9999", 1))
    assert any("9999" in str(m) for m in lint_file(broken))


def test_sam_validate_lint_clean() -> None:
    done = run([sam(), "validate", "--lint", "--template", "template.yaml"])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_sam_build_for_arm64(tmp_path: Path) -> None:
    # A private build dir (concurrent test runs must not share one); the cache makes rebuilds fast.
    cache = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build") / "sam-cache"
    build_dir = tmp_path / "sam-build"
    done = run([sam(), "build", "--template", "template.yaml", "--build-dir", str(build_dir),
                "--cache-dir", str(cache), "--cached", "--parallel"], timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    built = load_template(build_dir / "template.yaml")
    layer_dir = build_dir / "AutopilotLayer" / "python"
    assert (layer_dir / "autopilot" / "store" / "table.py").exists()
    assert (layer_dir / "aws_lambda_powertools").is_dir()
    # native wheels were fetched for the functions' architecture, not the build machine's
    natives = [p.name for p in layer_dir.glob("pydantic_core/*.so")]
    assert natives and all("aarch64" in n for n in natives), natives
    for function, folder in CONTRACT_FUNCTIONS.items():
        if function in FUNCTIONS:
            assert (build_dir / function / "app.py").exists(), function
            assert built["Resources"][function]["Properties"]["CodeUri"] == function
    assert not list((build_dir / "ScalerFunction").glob("autopilot")), "the library ships in the layer only"
    assert_runtime_only(layer_dir)


def assert_runtime_only(layer_dir: Path) -> None:
    """The layer carries what handlers import: no tooling (CLI, demo, backtest, dlq, local stack), no PyYAML,
    no moto, no packaging metadata of the project itself."""
    tops = {p.name for p in layer_dir.iterdir()}
    assert "autopilot_tools" not in tops
    assert not {"yaml", "_yaml", "moto"} & tops, tops
    assert not [t for t in tops if t.lower().startswith(("pyyaml", "moto", "ecs_autopilot"))], tops
    runtime = {p.name for p in (layer_dir / "autopilot").iterdir()}
    assert not {"cli", "demo", "backtest", "dlq", "localstack.py", "policyfile.py"} & runtime, runtime
    size = sum(p.stat().st_size for p in layer_dir.rglob("*") if p.is_file())
    assert size < 14_000_000, f"the layer grew to {size / 1e6:.1f} MB unpacked"


# ------------------------------------------------------------------------------------ functions
def test_contract_functions_exist() -> None:
    missing = [f for f in ("ScalerFunction", "ReconcilerFunction") if f not in FUNCTIONS]
    assert missing == []
    unknown = set(FUNCTIONS) - set(CONTRACT_FUNCTIONS)
    assert not unknown, f"functions not in the contract: {unknown}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_runtime_and_handler(function: str) -> None:
    assert prop(function, "Runtime") == "python3.13"
    assert prop(function, "Architectures") == ["arm64"]
    assert prop(function, "Handler") == "app.lambda_handler"
    code = ROOT / prop(function, "CodeUri")
    assert code == ROOT / "functions" / CONTRACT_FUNCTIONS[function]
    assert "def lambda_handler(" in (code / "app.py").read_text()
    assert {"Ref": "AutopilotLayer"} in (prop(function, "Layers") or [])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_environment(function: str) -> None:
    env = dict((GLOBALS.get("Environment") or {}).get("Variables") or {})
    env.update((RESOURCES[function]["Properties"].get("Environment") or {}).get("Variables") or {})
    assert env["AUTOPILOT_TABLE"] == {"Ref": "StateTable"}
    assert env["AUTOPILOT_TOPIC_ARN"] == {"Ref": "NotificationTopic"}
    assert env["AUTOPILOT_RESTART_QUEUE_URL"] == {"Ref": "RestartQueue"}
    assert env["AUTOPILOT_MODE"] == {"Ref": "Mode"}
    assert "POWERTOOLS_SERVICE_NAME" in env


def log_group_of(function: str) -> tuple[str, dict[str, Any]]:
    """The logical id and properties of the log group a function's LoggingConfig names."""
    config = prop(function, "LoggingConfig") or {}
    logical = (config.get("LogGroup") or {}).get("Ref")
    assert logical in RESOURCES and RESOURCES[logical]["Type"] == "AWS::Logs::LogGroup", \
        f"{function}: LoggingConfig.LogGroup must be !Ref to a log group of this stack (it exists before the function)"
    return logical, RESOURCES[logical]["Properties"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_logs_to_its_own_log_group_with_retention(function: str) -> None:
    """The stack creates the group before the function can run: no race with Lambda creating its default group."""
    logical, group = log_group_of(function)
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert RESOURCES[logical].get("UpdateReplacePolicy") == "Retain", "a renamed group keeps its logs"
    assert prop(function, "LoggingConfig")["LogFormat"] == "JSON"
    name = group["LogGroupName"]["Fn::Sub"]
    assert name.startswith("/aws/lambda/${AWS::StackName}/"), "stack-scoped: two stacks in one account do not clash"
    assert "${" + function + "}" not in name, "Lambda's default group name: Lambda may create it first"


def test_no_log_group_is_named_as_lambda_names_its_default() -> None:
    names = [json.dumps(r["Properties"].get("LogGroupName")) for r in RESOURCES.values()
             if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(names) == len(set(names)) == len(FUNCTIONS)
    assert not [n for n in names for f in FUNCTIONS if "${" + f + "}" in n]


def test_sam_passes_the_logging_config_to_lambda() -> None:
    from tests.template.iam_policies import expand

    resources = expand()["resources"]
    for function in FUNCTIONS:
        logical, _ = log_group_of(function)
        config = resources[function]["Properties"]["LoggingConfig"]
        assert config == {"LogGroup": {"Ref": logical}, "LogFormat": "JSON"}, function


@pytest.mark.parametrize("function", FUNCTIONS)
def test_event_bridge_targets_have_dlq_and_retry_policy(function: str) -> None:
    for name, event in events_of(function).items():
        if event["Type"] in ("EventBridgeRule", "CloudWatchEvent"):
            props = event["Properties"]
            assert props.get("DeadLetterConfig", {}).get("Arn") == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, name
            assert props.get("RetryPolicy", {}).get("MaximumRetryAttempts", 0) > 0, name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_async_invocations_have_on_failure_destination(function: str) -> None:
    """Event-carrying async triggers must not lose events. Schedule-only functions are exempt when they
    do not retry: the next tick re-runs them, and a failed tick is visible in the function's Errors."""
    types = {e["Type"] for e in events_of(function).values()}
    if not types & ASYNC_EVENT_TYPES:
        return
    config = RESOURCES[function]["Properties"].get("EventInvokeConfig") or {}
    if types <= {"Schedule", "ScheduleV2"} and config.get("MaximumRetryAttempts") == 0:
        return
    destination = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
    assert destination.get("Destination") == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, function


def sqs_sources() -> list[tuple[str, str, dict[str, Any]]]:
    """(function, queue logical id, event source mapping properties) for every SQS trigger."""
    found = []
    for logical, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            props = resource["Properties"]
            function = props["FunctionName"]["Ref"].removesuffix(".Alias")  # the live alias (test_snapstart.py)
            found.append((function, props["EventSourceArn"]["Fn::GetAtt"][0], props))
    return found


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_sam_sqs_event_source(function: str) -> None:
    """SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole: receive and delete on every queue of the account.
    SQS triggers are event source mappings of the template's own, polled with the function's scoped policy."""
    assert [n for n, e in events_of(function).items() if e["Type"] == "SQS"] == []


def test_the_sqs_triggers_are_the_restart_queue_and_the_reconcilers_fan_out() -> None:
    assert sorted((f, q) for f, q, _ in sqs_sources()) == [("ReconcilerFunction", "ReconcileShardQueue"),
                                                          ("RestarterFunction", "RestartQueue")]


@pytest.mark.parametrize(("function", "queue", "props"), sqs_sources())
def test_sqs_triggers_report_partial_failures_and_redrive(function: str, queue: str, props: dict[str, Any]) -> None:
    assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    assert props.get("ScalingConfig", {}).get("MaximumConcurrency"), "bounded: the ECS API has rate limits"
    queue_props = RESOURCES[queue]["Properties"]
    assert "RedrivePolicy" in queue_props, f"{queue}: the queue needs a dead-letter queue"
    timeout = prop(function, "Timeout") or 3
    assert queue_props.get("VisibilityTimeout", 30) >= 6 * timeout, "Lambda advises visibility >= 6 x timeout"


def test_alarm_action_permission_is_scoped_to_this_account() -> None:
    permissions = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::Permission"]
    alarm = [p for p in permissions if p["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"]
    assert alarm and all(p.get("SourceAccount") == {"Ref": "AWS::AccountId"} for p in alarm)


# ------------------------------------------------------------------------------------ stateful resources
def test_table_has_ttl_and_the_keys_the_store_uses() -> None:
    tables = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1, "one table holds everything"
    table = tables[0]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert RESOURCES["StateTable"].get("DeletionPolicy") == "Retain"


def test_queues_are_encrypted_and_dead_letter_queue_keeps_two_weeks() -> None:
    for logical, resource in RESOURCES.items():
        if resource["Type"] == "AWS::SQS::Queue":
            props = resource["Properties"]
            assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId"), logical
    assert RESOURCES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_parameters() -> None:
    params = TEMPLATE["Parameters"]
    assert params["ManagedClusters"]["Type"] == "CommaDelimitedList"
    assert "Default" not in params["ManagedClusters"], "the operator must name the clusters"
    assert params["Mode"]["AllowedValues"] == ["enforce", "dry-run", "off"]
    assert params["Mode"]["Default"] == "enforce"
    assert params["NotificationEmail"]["Default"] == ""
    assert params["LogRetentionDays"]["Type"] == "Number"


def _reserved_when_enabled() -> int:
    total = 0
    for function in FUNCTIONS:
        value = RESOURCES[function]["Properties"].get("ReservedConcurrentExecutions")
        if value is not None:
            condition, reserved, otherwise = value["Fn::If"]
            assert condition == "LimitConcurrency" and otherwise == {"Ref": "AWS::NoValue"}, function
            total += int(reserved)
    return total


def test_concurrency_limits_default_works_in_a_new_account() -> None:
    """Lambda keeps 100 executions unreserved: reserving needs a quota of reserved + 100, which new accounts
    often lack. The default reserves nothing; the parameter and the README say what enabling needs."""
    param = TEMPLATE["Parameters"]["ConcurrencyLimits"]
    assert param["Default"] == "disabled"
    assert TEMPLATE["Conditions"]["LimitConcurrency"] == {"Fn::Equals": [{"Ref": "ConcurrencyLimits"}, "enabled"]}
    reserved = _reserved_when_enabled()
    assert reserved > 0
    description = " ".join(param["Description"].split())
    assert f"{reserved} executions in total" in description and f"at least {reserved + 100}" in description
    readme = (ROOT / "README.md").read_text().splitlines()
    row = next(line for line in readme if line.startswith("| `ConcurrencyLimits`"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "`disabled`", row
    assert f"{reserved} in total" in cells[2] and f"at least {reserved + 100}" in cells[2], row


def test_outputs_for_the_cli() -> None:
    outputs = TEMPLATE["Outputs"]
    from autopilot_tools.cli.discovery import TABLE_OUTPUT

    assert outputs[TABLE_OUTPUT]["Value"] == {"Ref": "StateTable"}
    for name in ("NotificationTopicArn", "RestartQueueUrl", "DeadLetterQueueUrl", "ScalerFunctionArn"):
        assert name in outputs, name


def test_layer_builds_for_arm64() -> None:
    layer = RESOURCES["AutopilotLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    requirements = (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").read_text()
    assert "boto3" not in requirements.replace("(boto3", ""), "boto3 comes with the runtime"


def test_samconfig_deploys_the_stack() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert config["default"]["global"]["parameters"]["stack_name"] == "ecs-autopilot"
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"].split())
    assert set(overrides) <= set(TEMPLATE["Parameters"]), "overrides must name template parameters"
    assert "region" not in deploy, "the region comes from the user's AWS configuration"


def _make_dry_run(*args: str, **env: str) -> list[str]:
    """The commands ``make -n`` would run (nothing is executed), with the given environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "REGION")}
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_deploy_guided_builds_then_deploys_guided() -> None:
    """`sam` lives in .venv-sam, not on PATH: the first, guided deploy has its own target, next to `make deploy`."""
    lines = _make_dry_run("deploy-guided")
    builds = [n for n, line in enumerate(lines) if " build " in line and ".venv-sam/bin/sam" in line]
    deploys = [n for n, line in enumerate(lines) if line.endswith(".venv-sam/bin/sam deploy --guided ")
               or line.endswith(".venv-sam/bin/sam deploy --guided")]
    assert builds and deploys and builds[0] < deploys[0], lines
    assert any(line.rstrip().endswith(".venv-sam/bin/sam deploy") for line in _make_dry_run("deploy"))


def test_make_deploy_honours_aws_region_as_the_aws_cli_does() -> None:
    """SAM CLI ignores AWS_REGION; make passes it on as --region (and REGION= overrides it)."""
    assert _make_dry_run("deploy", AWS_REGION="eu-west-1")[-1].endswith("sam deploy --region eu-west-1")
    assert _make_dry_run("deploy-guided", AWS_REGION="eu-west-1")[-1].endswith(
        "sam deploy --guided --region eu-west-1")
    assert _make_dry_run("deploy", "REGION=ap-south-1", AWS_REGION="eu-west-1")[-1].endswith(
        "sam deploy --region ap-south-1")
    assert "--region" not in _make_dry_run("deploy", AWS_DEFAULT_REGION="eu-west-1")[-1], "sam reads that one itself"
