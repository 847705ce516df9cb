"""Pure decision latency per event type (median and p99, microseconds) and peak memory per invocation.

The decisions are timed exactly as the Lambdas run them, parse included, but without any I/O: that is
the part of an invocation the project's own code controls. Memory is Python's tracemalloc peak over one
handler invocation against in-process moto: an upper bound, since the emulator allocates in the same
process.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVENTS = ROOT / "events"
ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "2000"))
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _cases() -> dict[str, Callable[[], object]]:
    from autopilot.decide.classify import classify
    from autopilot.decide.healing import Facts, decide_service_stop
    from autopilot.decide.rollout import decide_rollback
    from autopilot.decide.scaling import cooldown_precheck, decide_bounds, decide_scaling
    from autopilot.models.events import parse_alarm_event
    from autopilot.models.policy import ServicePolicy
    from autopilot.models.rollout_state import RolloutState
    from autopilot.models.state import ScalingState, ServiceState
    from autopilot.models.task_events import parse_task_event

    policy = ServicePolicy.model_validate({
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "rules": [
            {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "upperBound": 20, "adjustment": 1},
                                                {"lowerBound": 20, "adjustment": "30%", "minAdjustmentMagnitude": 2}]},
        ]}, "healing": {"crashLoop": {"failures": 3, "windowSeconds": 600}}, "rollout": {}},
    })
    assert policy.spec.scaling is not None
    scaling, rule = policy.spec.scaling, policy.spec.scaling.rules[0]
    alarm = _event("scaler-alarm-high.json") if (EVENTS / "scaler-alarm-high.json").exists() else next(
        json.loads(p.read_text()) for p in sorted(EVENTS.glob("scaler-*.json")) if "direct" not in p.name)
    crash = _event("healer-crash.json")
    cooled = ScalingState(scale_out_until=NOW + timedelta(seconds=60), scale_out_base=4, scale_out_target=6)
    lkg = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:6"
    bad = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"
    rollout = RolloutState(lkg=lkg)

    def alarm_step() -> object:
        change = parse_alarm_event(alarm)
        return decide_scaling(rule=rule, scaling=scaling, state=ScalingState(), capacity=4, datapoint=change.datapoint,
                              threshold=change.threshold, cluster="prod", service="web", now=NOW, trigger="t")

    def alarm_cooldown() -> object:
        change = parse_alarm_event(alarm)
        return cooldown_precheck(rule=rule, scaling=scaling, state=cooled, datapoint=change.datapoint,
                                 threshold=change.threshold, now=NOW, trigger="t")

    def task_stopped() -> object:
        task = parse_task_event(crash)
        return decide_service_stop(task=task, cls=classify(task), policy=policy, state=ServiceState(), facts=Facts(),
                                   now=NOW)

    def deployment_failed_rollback() -> object:
        return decide_rollback(cluster="prod", service="web", running_task_definition=bad, failing_revision=bad,
                               rollout=rollout, reason="deployment failed", now=NOW)

    def reconcile_bounds() -> object:
        return decide_bounds(scaling=scaling, state=ScalingState(), capacity=60, cluster="prod", service="web",
                             now=NOW, trigger="reconcile")

    return {
        "alarm -> step scaling (parse + decide)": alarm_step,
        "alarm in cooldown (parse + precheck)": alarm_cooldown,
        "task STOPPED crash (parse + classify + crash window)": task_stopped,
        "failed deployment -> rollback decision": deployment_failed_rollback,
        "reconcile: drifted desired count": reconcile_bounds,
    }


def _latency(case: Callable[[], object]) -> dict[str, float]:
    for _ in range(50):  # warm up: pydantic builds deferred validators on first use
        case()
    samples = []
    for _ in range(ITERATIONS):
        started = time.perf_counter_ns()
        case()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return {"median_us": round(statistics.median(samples), 1), "p99_us": round(samples[int(len(samples) * 0.99)], 1)}


def _memory() -> dict[str, dict[str, Any]]:
    """tracemalloc peak (KiB) of one warm handler invocation per function, against in-process moto."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_NAMESPACE": "EcsAutopilot"})
    import importlib.util
    from contextlib import redirect_stdout
    from io import StringIO

    from moto import mock_aws

    from autopilot import wiring
    from autopilot.aws.clients import client, reset_clients
    from autopilot.settings import Settings, settings
    from autopilot_tools.localstack import create_stack, load_template
    from autopilot_tools.policyfile import load_policies

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 256, "bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    cases = {"ScalerFunction": ("scaler", "scaler-alarm-high.json"), "HealerFunction": ("healer", "healer-crash.json"),
             "RolloutFunction": ("rollout", "rollout-failed-circuit-breaker.json")}
    peaks: dict[str, dict[str, Any]] = {}
    for function, (folder, sample) in cases.items():
        if not (EVENTS / sample).exists():
            continue
        reset_clients()
        with mock_aws():
            template = load_template()
            stack = create_stack(client, parameters={"ManagedClusters": "prod,batch"}, template=template)
            os.environ.update(stack.function_environment(template, function))
            settings.cache_clear()
            deps = wiring.build(Settings.from_env())
            policies, errors = load_policies(ROOT / "examples" / "policies.yaml")
            assert not errors, errors
            for policy in policies:
                deps.store.put_policy(policy, datetime.now(UTC))
            ecs = client("ecs")
            ecs.create_cluster(clusterName="prod")
            ecs.register_task_definition(family="web", containerDefinitions=[
                {"name": "web", "image": "nginx", "memory": 512}])
            ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=6)
            wiring.dependencies = lambda deps=deps: deps  # type: ignore[assignment]
            spec = importlib.util.spec_from_file_location(f"_bench_{folder}", ROOT / "functions" / folder / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            event = _event(sample)
            with redirect_stdout(StringIO()):
                # The first invocation: it acts (a retry of the same event would be deduplicated) and it
                # builds the deferred validators, so this is the larger of the two.
                tracemalloc.start()
                result = module.lambda_handler(event, Context())
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            reported = result.get("outcomes", []) if isinstance(result, dict) else []
            outcomes = [o.get("outcome") for o in reported]
            peaks[function] = {"peak_kib": round(peak / 1024, 1), "outcome": ", ".join(map(str, outcomes)) or "-"}
    return peaks


def run() -> dict[str, Any]:
    return {"iterations": ITERATIONS, "latency": {name: _latency(case) for name, case in _cases().items()},
            "peak_memory_kib": _memory()}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Pure decision latency ({result['iterations']} runs each, parse included, no I/O)", "",
             "| event type | median µs | p99 µs |", "|---|---:|---:|"]
    lines += [f"| {name} | {v['median_us']} | {v['p99_us']} |" for name, v in result["latency"].items()]
    lines += ["", "Peak Python memory of one invocation (tracemalloc, KiB; the in-process emulator included)", "",
              "| function | what it did | peak KiB |", "|---|---|---:|"]
    lines += [f"| {name} | {m['outcome']} | {m['peak_kib']} |" for name, m in result["peak_memory_kib"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
