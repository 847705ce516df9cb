"""CloudFormation rules that cfn-lint and `sam validate --lint` do not catch, but a deploy would."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot_tools.localstack import load_template

pytestmark = pytest.mark.template


def uses_of(function: str, node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, arguments) where the intrinsic ``function`` is used in ``node``."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == function:
                found.append((path, value))
            found += uses_of(function, value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += uses_of(function, value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("function", ["Fn::Join", "Fn::Split"])
def test_delimiters_are_literal_strings(function: str) -> None:
    """'For the Fn::Join delimiter, you can't use any functions' (CloudFormation docs); likewise Fn::Split."""
    uses = uses_of(function, load_template())
    assert uses, f"the template uses {function} to build ARNs and patterns"
    assert [path for path, (delimiter, _rest) in uses if not isinstance(delimiter, str)] == []


def test_the_check_catches_a_function_delimiter() -> None:
    template = {"Resources": {"R": {"Properties": {"X": {"Fn::Join": [{"Fn::Sub": "/*,"}, ["a", "b"]]}}}}}
    flagged = [p for p, (d, _v) in uses_of("Fn::Join", template) if not isinstance(d, str)]
    assert flagged == [".Resources.R.Properties.X"]
