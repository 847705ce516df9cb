"""AWS calls per decision of ScalerFunction, by API: a scale-out, a cooldown skip and an ignored alarm.

The real handler runs in-process against moto (the template's table, queues and topic, built by
autopilot_tools.localstack), and tests/aws_calls.py records every botocore call it makes. Calls are split
by what they are for:
- decision: the reads and mutations the decision itself needs (policies, state, ECS, the state claim
  with its conditional write);
- notification: the SNS message announcing a change;
- bookkeeping: Powertools idempotency records and audit entries written on their own.
Never fails on a number; targets from issue 2 are printed beside the counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"scale-out": 5, "cooldown skip": 2, "ignored alarm": 1}  # decision calls (issue 2)
MUTATING_PREFIXES = ("Update", "Put", "Publish", "Send", "Run", "Register", "Tag", "Create", "Delete", "Set",
                     "TransactWrite", "BatchWrite")


def _category(origin: str, operation: str) -> str:
    if origin in ("idempotency", "audit"):
        return origin
    if operation == "Publish":
        return "notify"
    kind = "write" if operation.startswith(MUTATING_PREFIXES) else "read"
    return f"{'state' if origin == 'state' else 'aws'} {kind}"


def _scenarios() -> dict[str, list[dict[str, Any]]]:
    from moto import mock_aws
    from tests.aws_calls import RECORDER, _install
    from tests.conftest import load_handler, sample, variant  # first: sets a quiet, credential-free env

    from autopilot import wiring
    from autopilot.aws.clients import client, reset_clients
    from autopilot.models.policy import ServicePolicy
    from autopilot.settings import settings
    from autopilot_tools.localstack import create_stack, load_template

    _install()
    policy = {
        "apiVersion": "autopilot/v1", "kind": "ServicePolicy", "metadata": {"cluster": "prod", "service": "web"},
        "spec": {"scaling": {"minTasks": 2, "maxTasks": 40, "scaleOutCooldownSeconds": 300, "rules": [
            {"alarm": "web-cpu-high", "steps": [{"lowerBound": 0, "adjustment": 2}]}]}},
    }

    class Context:
        function_name = "bench"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    results: dict[str, list[dict[str, Any]]] = {}
    reset_clients()
    with mock_aws():
        template = load_template()
        stack = create_stack(client, parameters={"ManagedClusters": "prod"}, template=template)
        os.environ.update(stack.function_environment(template, "ScalerFunction"), POWERTOOLS_LOG_LEVEL="WARNING")
        settings.cache_clear()
        wiring.dependencies.cache_clear()
        ecs = client("ecs")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx",
                                                                          "memory": 512}])
        ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=4)
        deps = wiring.dependencies()
        deps.store.put_policy(ServicePolicy.model_validate(policy), deps.clock())
        app = load_handler("scaler")
        high = sample("scaler-alarm-high.json")
        again = variant(high, **{"id": "bench-again", "detail.state.timestamp": "2026-11-26T12:00:30.000+0000"})
        steps = [("scale-out", high, "scale-out"), ("cooldown skip", again, "skipped:cooldown"),
                 ("ignored alarm", sample("scaler-unmanaged-alarm.json"), "ignored:unknown-alarm")]
        for name, event, expected in steps:
            with RECORDER.capture() as calls, contextlib.redirect_stdout(io.StringIO()):  # EMF lines
                result = app.lambda_handler(event, Context())
            outcome = result["outcomes"][0]["outcome"]
            if outcome != expected:
                raise RuntimeError(f"{name}: expected {expected}, got {outcome} ({result})")
            seen: dict[int, dict[str, Any]] = {}
            for call in calls:  # one row per API call (a transaction needs several IAM actions)
                seen.setdefault(call.seq, {"api": f"{call.service}:{call.operation}",
                                           "category": _category(call.origin, call.operation)})
            results[name] = list(seen.values())
    reset_clients()
    return results


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, calls in _scenarios().items():
        by_api = Counter((c["category"], c["api"]) for c in calls)
        decision = sum(n for (cat, _), n in by_api.items() if cat.startswith(("state", "aws")))
        notify = sum(n for (cat, _), n in by_api.items() if cat == "notify")
        bookkeeping = sum(n for (cat, _), n in by_api.items() if cat in ("idempotency", "audit"))
        out[name] = {
            "decision_calls": decision, "notification_calls": notify, "bookkeeping_calls": bookkeeping,
            "total": len(calls),
            "target_decision_calls": TARGETS[name],
            "by_api": [{"category": cat, "api": api, "calls": n} for (cat, api), n in sorted(by_api.items())],
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["AWS calls per ScalerFunction invocation (moto, real handler)", "",
             "| case | decision reads + writes (target) | + notification | + bookkeeping (idempotency, audit) "
             "| total | calls by API |",
             "|---|---:|---:|---:|---:|---|"]
    for name, r in result.items():
        apis = ", ".join(f"{row['api']} x{row['calls']} ({row['category']})" for row in r["by_api"])
        lines.append(f"| {name} | {r['decision_calls']} (<= {r['target_decision_calls']}) | "
                     f"{r['notification_calls']} | {r['bookkeeping_calls']} | {r['total']} | {apis} |")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run()
    print(markdown(outcome))
    path = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build") / "bench-calls.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome, indent=2))
