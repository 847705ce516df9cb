"""Policy files: every problem is reported with file, document, field path and a plain reason; never a traceback."""

from __future__ import annotations

import io
import string
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot_tools.policyfile import MAX_FILE_BYTES, PolicyError, load_policies, load_sourced, parse_policies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies.yaml"

WEB = """\
apiVersion: autopilot/v1
kind: ServicePolicy
metadata:
  cluster: prod
  service: web
spec:
  scaling:
    minTasks: 2
    maxTasks: 10
    rules:
      - alarm: web-cpu-high
        steps:
          - {lowerBound: 0, upperBound: 20, adjustment: 1}
          - {lowerBound: 20, adjustment: "30%", minAdjustmentMagnitude: 2}
"""
ETL = """\
apiVersion: autopilot/v1
kind: TaskPolicy
metadata: {cluster: batch, family: nightly-etl}
spec:
  restart: {maxRestarts: 5}
"""


def errors_of(text: str) -> list[str]:
    _, errors = parse_policies(textwrap.dedent(text), "p.yaml")
    return [str(e) for e in errors]


def only_error(text: str) -> str:
    found = errors_of(text)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------ valid files
def test_example_file_is_valid_and_complete() -> None:
    policies, errors = load_policies(EXAMPLES)
    assert errors == []
    targets = {(p.kind, p.key) for p in policies}
    assert targets == {("ServicePolicy", "SVC#prod#web"), ("ServicePolicy", "SVC#prod#api"),
                       ("ServicePolicy", "SVC#prod#worker"), ("TaskPolicy", "TASK#batch#nightly-etl")}
    web = next(p for p in policies if p.key == "SVC#prod#web")
    assert isinstance(web, ServicePolicy) and web.spec.healing and web.spec.rollout
    assert {"web-cpu-high", "web-cpu-low", "web-5xx-high", "web-memory-leak"} <= set(web.alarm_names())
    assert web.spec.healing.crashLoop and web.spec.healing.oom and web.spec.healing.spotFallback
    api = next(p for p in policies if p.key == "SVC#prod#api")
    assert isinstance(api, ServicePolicy) and api.spec.scaling
    kinds = {("steps" if r.steps else "target" if r.targetValue else "exact") for r in api.spec.scaling.rules}
    assert kinds == {"steps", "target", "exact"}


def test_several_documents_and_empty_ones() -> None:
    policies, errors = parse_policies(f"---\n{WEB}---\n---\n# only a comment\n---\n{ETL}", "p.yaml")
    assert errors == []
    assert [p.document for p in policies] == [1, 4]  # empty documents are skipped but still counted
    assert isinstance(policies[0].policy, ServicePolicy) and isinstance(policies[1].policy, TaskPolicy)


def test_empty_file_has_no_policies_and_no_errors() -> None:
    assert parse_policies("", "p.yaml") == ([], [])
    assert parse_policies("# nothing yet\n", "p.yaml") == ([], [])


@pytest.mark.parametrize("word", ["off", "dry-run", "enforce"])
def test_mode_words_are_strings_not_yaml_booleans(word: str) -> None:
    """YAML 1.1 reads ``off`` as false; a policy file must not."""
    policies, errors = parse_policies(ETL + f"  mode: {word}\n", "p.yaml")
    assert errors == [] and policies[0].policy.spec.mode == word


def test_anchors_aliases_and_merge_keys_work() -> None:
    text = textwrap.dedent("""\
        apiVersion: autopilot/v1
        kind: ServicePolicy
        metadata: {cluster: prod, service: web}
        spec:
          scaling:
            minTasks: 2
            maxTasks: 10
            rules:
              - alarm: a
                steps: &out
                  - {lowerBound: 0, adjustment: 1}
              - alarm: b
                steps: *out
          healing:
            oom: &oom {growPercent: 10, maxMemoryMiB: 2048}
            crashLoop:
              <<: *oom
              failures: 5
        """).replace("<<: *oom", "<<: {action: notify, failures: 3}")
    policies, errors = parse_policies(text, "p.yaml")
    assert errors == []
    web = policies[0].policy
    assert isinstance(web, ServicePolicy) and web.spec.scaling and web.spec.healing and web.spec.healing.crashLoop
    assert web.spec.scaling.rules[0].steps == web.spec.scaling.rules[1].steps
    assert (web.spec.healing.crashLoop.failures, web.spec.healing.crashLoop.action) == (5, "notify")


