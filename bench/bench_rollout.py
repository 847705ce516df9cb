"""Rollout benchmarks (never fails; prints a report, and writes JSON under $AUTOPILOT_BUILD_DIR if set).

1. Latency from a SERVICE_DEPLOYMENT_FAILED event entering RolloutFunction's handler to the
   UpdateService call that rolls back, in-process against moto (mock_aws), over many services.
2. AWS calls per event by API (ECS, DynamoDB incl. Powertools idempotency, SNS): a rollback, the
   IN_PROGRESS / COMPLETED bookkeeping, and an event for an unmanaged service.
3. For the README: failed tasks the ECS deployment circuit breaker needs before it acts
   (ceil(0.5 x desired) clamped to [3, 200]) versus ecs-autopilot's defaults.

Run: ``python bench/bench_rollout.py [--services 40]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "tests" / "fixtures" / "aws-events"

os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsAutopilot", "POWERTOOLS_SERVICE_NAME": "ecs-autopilot",
})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

CRASH_LOOP_DEFAULT_FAILURES = 3  # policy healing.crashLoop.failures default (models/policy.py)


def breaker_threshold(desired: int) -> int:
    """Failed tasks before the ECS deployment circuit breaker trips (aws-facts section 3)."""
    return min(200, max(3, math.ceil(0.5 * desired)))


class _Context:
    function_name = "bench-rollout"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-rollout"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class CallLog:
    """Every AWS API call made in-process (any client, Powertools' included), with a timestamp."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    @contextmanager
    def recording(self) -> Iterator[None]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        log = self.calls

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            log.append((f"{client.meta.service_model.endpoint_prefix}:{operation}", time.perf_counter()))
            return original(client, operation, params)

        BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        try:
            yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]

    def by_api(self) -> dict[str, int]:
        return dict(sorted(Counter(name for name, _ in self.calls).items()))


