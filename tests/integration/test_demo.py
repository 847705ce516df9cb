"""`autopilot demo` end to end, once: every scenario that is built must meet all its expectations.

One run of the whole demo (it starts its own moto server on 127.0.0.1) serves every assertion here.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from autopilot_tools.demo.cli import run
from autopilot_tools.demo.scenarios import SCENARIOS


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report = tmp_path_factory.mktemp("demo") / "demo-report.html"
    before = dict(os.environ)
    capture = _Capture()
    with capture:
        code = run(["--json", "--report", str(report)])
    assert dict(os.environ) == before, "the demo must restore the environment it changed"
    return {"code": code, "result": json.loads(capture.text), "report": report}


class _Capture:
    """Capture sys.stdout without pytest's capsys (module-scoped fixtures cannot use it)."""

    def __enter__(self) -> _Capture:
        import io
        import sys

        self._saved, self._buffer = sys.stdout, io.StringIO()
        sys.stdout = self._buffer
        return self

    def __exit__(self, *_: object) -> None:
        import sys

        sys.stdout = self._saved
        self.text = self._buffer.getvalue()


def test_demo_exits_zero_and_every_expectation_passed(demo: dict[str, Any]) -> None:
    result = demo["result"]
    failed = {s["name"]: [e for e in s["expectations"] if not e["passed"]] or s["error"]
              for s in result["scenarios"] if s["status"] == "failed"}
    assert demo["code"] == 0, failed
    assert result["passed"] is True
    for scenario in result["scenarios"]:
        if scenario["status"] == "skipped":
            assert scenario["skip_reason"].startswith("capability not built yet")
            continue
        assert scenario["status"] == "passed"
        assert scenario["expectations"], f"{scenario['name']} states no expectation"
        assert all(e["passed"] for e in scenario["expectations"])


def test_every_scenario_ran(demo: dict[str, Any]) -> None:
    names = [s["name"] for s in demo["result"]["scenarios"]]
    assert names == [s.name for s in SCENARIOS]
    assert demo["result"]["counts"]["failed"] == 0


def test_timeline_comes_from_what_the_system_recorded(demo: dict[str, Any]) -> None:
    scale = next(s for s in demo["result"]["scenarios"] if s["name"] == "scale")
    decisions = [r for r in scale["timeline"] if r["kind"] == "decision" and r["outcome"] == "scale-out"]
    assert decisions and all("ecs:UpdateService" in r["calls"] for r in decisions)
    assert {r["actor"] for r in decisions} == {"scaler", "reconciler"}  # the reconciler stepped again
    assert any("Scaled out prod/web" in n for n in scale["notifications"])
    bad_input = next(s for s in demo["result"]["scenarios"] if s["name"] == "bad-input")
    assert any(r["kind"] == "undelivered" for r in bad_input["timeline"])


def test_the_setups_policy_apply_is_not_shown_as_a_decision(demo: dict[str, Any]) -> None:
    """apply is audited (who, what changed), but the timeline shows what the functions decided (a stack's policy
    resource is a function's decision: policy-in-stack shows those)."""
    for scenario in demo["result"]["scenarios"]:
        decisions = [r for r in scenario["timeline"] if r["kind"] == "decision"]
        assert decisions and not [r for r in decisions if str(r.get("outcome", "")).startswith("policy:")
                                  and r["actor"] != "stack"]
    stack = next(s for s in demo["result"]["scenarios"] if s["name"] == "policy-in-stack")
    assert {r["outcome"] for r in stack["timeline"] if r["actor"] == "stack"} == {
        "policy:created", "policy:updated", "policy:deleted"}


def test_the_organisation_scenarios_act_where_the_services_live(demo: dict[str, Any]) -> None:
    accounts = next(s for s in demo["result"]["scenarios"] if s["name"] == "accounts")
    acted = {(r["target"], r["outcome"]) for r in accounts["timeline"] if r["kind"] == "decision"}
    assert ("prod/shop @ 111111111111/us-east-1", "scale-out") in acted
    assert ("prod/payments @ 222222222222/eu-west-1", "rollback") in acted
    assert ("", "ignored:foreign-account") in acted
    assert not [t for t, o in acted if o in ("scale-out", "rollback") and "@" not in t], "the hub's own: untouched"


def test_report_is_self_contained_html_with_charts(demo: dict[str, Any]) -> None:
    text = Path(demo["report"]).read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert "<script" not in text and "<link" not in text
    assert not [u for u in re.findall(r"(?:src|href)=['\"](https?:[^'\"]+)", text)]
    charts = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert charts
    for chart in charts:
        ET.fromstring(chart)  # well-formed SVG


def test_list_and_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(s.name in listed for s in SCENARIOS)
    assert run(["--scenario", "no-such-thing"]) == 2


def test_a_scenario_whose_capability_is_missing_is_skipped_not_failed() -> None:
    import io

    from autopilot_tools.demo.cli import run_scenario
    from autopilot_tools.demo.render import TerminalPrinter
    from autopilot_tools.demo.scenarios import Scenario
    from autopilot_tools.localstack import load_template

    def story(_sim: Any) -> None:
        raise AssertionError("a skipped scenario must not run")

    scenario = Scenario("future", "not built yet", "-", story, requires=("NoSuchFunction",))
    result = run_scenario(None, scenario, load_template(), Path("unused.yaml"),  # type: ignore[arg-type]
                          TerminalPrinter(io.StringIO(), color=False), 1, 1)
    assert result.status == "skipped"
    assert result.skip_reason == "capability not built yet: NoSuchFunction is not in template.yaml yet"