def test_anchors_do_not_cross_documents() -> None:
    """YAML anchors are per document: using one from an earlier document is an error, located."""
    first = ETL.replace("metadata: {", "metadata: &m {")
    assert errors_of(f"{first}---\nmetadata: *m\n") == ["p.yaml: document 2: line 7:11: found undefined alias 'm'"]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + ETL.encode())
    policies, errors = load_policies(path)
    assert errors == [] and len(policies) == 1


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ETL.encode())))
    policies, errors = load_policies("-")
    assert errors == [] and policies[0].key == "TASK#batch#nightly-etl"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"kind: [")))
    assert [str(e) for e in load_policies("-")[1]] == [
        "<stdin>: document 1: line 1:8: expected the node content, but found '<stream end>' "
        "(while parsing a flow node)"]


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(ETL)
    policies, errors = load_sourced([path, str(path)])
    assert errors == [] and len(policies) == 1


# ------------------------------------------------------------------------------------ field errors
def test_unknown_field_suggests_the_right_name() -> None:
    assert errors_of(WEB.replace("maxTasks: 10", "maxTask: 10")) == [
        "p.yaml: document 1: spec.scaling.maxTasks: required field is missing (line 7)",
        "p.yaml: document 1: spec.scaling.maxTask: unknown field (did you mean maxTasks?) (line 9)",
    ]


def test_unknown_field_lists_what_is_allowed() -> None:
    error = only_error(ETL.replace("maxRestarts: 5", "maxRestarts: 5, colour: red"))
    assert error == ("p.yaml: document 1: spec.restart.colour: unknown field (allowed here: maxRestarts, "
                     "initialBackoffSeconds, maxBackoffSeconds, resetAfterSeconds) (line 5)")


def test_the_missing_field_is_named() -> None:
    found = errors_of(WEB.replace("    maxTasks: 10\n", ""))
    assert found == ["p.yaml: document 1: spec.scaling.maxTasks: required field is missing (line 7)"]


def test_wrong_type() -> None:
    assert only_error(WEB.replace("minTasks: 2", "minTasks: two")) == (
        "p.yaml: document 1: spec.scaling.minTasks: must be a whole number (got 'two') (line 8)")


def test_number_where_a_name_belongs_suggests_quotes() -> None:
    assert only_error(WEB.replace("alarm: web-cpu-high", "alarm: 404")) == (
        'p.yaml: document 1: spec.scaling.rules[0].alarm: must be a string (got 404; put it in quotes: "404") '
        "(line 11)")


def test_union_failures_become_one_plain_reason() -> None:
    assert only_error(WEB.replace("adjustment: 1}", "adjustment: [1]}")) == (
        "p.yaml: document 1: spec.scaling.rules[0].steps[0].adjustment: must be a whole number of tasks (2, -1) "
        'or a percent string ("30%", "-10%") (line 13)')


def test_a_value_with_two_forms_is_checked_in_the_form_written() -> None:
    """targetTracking.metric is an alarm name or a metric mapping: a mapping is not told it must be a string."""
    rules = """\
    rules:
      - targetTracking: {metric: {namespace: AWS/SQS, name: Backlog, period: 7}, targetValue: 10}
      - targetTracking: {metric: 5, targetValue: 10}
      - targetTracking: {metric: {namespace: AWS/SQS}, targetValue: 10}
"""
    text = WEB[: WEB.index("    rules:")] + rules
    assert errors_of(text) == [
        "p.yaml: document 1: spec.scaling.rules[0].targetTracking.metric.period: period must be 1, 5, 10, 30 or a "
        "multiple of 60 seconds (line 11)",
        "p.yaml: document 1: spec.scaling.rules[1].targetTracking.metric: must be an alarm name or a metric mapping "
        "(namespace, name, dimensions, stat, period) (line 12)",
        "p.yaml: document 1: spec.scaling.rules[2].targetTracking.metric.name: required field is missing (line 13)",
    ]


def test_bad_percent_string() -> None:
    assert only_error(WEB.replace('"30%"', '"30 percent"')) == (
        'p.yaml: document 1: spec.scaling.rules[0].steps[1].adjustment: a percent adjustment must look like "30%" '
        'or "-10%" (line 14)')


def test_literal_says_what_is_allowed() -> None:
    assert only_error(ETL + "  mode: on\n") == (
        "p.yaml: document 1: spec.mode: must be one of 'enforce', 'dry-run', 'off' (got 'on') (line 6)")