def _event(kind: str, service_arn: str, deployment_id: str, at: datetime, event_id: str) -> dict[str, Any]:
    name = {"in-progress": "ecs-deployment-state-change-in-progress-initial.json",
            "completed": "ecs-deployment-state-change-completed.json",
            "failed": "ecs-deployment-state-change-failed-circuit-breaker.json"}[kind]
    event = json.loads((PUBLISHED / name).read_text())
    event.update(id=event_id, resources=[service_arn], region="us-east-1", account="123456789012")
    event["detail"].update(deploymentId=deployment_id, updatedAt=at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    return event


def _load_handler(deps: Any) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from autopilot import wiring

    wiring.dependencies = lambda: deps  # type: ignore[assignment]
    spec = importlib.util.spec_from_file_location("_bench_rollout_app", ROOT / "functions" / "rollout" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler  # type: ignore[no-any-return]


def run(services: int) -> dict[str, Any]:
    from moto import mock_aws

    from autopilot.aws.clients import client, reset_clients
    from autopilot.models.policy import ServicePolicy
    from autopilot.settings import Settings
    from autopilot.wiring import build
    from autopilot_tools.localstack import create_stack, load_template

    reset_clients()
    with mock_aws():
        template = load_template()
        stack = create_stack(client, parameters={"ManagedClusters": "prod"}, template=template)
        env = stack.function_environment(template, "RolloutFunction")
        os.environ.update({k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")})  # keep quiet logs
        deps = build(Settings.from_env(env))
        handler = _load_handler(deps)
        context = _Context()
        ecs = client("ecs")
        ecs.create_cluster(clusterName="prod")
        for revision in (1, 2):
            ecs.register_task_definition(family="web", containerDefinitions=[
                {"name": "web", "image": f"nginx:1.{revision}", "memory": 512}])

        latencies: list[float] = []
        totals: list[float] = []
        per_event: dict[str, dict[str, int]] = {}
        for i in range(services):
            name = f"web{i}"
            arn = f"arn:aws:ecs:us-east-1:123456789012:service/prod/{name}"
            deps.store.put_policy(ServicePolicy.model_validate({
                "apiVersion": "autopilot/v1", "kind": "ServicePolicy",
                "metadata": {"cluster": "prod", "service": name}, "spec": {"rollout": {}}}), deps.clock())
            ecs.create_service(cluster="prod", serviceName=name, taskDefinition="web:1", desiredCount=2)
            first = ecs.describe_services(cluster="prod", services=[name])["services"][0]["deployments"][0]
            now = datetime.now(UTC)
            steps = [("in-progress", _event("in-progress", arn, first["id"], now, f"a{i}")),
                     ("completed", _event("completed", arn, first["id"], now + timedelta(seconds=60), f"b{i}"))]
            for kind, event in steps:
                log = CallLog()
                with log.recording():
                    handler(event, context)
                per_event.setdefault(kind, log.by_api())
            # a real new moto deployment of web:2 (moto's UpdateService would not create one)
            ecs.update_service(cluster="prod", service=name, desiredCount=0)
            ecs.delete_service(cluster="prod", service=name, force=True)
            ecs.create_service(cluster="prod", serviceName=name, taskDefinition="web:2", desiredCount=2)
            second = ecs.describe_services(cluster="prod", services=[name])["services"][0]["deployments"][0]
            handler(_event("in-progress", arn, second["id"], now + timedelta(seconds=120), f"c{i}"), context)
            failed = _event("failed", arn, second["id"], now + timedelta(seconds=300), f"d{i}")
            log = CallLog()
            with log.recording():
                started = time.perf_counter()
                result = handler(failed, context)
                ended = time.perf_counter()
            assert result["outcomes"][0]["outcome"] == "rollback", result
            update_at = next(t for api, t in log.calls if api == "ecs:UpdateService")
            latencies.append((update_at - started) * 1000)
            totals.append((ended - started) * 1000)
            per_event.setdefault("failed -> rollback", log.by_api())

        log = CallLog()
        with log.recording():
            handler(_event("failed", "arn:aws:ecs:us-east-1:123456789012:service/prod/unmanaged", "ecs-svc/1",
                           datetime.now(UTC), "unmanaged"), context)
        per_event["unmanaged service"] = log.by_api()
    reset_clients()

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"median_ms": round(statistics.median(ordered), 2),
                "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 2),
                "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2), "n": len(ordered)}

    return {
        "failed_to_update_service": summary(latencies),
        "failed_event_total": summary(totals),
        "calls_per_event": per_event,
        "circuit_breaker": [{"desired": d, "ecs_circuit_breaker": breaker_threshold(d),
                             "autopilot_crash_loop": CRASH_LOOP_DEFAULT_FAILURES} for d in (1, 10, 100, 400)],
    }


def report(results: dict[str, Any]) -> str:
    lines = ["# Rollout benchmark (in-process, moto)", ""]
    lat, tot = results["failed_to_update_service"], results["failed_event_total"]
    lines += [f"FAILED event -> UpdateService: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms "
              f"(n={lat['n']}; whole event median {tot['median_ms']} ms)", "",
              "AWS calls per event, by API:"]
    for kind, calls in results["calls_per_event"].items():
        total = sum(calls.values())
        detail = ", ".join(f"{api} {n}" for api, n in calls.items()) or "none"
        lines.append(f"  {kind:<20} {total:>2}  ({detail})")
    lines += ["", "Failed tasks before anything rolls back:", "",
              "| desired count | ECS circuit breaker | ecs-autopilot crash loop (default) |",
              "|---:|---:|---:|"]
    for row in results["circuit_breaker"]:
        lines.append(f"| {row['desired']} | {row['ecs_circuit_breaker']} | {row['autopilot_crash_loop']} |")
    lines += ["", "ECS circuit breaker: ceil(0.5 x desired) clamped to [3, 200], and it misses tasks that start and "
              "then exit. ecs-autopilot: crashLoop.failures (default 3) failed stops of the revision within "
              "windowSeconds (600), whatever the desired count; a rollback alarm needs no failed task at all; a "
              "FAILED deployment event rolls back to LKG as soon as it arrives."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=40, help="rollbacks to time (one service each)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # EMF and log lines
            warnings.simplefilter("ignore")
            results = run(args.services)
    except Exception as exc:  # a benchmark never fails the build
        print(f"bench_rollout: could not run: {type(exc).__name__}: {exc}")
        return 0
    print(report(results))
    out = os.environ.get("AUTOPILOT_BUILD_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "bench-rollout.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
