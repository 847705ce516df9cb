"""The policy model (contract section 2): every cross-field check, table-driven, and the defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from autopilot.models.policy import (
    Policy,
    Restart,
    Scaling,
    ScalingRule,
    ServicePolicy,
    Step,
    TaskPolicy,
    effective_mode,
    family_key,
    service_key,
)

POLICY = TypeAdapter(Policy)


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autopilot/v1", "kind": "ServicePolicy",
            "metadata": {"cluster": "prod", "service": "web"}, "spec": spec}


def task(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autopilot/v1", "kind": "TaskPolicy",
            "metadata": {"cluster": "batch", "family": "nightly-etl"}, "spec": spec}


def scaling(rules: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"minTasks": 2, "maxTasks": 10, **fields, "rules": rules or []}


def steps(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"alarm": "cpu", "steps": list(items)}]


# The contract's own example (section 2), both documents.
CONTRACT_SERVICE = service(
    mode="enforce",
    scaling={"minTasks": 2, "maxTasks": 40, "scaleOutCooldownSeconds": 60, "scaleInCooldownSeconds": 300, "rules": [
        {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                            {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2}]},
        {"alarm": "web-cpu-low", "steps": [{"upperBound": 0, "adjustment": -1}]},
        {"alarm": "jobs-backlog-high", "targetValue": 100},
        {"alarm": "launch-day", "exactCapacity": 20},
    ]},
    healing={"crashLoop": {"failures": 3, "windowSeconds": 600, "action": "rollback"},
             "oom": {"growPercent": 25, "maxMemoryMiB": 8192},
             "spotFallback": {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800,
                              "onDemandProvider": "FARGATE"}},
    rollout={"rollbackOnDeploymentFailure": True, "rollbackOnImagePullFailure": True,
             "rollbackAlarms": ["web-5xx-high"], "bakeSeconds": 1800, "recycleAlarms": ["web-memory-leak"]},
)
CONTRACT_TASK = task(
    mode="enforce",
    restart={"maxRestarts": 5, "initialBackoffSeconds": 10, "maxBackoffSeconds": 300, "resetAfterSeconds": 600},
    network={"subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"], "assignPublicIp": "DISABLED"},
)


def test_contract_examples_are_valid() -> None:
    web = POLICY.validate_python(CONTRACT_SERVICE)
    etl = POLICY.validate_python(CONTRACT_TASK)
    assert isinstance(web, ServicePolicy) and isinstance(etl, TaskPolicy)
    assert web.alarm_names() == ["web-cpu-high", "web-cpu-low", "jobs-backlog-high", "launch-day",
                                 "web-5xx-high", "web-memory-leak"]
    assert web.key == "SVC#prod#web" == service_key("prod", "web")
    assert etl.key == "TASK#batch#nightly-etl" == family_key("batch", "nightly-etl")


# ------------------------------------------------------------------------------------ valid variants
VALID = {
    "min equals max": service(scaling=scaling(minTasks=3, maxTasks=3)),
    "min zero": service(scaling=scaling(minTasks=0, maxTasks=0)),
    "steps listed out of order": service(scaling=scaling(steps(
        {"lowerBound": 20, "adjustment": 3}, {"lowerBound": 0, "upperBound": 20, "adjustment": 1}))),
    "steps spanning the threshold": service(scaling=scaling(steps(
        {"upperBound": 0, "adjustment": -1}, {"lowerBound": 0, "adjustment": 1}))),
    "the worked example's six steps": service(scaling=scaling(steps(
        {"lowerBound": 0, "upperBound": 10, "adjustment": 0}, {"lowerBound": 10, "upperBound": 20, "adjustment": "10%"},
        {"lowerBound": 20, "adjustment": "30%"}, {"lowerBound": -10, "upperBound": 0, "adjustment": 0},
        {"lowerBound": -20, "upperBound": -10, "adjustment": "-10%"}, {"upperBound": -20, "adjustment": "-30%"}))),
    "single closed step": service(scaling=scaling(steps({"lowerBound": 0, "upperBound": 5, "adjustment": 1}))),
    "fractional bounds": service(scaling=scaling(steps(
        {"lowerBound": 0, "upperBound": 0.5, "adjustment": 1}, {"lowerBound": 0.5, "adjustment": 2}))),
    "signed and decimal percent": service(scaling=scaling(steps(
        {"lowerBound": 0, "upperBound": 1, "adjustment": "+12.5%"}, {"lowerBound": 1, "adjustment": "-0%"}))),
    "percent with min magnitude": service(scaling=scaling(steps(
        {"lowerBound": 0, "adjustment": "30%", "minAdjustmentMagnitude": 1}))),
    "exactCapacity at min": service(scaling=scaling([{"alarm": "a", "exactCapacity": 2}])),
    "exactCapacity at max": service(scaling=scaling([{"alarm": "a", "exactCapacity": 10}])),
    "same alarm in two policies is fine (per policy only)": service(rollout={"rollbackAlarms": ["x"]}),
    "no spec sections": service(),
    "task with equal backoffs": task(restart={"initialBackoffSeconds": 60, "maxBackoffSeconds": 60}),
    "task zero restarts": task(restart={"maxRestarts": 0}),
    "mode dry-run": service(mode="dry-run"),
    "mode off": task(mode="off"),
}


@pytest.mark.parametrize("document", list(VALID.values()), ids=list(VALID))
def test_valid(document: dict[str, Any]) -> None:
    POLICY.validate_python(document)


# ------------------------------------------------------------------------------------ invalid variants
# (document, the error's loc without the union tag, a fragment of its message)
INVALID: dict[str, tuple[dict[str, Any], tuple[Any, ...], str]] = {
    "min above max": (service(scaling=scaling(minTasks=5, maxTasks=4)), ("spec", "scaling"),
                      "minTasks (5) must not exceed maxTasks (4)"),
    "negative min": (service(scaling=scaling(minTasks=-1)), ("spec", "scaling", "minTasks"), "greater than or equal"),
    "steps gap": (service(scaling=scaling(steps({"lowerBound": 0, "upperBound": 10, "adjustment": 1},
                                                {"lowerBound": 20, "adjustment": 2}))),
                  ("spec", "scaling", "rules", 0), "steps leave a gap between 10.0 and 20.0"),
    "steps overlap": (service(scaling=scaling(steps({"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                                    {"lowerBound": 10, "adjustment": 2}))),
                      ("spec", "scaling", "rules", 0), "steps overlap between 10.0 and 20.0"),
    "two open lower bounds": (service(scaling=scaling(steps({"upperBound": 0, "adjustment": -1},
                                                            {"upperBound": -10, "adjustment": -2}))),
                              ("spec", "scaling", "rules", 0), "at most one step may have no lowerBound"),
    "two open upper bounds": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": 1},
                                                            {"lowerBound": 10, "adjustment": 2}))),
                              ("spec", "scaling", "rules", 0), "at most one step may have no upperBound"),
    "open upper bound not last": (service(scaling=scaling(steps(
        {"lowerBound": 0, "adjustment": 1}, {"lowerBound": 10, "upperBound": 20, "adjustment": 2},
        {"upperBound": 0, "adjustment": -1}))), ("spec", "scaling", "rules", 0), "steps overlap"),
    "single unbounded step": (service(scaling=scaling(steps({"adjustment": 1}))),
                              ("spec", "scaling", "rules", 0), "a single step needs a lowerBound or an upperBound"),
    "lower not below upper": (service(scaling=scaling(steps({"lowerBound": 5, "upperBound": 5, "adjustment": 1}))),
                              ("spec", "scaling", "rules", 0, "steps", 0), "lowerBound must be below upperBound"),
    "empty steps": (service(scaling=scaling(steps())), ("spec", "scaling", "rules", 0, "steps"), "at least 1 item"),
    "percent without sign of percent": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": "30"}))),
                                        ("spec", "scaling", "rules", 0, "steps", 0, "adjustment"),
                                        'a percent adjustment must look like "30%"'),
    "percent with space": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": "30 %"}))),
                           ("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "percent adjustment"),
    "percent words": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": "ten%"}))),
                      ("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "percent adjustment"),
    "fractional integer adjustment": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": 1.5}))),
                                      ("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "valid integer"),
    "min magnitude with integer adjustment": (
        service(scaling=scaling(steps({"lowerBound": 0, "adjustment": 2, "minAdjustmentMagnitude": 1}))),
        ("spec", "scaling", "rules", 0, "steps", 0, "minAdjustmentMagnitude"),
        "minAdjustmentMagnitude only applies to percent adjustments"),
    "min magnitude zero": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": "5%",
                                                          "minAdjustmentMagnitude": 0}))),
                           ("spec", "scaling", "rules", 0, "steps", 0, "minAdjustmentMagnitude"),
                           "greater than or equal"),
    "NaN bound": (service(scaling=scaling(steps({"lowerBound": float("nan"), "adjustment": 1}))),
                  ("spec", "scaling", "rules", 0, "steps", 0, "lowerBound"), "finite number"),
    "infinite target": (service(scaling=scaling([{"alarm": "a", "targetValue": float("inf")}])),
                        ("spec", "scaling", "rules", 0, "targetValue"), "finite number"),
    "zero target": (service(scaling=scaling([{"alarm": "a", "targetValue": 0}])),
                    ("spec", "scaling", "rules", 0, "targetValue"), "greater than 0"),
    "repeated alarm in rules": (service(scaling=scaling([{"alarm": "a", "targetValue": 1},
                                                         {"alarm": "a", "exactCapacity": 3}])),
                                ("spec", "scaling", "rules", 1, "alarm"),
                                "alarm 'a' is already used at spec.scaling.rules[0].alarm"),
    "alarm in rules and rollback": (service(scaling=scaling([{"alarm": "a", "targetValue": 1}]),
                                            rollout={"rollbackAlarms": ["a"]}),
                                    ("spec", "rollout", "rollbackAlarms", 0), "each alarm may appear once per policy"),
    "alarm in rollback and recycle": (service(rollout={"rollbackAlarms": ["b"], "recycleAlarms": ["b"]}),
                                      ("spec", "rollout", "recycleAlarms", 0),
                                      "already used at spec.rollout.rollbackAlarms[0]"),
    "exactCapacity below min": (service(scaling=scaling([{"alarm": "a", "exactCapacity": 1}])),
                                ("spec", "scaling", "rules", 0, "exactCapacity"),
                                "exactCapacity (1) is outside [minTasks, maxTasks] = [2, 10]"),
    "exactCapacity above max": (service(scaling=scaling([{"alarm": "a", "exactCapacity": 11}])),
                                ("spec", "scaling", "rules", 0, "exactCapacity"), "outside [minTasks, maxTasks]"),
    "metric tracked twice": (service(scaling=scaling([{"targetTracking": {"metric": "m", "targetValue": 5}},
                                                      {"targetTracking": {"metric": "m", "targetValue": 9}}])),
                             ("spec", "scaling", "rules", 1, "targetTracking", "metric"),
                             "already tracked by rules[0]"),
    "targetTracking with an alarm": (service(scaling=scaling([{"alarm": "a", "targetTracking": {
        "metric": "m", "targetValue": 5}}])), ("spec", "scaling", "rules", 0, "alarm"), "has no alarm"),
    "rule without alarm": (service(scaling=scaling([{"targetValue": 5}])), ("spec", "scaling", "rules", 0, "alarm"),
                           "required field is missing"),
    # strict: no silent coercion (YAML already types numbers and booleans; quotes make strings)
    "quoted integer": (service(scaling=scaling(minTasks="2")), ("spec", "scaling", "minTasks"), "valid integer"),
    "float for an integer": (service(scaling=scaling(maxTasks=10.0)), ("spec", "scaling", "maxTasks"),
                             "valid integer"),
    "quoted float": (service(scaling=scaling([{"alarm": "a", "targetValue": "100"}])),
                     ("spec", "scaling", "rules", 0, "targetValue"), "valid number"),
    "quoted boolean": (service(rollout={"rollbackOnDeploymentFailure": "true"}),
                       ("spec", "rollout", "rollbackOnDeploymentFailure"), "valid boolean"),
    "integer for a boolean": (service(rollout={"rollbackOnImagePullFailure": 1}),
                              ("spec", "rollout", "rollbackOnImagePullFailure"), "valid boolean"),
    "quoted integer adjustment": (service(scaling=scaling(steps({"lowerBound": 0, "adjustment": "2"}))),
                                  ("spec", "scaling", "rules", 0, "steps", 0, "adjustment"), "percent adjustment"),
    "boolean for an integer": (task(restart={"maxRestarts": True}), ("spec", "restart", "maxRestarts"),
                               "valid integer"),
    "two rule kinds": (service(scaling=scaling([{"alarm": "a", "targetValue": 5, "exactCapacity": 3}])),
                       ("spec", "scaling", "rules", 0), "exactly one of steps, targetValue, exactCapacity"),
    "no rule kind": (service(scaling=scaling([{"alarm": "a"}])), ("spec", "scaling", "rules", 0),
                     "exactly one of steps, targetValue, exactCapacity"),
    "empty alarm name": (service(scaling=scaling([{"alarm": "", "targetValue": 5}])),
                         ("spec", "scaling", "rules", 0, "alarm"), "at least 1 character"),
    "unknown field": (service(scaling=scaling(minTask=2)), ("spec", "scaling", "minTask"), "Extra inputs"),
    "unknown mode": (service(mode="on"), ("spec", "mode"), "'enforce', 'dry-run' or 'off'"),
    "bad cluster name": (service() | {"metadata": {"cluster": "prod/eu", "service": "web"}},
                         ("metadata", "cluster"), "should match pattern"),
    "missing metadata": ({"apiVersion": "autopilot/v1", "kind": "ServicePolicy", "spec": {}}, ("metadata",),
                         "Field required"),
    "wrong apiVersion": (service() | {"apiVersion": "autopilot/v2"}, ("apiVersion",), "'autopilot/v1'"),
    "crashLoop action": (service(healing={"crashLoop": {"action": "restart"}}), ("spec", "healing", "crashLoop",
                                                                                  "action"), "'rollback' or 'notify'"),
    "cooldown over a day": (service(scaling=scaling(scaleOutCooldownSeconds=86401)),
                            ("spec", "scaling", "scaleOutCooldownSeconds"), "less than or equal to 86400"),
    "task backoff inverted": (task(restart={"initialBackoffSeconds": 600, "maxBackoffSeconds": 60}),
                              ("spec", "restart"), "initialBackoffSeconds must not exceed maxBackoffSeconds"),
    "task negative restarts": (task(restart={"maxRestarts": -1}), ("spec", "restart", "maxRestarts"),
                               "greater than or equal to 0"),
    "task bad subnet": (task(network={"subnets": ["vpc-1"]}), ("spec", "network", "subnets", 0),
                        "should match pattern"),
    "task no subnets": (task(network={"subnets": []}), ("spec", "network", "subnets"), "at least 1 item"),
    "task service field": (task() | {"metadata": {"cluster": "b", "service": "x"}}, ("metadata", "service"),
                           "Extra inputs"),
}


@pytest.mark.parametrize(("document", "loc", "message"), list(INVALID.values()), ids=list(INVALID))
def test_invalid(document: dict[str, Any], loc: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        POLICY.validate_python(document)
    # loc[0] is the kind tag of the discriminated union; "int"/"str" tag the members of adjustment's union
    found = [(tuple(p for p in e["loc"][1:] if p not in ("int", "str")), e["msg"]) for e in raised.value.errors()]
    assert any(where == loc and message in msg for where, msg in found), found


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValidationError, match="ServicePolicy"):
        POLICY.validate_python(service() | {"kind": "Deployment"})


# ------------------------------------------------------------------------------------ defaults
def test_service_defaults() -> None:
    policy = ServicePolicy.model_validate(service(scaling={"minTasks": 1, "maxTasks": 2},
                                                  healing={"crashLoop": {}, "oom": {}, "spotFallback": {}},
                                                  rollout={}))
    spec = policy.spec
    assert spec.mode == "enforce"
    assert spec.scaling is not None
    cooldowns = (spec.scaling.scaleOutCooldownSeconds, spec.scaling.scaleInCooldownSeconds)
    assert cooldowns == (300, 300) and spec.scaling.rules == []
    assert spec.healing is not None and spec.healing.crashLoop and spec.healing.oom and spec.healing.spotFallback
    assert spec.healing.crashLoop.model_dump() == {"failures": 3, "windowSeconds": 600, "action": "rollback"}
    assert spec.healing.oom.model_dump() == {"growPercent": 25, "maxMemoryMiB": 8192}
    assert spec.healing.spotFallback.model_dump() == {"interruptions": 2, "windowSeconds": 300, "holdSeconds": 1800,
                                                      "onDemandProvider": "FARGATE"}
    assert spec.rollout is not None
    assert spec.rollout.model_dump() == {"rollbackOnDeploymentFailure": True, "rollbackOnImagePullFailure": True,
                                         "rollbackAlarms": [], "bakeSeconds": 1800, "recycleAlarms": []}


def test_sections_left_out_stay_off() -> None:
    """No healing section means no healing: defaults apply only inside a section that is present."""
    policy = ServicePolicy.model_validate(service())
    assert (policy.spec.scaling, policy.spec.healing, policy.spec.rollout) == (None, None, None)
    assert policy.alarm_names() == []


def test_task_defaults() -> None:
    policy = TaskPolicy.model_validate(task())
    assert policy.spec.mode == "enforce"
    assert policy.spec.restart == Restart(maxRestarts=3, initialBackoffSeconds=10, maxBackoffSeconds=300,
                                           resetAfterSeconds=600)
    assert policy.spec.network is None
    network = TaskPolicy.model_validate(task(network={"subnets": ["subnet-1"]})).spec.network
    assert network is not None and (network.securityGroups, network.assignPublicIp) == ([], "DISABLED")


# ------------------------------------------------------------------------------------ helpers of the model
@pytest.mark.parametrize(("adjustment", "percent"), [("30%", 30), ("-10%", -10), ("+12.5%", 12.5), (" 5% ", 5)])
def test_percent_parsing(adjustment: str, percent: float) -> None:
    step = Step(lowerBound=0, adjustment=adjustment)
    assert step.is_percent and float(step.percent) == percent
    assert step.adjustment == adjustment.strip()


def test_integer_adjustment_is_not_percent() -> None:
    assert not Step(lowerBound=0, adjustment=-2).is_percent


def test_policies_are_immutable() -> None:
    policy = ServicePolicy.model_validate(CONTRACT_SERVICE)
    with pytest.raises(ValidationError):
        policy.spec.mode = "off"  # type: ignore[misc]


def test_round_trip_through_json_is_identical() -> None:
    """The store keeps model_dump_json(exclude_none=True); reading it back must give the same policy."""
    for document in (CONTRACT_SERVICE, CONTRACT_TASK):
        policy = POLICY.validate_python(copy.deepcopy(document))
        again = POLICY.validate_json(policy.model_dump_json(exclude_none=True))
        assert again == policy


@pytest.mark.parametrize(("global_mode", "policy_mode", "expected"), [
    ("enforce", "enforce", "enforce"), ("enforce", "dry-run", "dry-run"), ("dry-run", "enforce", "dry-run"),
    ("off", "enforce", "off"), ("dry-run", "off", "off"), ("enforce", "off", "off"),
])
def test_effective_mode_is_the_stricter(global_mode: str, policy_mode: str, expected: str) -> None:
    assert effective_mode(global_mode, policy_mode) == expected


def test_rule_model_alone() -> None:
    assert ScalingRule(alarm="a", exactCapacity=0).exactCapacity == 0


# ------------------------------------------------------------------------------------ every error at once
def test_every_error_is_reported_at_once() -> None:
    """A field error does not hide the cross-field checks of its own model or of any model around it."""
    document = service(scaling=scaling([{"alarm": "a", "exactCapacity": 3}, {"alarm": "a", "targetValue": "x"}],
                                       minTasks=5, maxTasks=4, scaleInCooldownSeconds=-1),
                       rollout={"rollbackAlarms": ["a"], "recycleAlarms": ["b", "b"]})
    with pytest.raises(ValidationError) as raised:
        POLICY.validate_python(document)
    found = sorted((".".join(map(str, e["loc"][1:])), e["msg"].removeprefix("Value error, "))
                   for e in raised.value.errors())
    assert found == [
        ("spec.rollout.recycleAlarms.1", "alarm 'b' is already used at spec.rollout.recycleAlarms[0]: each alarm may "
                                         "appear once per policy (rules, rollbackAlarms and recycleAlarms together)"),
        ("spec.rollout.rollbackAlarms.0", "alarm 'a' is already used at spec.scaling.rules[0].alarm: each alarm may "
                                          "appear once per policy (rules, rollbackAlarms and recycleAlarms together)"),
        ("spec.scaling", "minTasks (5) must not exceed maxTasks (4)"),
        ("spec.scaling.rules.1.alarm", "alarm 'a' is already used at spec.scaling.rules[0].alarm: each alarm may "
                                       "appear once per policy (rules, rollbackAlarms and recycleAlarms together)"),
        ("spec.scaling.rules.1.targetValue", "Input should be a valid number"),
        ("spec.scaling.scaleInCooldownSeconds", "Input should be greater than or equal to 0"),
    ]


def test_checks_of_nested_models_run_beside_field_errors() -> None:
    document = task(restart={"initialBackoffSeconds": 600, "maxBackoffSeconds": 60, "maxRestarts": "3"})
    with pytest.raises(ValidationError) as raised:
        POLICY.validate_python(document)
    assert sorted(".".join(map(str, e["loc"][1:])) for e in raised.value.errors()) == [
        "spec.restart", "spec.restart.maxRestarts"]


def test_strict_types_keep_yaml_numbers_and_booleans_working() -> None:
    policy = ServicePolicy.model_validate(service(
        scaling=scaling([{"alarm": "a", "targetValue": 100}, {"alarm": "b", "steps": [
            {"lowerBound": 0, "upperBound": 1.5, "adjustment": 1}, {"lowerBound": 1.5, "adjustment": "30%"}]}]),
        rollout={"rollbackOnDeploymentFailure": False}))
    assert policy.spec.scaling is not None and policy.spec.scaling.rules[0].targetValue == 100.0
    assert policy.spec.rollout is not None and policy.spec.rollout.rollbackOnDeploymentFailure is False
    # what the store wrote comes back from JSON under the same strict rules
    assert POLICY.validate_json(policy.model_dump_json(exclude_none=True)) == policy


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="minTasks \\(3\\) must not exceed maxTasks \\(1\\)"):
        ScalingRule.model_validate({"alarm": "a", "exactCapacity": 1}) and Scaling(minTasks=3, maxTasks=1)
    with pytest.raises(ValidationError, match="steps leave a gap"):
        ScalingRule(alarm="a", steps=[Step(lowerBound=0, upperBound=1, adjustment=1),
                                      Step(lowerBound=2, adjustment=1)])


def test_custom_error_types_survive_beside_cross_field_problems() -> None:
    """A validator raising its own error type (pydantic-core cannot rebuild it by name) keeps its words."""
    from pydantic import field_validator
    from pydantic_core import PydanticCustomError

    from autopilot.models.policy import StrictModel

    class Probe(StrictModel):
        a: int
        b: int

        @field_validator("a")
        @classmethod
        def _custom(cls, value: int) -> int:
            raise PydanticCustomError("probe_type", "a is never right ({value})", {"value": value})

        @classmethod
        def _problems(cls, data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
            return [(("b",), "b disagrees with a")]

    with pytest.raises(ValidationError) as raised:
        Probe.model_validate({"a": 1, "b": 2})
    assert [(e["loc"], e["type"], e["msg"]) for e in raised.value.errors()] == [
        (("a",), "probe_type", "a is never right (1)"), (("b",), "value_error", "Value error, b disagrees with a")]