def test_cross_field_check_is_located_at_its_section() -> None:
    assert only_error(WEB.replace("maxTasks: 10", "maxTasks: 1")) == (
        "p.yaml: document 1: spec.scaling: minTasks (2) must not exceed maxTasks (1) (line 7)")


def test_step_gap_is_located_at_its_rule() -> None:
    assert only_error(WEB.replace("lowerBound: 20, adjustment", "lowerBound: 25, adjustment")) == (
        "p.yaml: document 1: spec.scaling.rules[0]: steps leave a gap between 20.0 and 25.0 (line 11)")


def test_pattern_is_explained() -> None:
    assert only_error(ETL.replace("cluster: batch", "cluster: 'my batch'")) == (
        "p.yaml: document 1: metadata.cluster: may contain only letters, digits, hyphens and underscores "
        "(got 'my batch') (line 3)")


def test_bound_is_explained() -> None:
    assert only_error(ETL.replace("maxRestarts: 5", "maxRestarts: 500")) == (
        "p.yaml: document 1: spec.restart.maxRestarts: must be at most 100 (got 500) (line 5)")


def test_infinite_bound_is_refused() -> None:
    assert "must be a finite number" in only_error(WEB.replace("upperBound: 20", "upperBound: .inf"))


def test_repeated_alarm_points_at_the_repeat() -> None:
    text = WEB + "  rollout:\n    rollbackAlarms:\n      - web-cpu-high\n"
    assert only_error(text) == (
        "p.yaml: document 1: spec.rollout.rollbackAlarms[0]: alarm 'web-cpu-high' is already used at "
        "spec.scaling.rules[0].alarm: each alarm may appear once per policy (rules, rollbackAlarms and recycleAlarms "
        "together) (line 17)")


def test_cross_field_errors_do_not_hide_each_other() -> None:
    """The issue's case: minTasks > maxTasks used to hide a repeated alarm (and a field error hid both)."""
    text = (WEB.replace("maxTasks: 10", "maxTasks: 1").replace("scaleOut", "x")
            + "      - alarm: web-cpu-high\n        targetValue: 50\n"
            + "      - alarm: launch\n        exactCapacity: seven\n")
    assert errors_of(text) == [
        "p.yaml: document 1: spec.scaling: minTasks (2) must not exceed maxTasks (1) (line 7)",
        "p.yaml: document 1: spec.scaling.rules[1].alarm: alarm 'web-cpu-high' is already used at "
        "spec.scaling.rules[0].alarm: each alarm may appear once per policy (rules, rollbackAlarms and recycleAlarms "
        "together) (line 15)",
        "p.yaml: document 1: spec.scaling.rules[2].exactCapacity: must be a whole number (got 'seven') (line 18)",
    ]


@pytest.mark.parametrize(("field", "written", "reason"), [
    ("minTasks: 2", 'minTasks: "2"', "spec.scaling.minTasks: must be a whole number, not the string '2' "
                                     "(write it without quotes: 2) (line 8)"),
    ("maxTasks: 10", "maxTasks: '10'", "spec.scaling.maxTasks: must be a whole number, not the string '10' "
                                       "(write it without quotes: 10) (line 9)"),
    ("maxTasks: 10", "maxTasks: 10.0", "spec.scaling.maxTasks: must be a whole number (got 10.0) (line 9)"),
    ("upperBound: 20", 'upperBound: "20"', "spec.scaling.rules[0].steps[0].upperBound: must be a number, not the "
                                           "string '20' (write it without quotes: 20) (line 13)"),
])
def test_fields_are_strict_not_coerced(field: str, written: str, reason: str) -> None:
    assert only_error(WEB.replace(field, written)) == f"p.yaml: document 1: {reason}"


def test_quoted_boolean_is_an_error() -> None:
    text = WEB + "  rollout:\n    rollbackOnDeploymentFailure: 'false'\n"
    assert only_error(text) == ("p.yaml: document 1: spec.rollout.rollbackOnDeploymentFailure: must be true or "
                                "false, not the string 'false' (write it without quotes: false) (line 16)")


