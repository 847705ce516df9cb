"""SnapStart as a template parameter (issue 10): off by default; on, it applies to the published versions.

Either way every function publishes a version on each change (its code, its configuration or the layer)
and every event source invokes the ``live`` alias, so switching SnapStart on or off never re-routes an
event. Checked on the SAM translator's output (what CloudFormation deploys), with the intrinsics resolved
for both settings, and with cfn-lint and ``sam validate --lint`` on a template that defaults to enabled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from autopilot_tools.localstack import load_template
from tests.template.iam_policies import ResolvingStack, expand
from tests.template.test_template import FUNCTIONS, ROOT, run, sam

pytestmark = pytest.mark.template

ALIAS = "live"
SETTINGS = {"enabled": "PublishedVersions", "disabled": "None"}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    found: dict[str, Any] = expand()["resources"]
    return found


def stack(setting: str, resources: dict[str, Any]) -> ResolvingStack:
    template = load_template()
    return ResolvingStack.for_template(resources, {"ManagedClusters": "prod,batch", "SnapStart": setting},
                                       template["Parameters"], template["Conditions"])


def alias_of(function: str) -> str:
    return f"{function}Alias{ALIAS}"


def test_the_parameter_defaults_to_disabled() -> None:
    parameter = load_template()["Parameters"]["SnapStart"]
    assert parameter["Default"] == "disabled"
    assert sorted(parameter["AllowedValues"]) == ["disabled", "enabled"]


@pytest.mark.parametrize("setting", SETTINGS)
def test_snapstart_applies_to_published_versions_only_when_enabled(setting: str, resources: dict[str, Any]) -> None:
    resolved = stack(setting, resources)
    for function in FUNCTIONS:
        props = resources[function]["Properties"]
        assert resolved.resolve_all(props["SnapStart"]) == {"ApplyOn": SETTINGS[setting]}, function


def test_every_function_serves_a_live_alias_on_a_published_version(resources: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        alias = resources[alias_of(function)]
        assert alias["Type"] == "AWS::Lambda::Alias"
        assert alias["Properties"]["Name"] == ALIAS
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Type"] == "AWS::Lambda::Version"
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": function}


def _mentions(value: Any) -> list[Any]:
    """Every Ref / Fn::GetAtt ... Arn inside ``value``."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} or set(value) == {"Fn::GetAtt"}:
            return [value]
        return [m for v in value.values() for m in _mentions(v)]
    if isinstance(value, list):
        return [m for v in value for m in _mentions(v)]
    return []


def test_every_event_source_invokes_the_alias(resources: dict[str, Any]) -> None:
    """Rules, the schedule (and its role), the queue mapping, every invoke permission, async invoke config."""
    unqualified = [{"Ref": f} for f in FUNCTIONS] + [{"Fn::GetAtt": [f, "Arn"]} for f in FUNCTIONS]
    aliases = [{"Ref": alias_of(f)} for f in FUNCTIONS]
    routes: dict[str, Any] = {}
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Events::Rule":
            routes[logical] = [t["Arn"] for t in props.get("Targets", []) if "lambda" in t.get("Id", "").lower()
                               or t["Arn"] in unqualified + aliases]
        elif kind == "AWS::Scheduler::Schedule":
            routes[logical] = [props["Target"]["Arn"]]
        elif kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission"):
            routes[logical] = [props["FunctionName"]]
        elif kind == "AWS::IAM::Role" and logical.endswith("Role") and logical not in {f"{f}Role" for f in FUNCTIONS}:
            statements = [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]
                          if "lambda:InvokeFunction" in str(s.get("Action"))]
            if statements:
                routes[logical] = [s["Resource"] for s in statements]
        elif kind == "AWS::Lambda::EventInvokeConfig":
            assert props["Qualifier"] == ALIAS, logical
    assert {k for k, v in routes.items() if v}, "no event source found"
    for logical, targets in routes.items():
        for target in targets:
            assert target not in unqualified, f"{logical} invokes the function itself, not its alias: {target}"
        if targets and resources[logical]["Type"] != "AWS::IAM::Role":
            assert all(t in aliases for t in targets), (logical, targets)
    kinds = {resources[k]["Type"] for k, v in routes.items() if v}
    assert {"AWS::Events::Rule", "AWS::Scheduler::Schedule", "AWS::Lambda::EventSourceMapping",
            "AWS::Lambda::Permission"} <= kinds, kinds
    alarm_action = resources["ScalerAlarmActionPermission"]["Properties"]
    assert alarm_action["FunctionName"] == {"Ref": alias_of("ScalerFunction")}
    assert load_template()["Outputs"]["ScalerFunctionArn"]["Value"] == {"Ref": "ScalerFunction.Alias"}


def _versions(resources: dict[str, Any]) -> set[str]:
    return {k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Version"}


def test_a_change_of_the_layer_alone_publishes_new_versions(resources: dict[str, Any], tmp_path: Path) -> None:
    """Without it the alias would keep the old library: the layer is where the code lives."""
    text = (ROOT / "template.yaml").read_text()
    changed = tmp_path / "template.yaml"
    changed.write_text(text.replace("ContentUri: layers/", "ContentUri: layers-v2/", 1))
    after = expand(changed)["resources"]
    assert len(_versions(after)) == len(FUNCTIONS)
    assert not _versions(after) & _versions(resources), "every function must publish a new version"


def test_lint_clean_with_snapstart_enabled(tmp_path: Path) -> None:
    text = (ROOT / "template.yaml").read_text()
    enabled, count = re.subn(r"(  SnapStart:\n    Type: String\n    Default: )disabled", r"\1enabled", text)
    assert count == 1
    path = tmp_path / "template.yaml"
    path.write_text(enabled)
    from cfnlint.api import lint_file

    matches = lint_file(path)
    assert not matches, "\n".join(str(m) for m in matches)
    done = run([sam(), "validate", "--lint", "--template", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("change", [{"Mode": "off"}, {"SnapStart": "enabled"}, {"ManagedClusters": "prod,batch,new"}])
def test_a_parameter_change_replaces_the_published_versions(change: dict[str, str], resources: dict[str, Any]) -> None:
    """SAM names versions by a hash of the template, not of parameter values (aws-sam-translator issue 3820):
    the kill switch (Mode), the cluster list and SnapStart reach the live alias because each version's
    description names them, and CloudFormation replaces a version whose description changes."""
    template = load_template()
    before = {"ManagedClusters": "prod,batch", "Mode": "enforce", "SnapStart": "disabled"}
    for function in FUNCTIONS:
        version = resources[alias_of(function)]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        description = resources[version]["Properties"]["Description"]
        old, new = (ResolvingStack.for_template(resources, values, template["Parameters"], template["Conditions"])
                    .resolve_all(description) for values in (before, before | change))
        assert isinstance(old, str) and old != new, (function, old, new)
        assert len(new) <= 256, "a version description is at most 256 characters"
    env = resources["ScalerFunction"]["Properties"]["Environment"]["Variables"]
    assert {"AUTOPILOT_MODE": {"Ref": "Mode"}}.items() <= env.items(), "the description must name what env uses"


def test_replaced_versions_are_deleted(resources: dict[str, Any]) -> None:
    """Old versions would pile up (and, with SnapStart, each keeps a cached snapshot)."""
    assert {v.get("DeletionPolicy") for v in resources.values() if v["Type"] == "AWS::Lambda::Version"} == {"Delete"}
