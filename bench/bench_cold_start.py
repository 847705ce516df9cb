"""Cold start of each function (ScalerFunction in detail) as a ratio to a bare `import boto3`.

Each sample is a fresh interpreter (`python -c ...`) that times, with perf_counter, from before the
first import to the end of the work:
- **scaler**: import functions/scaler/app.py (as Lambda does: by file, the library from the layer),
  build its dependencies (autopilot.wiring.dependencies(): settings, store, ports, executor) and the
  boto3 clients its first invocation uses (dynamodb, ecs, sns);
- **boto3**: `import boto3`;
- **boto3 + clients**: `import boto3` and create the same three clients (what any boto3 Lambda pays).
Interpreter start-up is excluded from all three. One warm-up round first (writes .pyc files), then
the median of N rounds, interleaved so machine noise hits all alike. Never fails on a number.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("dynamodb", "ecs", "sns")
TARGET_RATIO = 1.5

# The clients each function's first invocation creates (the state table, ECS, SNS, and its own extras).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "scaler": CLIENTS,
    "healer": (*CLIENTS, "sqs"),
    "rollout": CLIENTS,
    "restarter": (*CLIENTS, "sqs"),
    "reconciler": (*CLIENTS, "cloudwatch"),
}


def _function_program(function: str, clients: tuple[str, ...]) -> str:
    return f"""
import time
t0 = time.perf_counter()
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions" / function / "app.py")!r})
app = importlib.util.module_from_spec(spec); sys.modules["app"] = app; spec.loader.exec_module(app)
from autopilot.wiring import dependencies
dependencies()
from autopilot.aws.clients import client
for name in {clients!r}:
    client(name)
print(time.perf_counter() - t0)
"""


SCALER = _function_program("scaler", CLIENTS)
BOTO3 = """
import time
t0 = time.perf_counter()
import boto3
print(time.perf_counter() - t0)
"""
BOTO3_CLIENTS = f"""
import time
t0 = time.perf_counter()
import boto3
session = boto3.session.Session()
for name in {CLIENTS!r}:
    session.client(name)
print(time.perf_counter() - t0)
"""

ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1", "AUTOPILOT_TABLE": "bench-StateTable",
    "AUTOPILOT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-NotificationTopic",
    "AUTOPILOT_RESTART_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-RestartQueue",
    "AUTOPILOT_MODE": "enforce", "AUTOPILOT_MANAGED_CLUSTERS": "prod", "POWERTOOLS_SERVICE_NAME": "ecs-autopilot",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsAutopilot", "POWERTOOLS_LOG_LEVEL": "INFO",
}


def _sample(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTOPILOT_", "POWERTOOLS_"))}
    env.update(ENV)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=120)
    return float(done.stdout.strip().splitlines()[-1])


def run(rounds: int = 5) -> dict[str, Any]:
    programs = {name: _function_program(name, clients) for name, clients in FUNCTIONS.items()}
    programs.update({"boto3": BOTO3, "boto3+clients": BOTO3_CLIENTS})
    for code in programs.values():  # warm-up: bytecode caches, file system caches
        _sample(code)
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(rounds):
        for name, code in programs.items():
            samples[name].append(_sample(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "machine": os.uname().machine,
        "rounds": rounds,
        "median_ms": {name: round(value * 1000, 1) for name, value in medians.items()},
        "samples_ms": {name: [round(v * 1000, 1) for v in values] for name, values in samples.items()},
        "ratio_to_import_boto3": round(medians["scaler"] / medians["boto3"], 2),
        "ratio_per_function": {name: round(medians[name] / medians["boto3"], 2) for name in FUNCTIONS},
        "ratio_to_boto3_with_clients": round(medians["scaler"] / medians["boto3+clients"], 2),
        "target_ratio": TARGET_RATIO,
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["median_ms"]
    return "\n".join([
        f"Cold start, ScalerFunction (median of {result['rounds']} fresh interpreters, Python {result['python']}, "
        f"{result['machine']})",
        "",
        "| what | median ms |",
        "|---|---:|",
        f"| `import boto3` | {m['boto3']} |",
        f"| `import boto3` + {len(CLIENTS)} clients | {m['boto3+clients']} |",
        f"| scaler: import app.py + dependencies + {len(CLIENTS)} clients | {m['scaler']} |",
        "",
        f"Ratio to a bare `import boto3`: **{result['ratio_to_import_boto3']}** (target <= {TARGET_RATIO}); "
        f"to boto3 with the same clients: {result['ratio_to_boto3_with_clients']}.",
        "",
        "| function: import app.py + dependencies + its clients | median ms | ratio to `import boto3` |",
        "|---|---:|---:|",
        *[f"| {name} | {m[name]} | {result['ratio_per_function'][name]} |" for name in FUNCTIONS],
    ])


if __name__ == "__main__":
    outcome = run(int(os.environ.get("BENCH_ROUNDS", "5")))
    print(markdown(outcome))
    out = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build") / "bench-cold-start.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcome, indent=2))