def test_empty_file_is_an_error_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n---\n")
    assert load_sourced([path]) == ([], [])
    _, errors = load_sourced([path], allow_empty=False)
    assert [str(e) for e in errors] == [f"{path}: contains no policies (pass --allow-empty if that is intended)"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [\n")
    _, errors = load_sourced([broken], allow_empty=False)
    assert len(errors) == 1 and "contains no policies" not in str(errors[0]), "a broken file is not also 'empty'"


def test_every_error_of_a_document_is_reported_with_its_document() -> None:
    text = WEB.replace("minTasks: 2", "minTasks: -1").replace("service: web", "service: web\n  owner: me")
    found = errors_of(f"{ETL}---\n{text}")
    assert found == [
        "p.yaml: document 2: metadata.owner: unknown field (allowed here: cluster, service, account, region) (line 12)",
        "p.yaml: document 2: spec.scaling.minTasks: must be at least 0 (got -1) (line 15)",
    ]


# ------------------------------------------------------------------------------------ document errors
@pytest.mark.parametrize(("text", "what"), [
    ("- a\n- b\n", "a list"), ("42\n", "the number 42"), ("hello\n", "the string 'hello'"), ("true\n", "true/false"),
])
def test_document_that_is_not_a_mapping(text: str, what: str) -> None:
    assert only_error(text) == (f"p.yaml: document 1: (document): a policy must be a mapping with apiVersion, kind, "
                                f"metadata and spec, not {what} (line 1)")


def test_missing_and_unknown_kind() -> None:
    assert errors_of("apiVersion: autopilot/v1\nmetadata: {}\n") == [
        "p.yaml: document 1: kind: required field is missing (ServicePolicy or TaskPolicy) (line 1)"]
    assert errors_of("apiVersion: v1\nkind: Deployment\n") == [
        "p.yaml: document 1: apiVersion: must be 'autopilot/v1' (got 'v1') (line 1)",
        "p.yaml: document 1: kind: must be one of 'ServicePolicy', 'TaskPolicy' (got 'Deployment') (line 2)",
    ]


def test_wrong_api_version_with_a_known_kind() -> None:
    assert only_error(ETL.replace("autopilot/v1", "autopilot/v2")) == (
        "p.yaml: document 1: apiVersion: must be one of 'autopilot/v1' (got 'autopilot/v2') (line 1)")


def test_duplicate_key_in_a_mapping() -> None:
    assert only_error(WEB.replace("    maxTasks: 10\n", "    maxTasks: 10\n    minTasks: 3\n")) == (
        "p.yaml: document 1: spec.scaling.minTasks: appears more than once in the same mapping (first at line 8) "
        "(line 10)")


def test_duplicate_policy_in_one_file() -> None:
    policies, errors = parse_policies(f"{WEB}---\n{ETL}---\n{WEB}", "p.yaml")
    assert [str(e) for e in errors] == [
        "p.yaml: document 3: metadata: ServicePolicy prod/web is already defined in document 1 (line 24)"]
    assert len(policies) == 2


def test_duplicate_policy_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WEB)
    (tmp_path / "b.yaml").write_text(ETL + "---\n" + WEB)
    policies, errors = load_sourced([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'b.yaml'}: document 2: metadata: ServicePolicy prod/web is already defined in "
        f"{tmp_path / 'a.yaml'} document 1"]
    assert len(policies) == 2


def test_same_service_name_in_another_cluster_is_not_a_duplicate() -> None:
    policies, errors = parse_policies(f"{WEB}---\n{WEB.replace('cluster: prod', 'cluster: staging')}", "p.yaml")
    assert errors == [] and len(policies) == 2


# ------------------------------------------------------------------------------------ YAML errors
def test_syntax_error_has_document_line_and_column() -> None:
    text = f"{ETL}---\n{WEB}---\nkind: ServicePolicy\nmetadata: {{cluster: prod\n"
    policies, errors = parse_policies(text, "p.yaml")
    assert len(policies) == 2  # the documents before the broken one are still read
    assert [str(e) for e in errors] == [
        "p.yaml: document 3: line 24:1: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping "
        "at line 23:11)"]
    assert (errors[0].document, errors[0].line, errors[0].column, errors[0].field) == (3, 24, 1, None)


def test_bad_indentation() -> None:
    error = only_error("apiVersion: autopilot/v1\nkind: TaskPolicy\n  metadata: x\n")
    assert error == "p.yaml: document 1: line 3:11: mapping values are not allowed here"


def test_tab_indentation() -> None:
    assert only_error("apiVersion: autopilot/v1\nmetadata:\n\tcluster: x\n").startswith(
        "p.yaml: document 1: line 3:1: found character '\\t' that cannot start any token")


def test_unknown_tag_does_not_stop_the_next_documents() -> None:
    policies, errors = parse_policies(f"metadata: !Ref Cluster\n---\n{ETL}", "p.yaml")
    assert [str(e) for e in errors] == [
        "p.yaml: document 1: line 1:11: could not determine a constructor for the tag '!Ref'"]
    assert len(policies) == 1 and policies[0].document == 2


def test_control_character() -> None:
    assert errors_of(f"{ETL}---\nkind: \x07\n") == [
        "p.yaml: document 2: line 7:7: character 0x0007 is not allowed in YAML"]


# ------------------------------------------------------------------------------------ file errors
def test_file_problems(tmp_path: Path) -> None:
    binary = tmp_path / "junk.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    cases = {
        tmp_path / "missing.yaml": "no such file",
        tmp_path: "is a directory, not a policy file",
        binary: "is not UTF-8 text (byte 0x89 at offset 0)",
        big: "is larger than 10 MiB",
    }
    for path, reason in cases.items():
        policies, errors = load_policies(path)
        assert policies == [] and [str(e) for e in errors] == [f"{path}: {reason}"]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    found = errors_of("[" * 1500 + "]" * 1500)
    assert found == ["p.yaml: document 1: the YAML is nested too deeply"]


def test_too_many_documents() -> None:
    started = time.perf_counter()
    found = errors_of("---\n" * 100_000)
    assert found == ["p.yaml: document 5001: more than 5000 documents in one file"]
    assert time.perf_counter() - started < 10


def test_alias_bomb_is_fast() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(lines) + "\napiVersion: autopilot/v1\nkind: ServicePolicy\nmetadata: *a8\nspec: *a8\n"
    started = time.perf_counter()
    found = errors_of(text)
    assert time.perf_counter() - started < 5
    assert "p.yaml: document 1: metadata: must be a mapping of fields (key: value), not a list (line 12)" in found


def test_huge_values_are_shortened_in_messages() -> None:
    error = only_error(ETL.replace("cluster: batch", "cluster: " + "x" * 200_000))
    assert error.startswith("p.yaml: document 1: metadata.cluster: must be at most 255 characters long (got 200000)")
    assert len(error) < 300


def test_errors_are_capped_per_document() -> None:
    extra = "\n".join(f"  unknown{i}: 1" for i in range(40))
    found = errors_of(ETL + extra + "\n")
    assert len(found) == 26 and found[-1] == "p.yaml: document 1: (document): ... and 15 more errors in this document"


# ------------------------------------------------------------------------------------ never a traceback
def _assert_clean(policies: list[Any], errors: list[PolicyError]) -> None:
    for error in errors:
        text = str(error)
        assert "\n" not in text and text.startswith("p.yaml")
        assert error.document is None or error.document >= 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("junk") / "p.yaml"
    path.write_bytes(data)
    _, errors = load_policies(path)
    for error in errors:
        assert "\n" not in str(error)


YAMLISH = st.text(alphabet=string.printable + "\u00e9\u2603\x00\x85\ufeff", max_size=400)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_arbitrary_text_never_raises(text: str) -> None:
    _assert_clean(*parse_policies(text, "p.yaml"))


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=4),
    max_leaves=20,
)
PATHS = st.lists(st.sampled_from(["spec", "scaling", "rules", 0, 1, "steps", "adjustment", "metadata", "healing",
                                  "restart", "network", "subnets", "kind", "mode", "minTasks", "targetTracking",
                                  "metric"]), min_size=1, max_size=6)


def _plant(document: Any, path: list[Any], junk: Any) -> Any:
    """Replace the value at ``path`` (as far as it exists) with ``junk``."""
    node = document
    for part in path[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    if isinstance(node, dict):
        node[path[-1]] = junk
    elif isinstance(node, list) and node:
        node[0] = junk
    return document


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([WEB, ETL]), PATHS, JUNK)
def test_valid_policy_with_junk_planted_never_raises(base: str, path: list[Any], junk: Any) -> None:
    document = _plant(yaml.safe_load(base), path, junk)
    text = yaml.safe_dump(document, allow_unicode=True)
    policies, errors = parse_policies(text, "p.yaml")
    _assert_clean(policies, errors)
    assert bool(policies) != bool(errors) or (not policies and not errors and document is None)
