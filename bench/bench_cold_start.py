"""Cold start of each function as a ratio to ``import boto3`` + the same clients (issue 10: target <= 1.2).

For each of the five functions, in fresh interpreters, interleaved round by round so machine noise hits
all alike, median of N rounds after one warm-up round:

- **function**: import ``functions/<name>/app.py`` as Lambda does (by file path), build its dependencies
  (``autopilot.wiring.dependencies()``) and create the boto3 clients its first invocation creates;
- **boto3 + clients**: ``import boto3`` and create the same clients (same botocore Config) from one session,
  what any boto3 Lambda pays before its first call.

Which clients: those the function's first event really calls, found by running that event once
(``discover``). The event is a sample from ``events/`` (an acting one where there is one), against the
policies of ``examples/policies.yaml``, every AWS call answered in memory (``bench/fake_aws.py``).

The library is imported from a layer directory staged like ``make build`` ships it (layers/autopilot
plus the closure of layers/requirements.txt, copied from this virtualenv, precompiled with
unchecked-hash bytecode); boto3 comes from the virtualenv, as it comes from the runtime on Lambda.
Two more figures per function:

- **first event**: how much longer its first event takes than the same event again (state reset): the
  one-time work deferred from the import (lazy imports, pydantic validator builds). A bare boto3
  function pays none of it. AWS calls cost nothing here (answered in memory), on both sides.
- **without bytecode**: the function's import as ``sam build`` alone ships the layer (sources only,
  compiled on every cold start: Lambda cannot write ``__pycache__`` under /opt).

Interpreter start-up is excluded everywhere. Timings never fail: a crash (a bug) does.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.2
MARKER = "BENCH-RESULT "
# What the Lambda python3.13 runtime already provides (the layer does not need to ship it).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six"}


@dataclass(frozen=True)
class Function:
    event: str  # a sample in events/
    note: str  # what the event makes the function do


FUNCTIONS: dict[str, Function] = {
    "scaler": Function("scaler-alarm-high.json", "web-cpu-high to ALARM: scale out"),
    "healer": Function("healer-crash.json", "a service task crashed: count it"),
    "rollout": Function("rollout-failed-circuit-breaker.json", "a deployment failed"),
    "restarter": Function("restarter-restart-due.json", "a queued restart is due: RunTask"),
    "reconciler": Function("", "every minute: alarms still in ALARM, bounds, hooks"),
}

ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1", "AUTOPILOT_TABLE": "bench-StateTable",
    "AUTOPILOT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-NotificationTopic",
    "AUTOPILOT_RESTART_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-RestartQueue",
    "AUTOPILOT_MODE": "enforce", "AUTOPILOT_MANAGED_CLUSTERS": "prod,batch", "POWERTOOLS_SERVICE_NAME": "ecs-autopilot",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsAutopilot", "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_NAME": "bench-function", "PYTHONDONTWRITEBYTECODE": "1",
}
# The functions' own environment from template.yaml (PYDANTIC_DISABLE_PLUGINS, ...), added in run().

RECONCILE_EVENT = {"version": "0", "id": "bench-reconcile-0001", "detail-type": "Scheduled Event",
                   "source": "aws.scheduler", "account": "123456789012", "time": "2026-11-26T12:00:00Z",
                   "region": "us-east-1", "resources": [], "detail": {}}

# ----------------------------------------------------------------------------------------- staging


def _runtime_distributions() -> list[metadata.Distribution]:
    """layers/requirements.txt and what it requires, as installed here, minus what the runtime provides."""
    from packaging.requirements import Requirement

    wanted = [Requirement(line).name for line in (ROOT / "layers" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    seen: dict[str, metadata.Distribution] = {}
    while wanted:
        name = re.sub(r"[-_.]+", "-", wanted.pop()).lower()
        if name in seen or name in RUNTIME_PROVIDED:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return list(seen.values())


def stage_layer(dest: Path, bytecode: bool) -> Path:
    """A layer's ``python/`` directory like the one Lambda mounts at /opt/python; returns it."""
    python = dest / "python"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT / "layers" / "autopilot", python / "autopilot",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for dist in _runtime_distributions():
        for file in dist.files or []:
            if "__pycache__" in file.parts or file.suffix == ".pyc" or file.parts[0].startswith(".."):
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = python / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    if bytecode:  # what `make layer-bytecode` does to the built layer
        compileall.compile_dir(python, quiet=1, workers=0,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return python


def seed_items() -> list[dict[str, Any]]:
    """The state table items of examples/policies.yaml, as ``StateTable.put_policy`` writes them."""
    from autopilot.models.policy import ServicePolicy
    from autopilot_tools.policyfile import load_policies
    from bench.fake_aws import policy_items

    policies, errors = load_policies(ROOT / "examples" / "policies.yaml")
    assert not errors, errors
    items: list[dict[str, Any]] = []
    for policy in policies:
        alarms = policy.alarm_names() if isinstance(policy, ServicePolicy) else []
        items += policy_items(policy.key, policy.kind, policy.model_dump_json(exclude_none=True), alarms)
    return items


# ----------------------------------------------------------------------------------------- programs

FUNCTION_PROGRAM = """
import time
t0 = time.perf_counter()
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", {app!r})
app = importlib.util.module_from_spec(spec); sys.modules["app"] = app; spec.loader.exec_module(app)
from autopilot.wiring import dependencies
dependencies()
from autopilot.aws.clients import client
for name in {clients!r}:
    client(name)
init = time.perf_counter() - t0
import autopilot, copy, json
result = {{"init": init, "library": autopilot.__file__}}
if {snapstart!r}:  # what the SnapStart before-snapshot hook adds to the initialization
    from autopilot.snapstart import warm_up
    t1 = time.perf_counter()
    warm_up({clients!r})
    result["warm_up"] = time.perf_counter() - t1
if {first_event!r}:
    from bench.fake_aws import FakeAws, LambdaContext
    with open({seed!r}) as f:
        fake = FakeAws(json.load(f))
    fake.install()
    with open({event!r}) as f:
        event = json.load(f)
    times = []
    for attempt in (1, 2):
        fake.reset()
        t1 = time.perf_counter()
        answer = app.lambda_handler(copy.deepcopy(event), LambdaContext())
        times.append(time.perf_counter() - t1)
        if attempt == 1:
            result["services"] = sorted({{service for service, _ in fake.calls}})
            result["calls"] = ["%s:%s" % call for call in fake.calls]
            result["answer"] = json.dumps(answer, default=str)[:300]
    result["first"], result["again"] = times
print({marker!r} + json.dumps(result))
"""

BOTO3_PROGRAM = """
import time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
config = Config(retries={{"mode": "standard", "max_attempts": 5}}, connect_timeout=3, read_timeout=10,
                user_agent_extra="ecs-autopilot")
session = boto3.session.Session()
for name in {clients!r}:
    session.client(name, config=config)
print({marker!r} + '{{"init": %r}}' % (time.perf_counter() - t0))
"""


@cache
def template_environment() -> dict[str, str]:
    """The literal environment variables template.yaml gives every function (not the resource references)."""
    from autopilot_tools.localstack import load_template

    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return {name: str(value) for name, value in variables.items() if isinstance(value, str)}


def _sample(code: str, pythonpath: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "AUTOPILOT_", "POWERTOOLS_", "PYTHON", "PYDANTIC_"))}
    env.update(template_environment())
    env.update(ENV)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark program failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER):])
    if pythonpath is not None and not str(result.get("library", "")).startswith(str(pythonpath)):
        raise RuntimeError(f"autopilot came from {result.get('library')}, not from the staged layer {pythonpath}")
    return result


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def _shifted(value: Any, delta: timedelta) -> Any:
    """``value`` with every ISO 8601 timestamp moved by ``delta`` (JSON strings inside strings too)."""
    if isinstance(value, dict):
        return {k: _shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shifted(v, delta) for v in value]
    if isinstance(value, str) and _ISO.match(value):
        moment = datetime.fromisoformat(value) + delta
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str) and value.startswith("{"):
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return json.dumps(_shifted(inner, delta))
    return value


def fresh_event(name: str, build: Path) -> Path:
    """The function's sample event with its times moved to now (a crash of 2026-11 is outside any window
    today), written to the build directory."""
    spec = FUNCTIONS[name]
    event = json.loads((ROOT / "events" / spec.event).read_text()) if spec.event else dict(RECONCILE_EVENT)
    anchor = str(event.get("time") or "2026-11-26T12:00:00Z")
    event = _shifted(event, datetime.now(UTC) - datetime.fromisoformat(anchor) - timedelta(seconds=5))
    path = build / f"bench-event-{name}.json"
    path.write_text(json.dumps(event))
    return path


def _function_program(name: str, clients: list[str], seed: Path, first_event: bool, snapstart: bool = False) -> str:
    event = seed.parent / f"bench-event-{name}.json"
    return FUNCTION_PROGRAM.format(app=str(ROOT / "functions" / name / "app.py"), clients=clients, seed=str(seed),
                                   event=str(event), first_event=first_event, snapstart=snapstart, marker=MARKER)


def run(rounds: int = 5) -> dict[str, Any]:
    build = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build")
    layer = stage_layer(build / "bench-layer", bytecode=True)
    sources_only = stage_layer(build / "bench-layer-sources", bytecode=False)
    seed = build / "bench-cold-start-seed.json"
    seed.write_text(json.dumps(seed_items()))
    for name in FUNCTIONS:
        fresh_event(name, build)

    # Which clients each function's first event creates (and that it runs at all).
    discovered = {name: _sample(_function_program(name, [], seed, True), layer) for name in FUNCTIONS}
    clients = {name: list(found["services"]) for name, found in discovered.items()}

    programs: dict[str, tuple[str, Path | None]] = {"boto3": (BOTO3_PROGRAM.format(clients=[], marker=MARKER), None)}
    for name in FUNCTIONS:
        programs[f"{name}"] = (_function_program(name, clients[name], seed, True), layer)
        programs[f"{name}/sources"] = (_function_program(name, clients[name], seed, False), sources_only)
        programs[f"{name}/snapstart"] = (_function_program(name, clients[name], seed, True, snapstart=True), layer)
        key = "boto3+" + ",".join(clients[name])
        programs.setdefault(key, (BOTO3_PROGRAM.format(clients=clients[name], marker=MARKER), None))
    for code, path in programs.values():  # warm-up: file system caches
        _sample(code, path)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in programs}
    for _ in range(rounds):
        for name, (code, path) in programs.items():
            samples[name].append(_sample(code, path))

    def median_ms(name: str, field: str = "init") -> float:
        return round(statistics.median(s[field] for s in samples[name]) * 1000, 1)

    per_function: dict[str, Any] = {}
    for name in FUNCTIONS:
        base = median_ms("boto3+" + ",".join(clients[name]))
        init = median_ms(name)
        one_time = round(statistics.median(s["first"] - s["again"] for s in samples[name]) * 1000, 1)
        sources = median_ms(f"{name}/sources")
        snap = samples[f"{name}/snapstart"]
        per_function[name] = {
            "event": FUNCTIONS[name].event or "scheduled event", "what": FUNCTIONS[name].note,
            "clients": clients[name], "calls": discovered[name]["calls"], "answer": discovered[name]["answer"],
            "boto3_with_clients_ms": base, "function_ms": init, "ratio": round(init / base, 2),
            "first_event_one_time_ms": one_time, "first_event_ms": median_ms(name, "first"),
            "again_ms": median_ms(name, "again"), "ratio_with_first_event": round((init + one_time) / base, 2),
            "without_bytecode_ms": sources, "ratio_without_bytecode": round(sources / base, 2),
            "snapstart_snapshot_work_ms": round(statistics.median(s["init"] + s["warm_up"] for s in snap) * 1000, 1),
            "snapstart_first_event_one_time_ms": round(statistics.median(s["first"] - s["again"] for s in snap) * 1000,
                                                       1),
            "samples_ms": [round(s["init"] * 1000, 1) for s in samples[name]],
        }
    return {
        "python": sys.version.split()[0], "platform": sys.platform, "machine": os.uname().machine,
        "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2), "rounds": rounds,
        "target_ratio": TARGET_RATIO, "import_boto3_ms": median_ms("boto3"), "functions": per_function,
        "met": all(f["ratio"] <= TARGET_RATIO for f in per_function.values()),
    }


def markdown(result: dict[str, Any]) -> str:
    rows, snap = [], []
    for name, f in result["functions"].items():
        verdict = "yes" if f["ratio"] <= result["target_ratio"] else "**no**"
        rows.append(f"| {name} | {', '.join(f['clients'])} | {f['boto3_with_clients_ms']} | {f['function_ms']} | "
                    f"**{f['ratio']}** | {verdict} | {f['first_event_one_time_ms']} | {f['ratio_with_first_event']} | "
                    f"{f['without_bytecode_ms']} ({f['ratio_without_bytecode']}) |")
        snap.append(f"| {name} | {f['snapstart_snapshot_work_ms']} | {f['snapstart_first_event_one_time_ms']} |")
    return "\n".join([
        f"Cold start per function (median of {result['rounds']} fresh interpreters, Python {result['python']}, "
        f"{result['machine']}, {result['cpus']} CPUs, load {result['load_average']}); `import boto3` alone: "
        f"{result['import_boto3_ms']} ms",
        "",
        "| function | its clients | boto3 + clients ms | import app + deps + clients ms | ratio | <= "
        f"{result['target_ratio']} | first event, one-time ms | ratio with it | without bytecode ms (ratio) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
        *rows,
        "",
        "With SnapStart (what can be measured offline: the work that moves into the snapshot, and what the first",
        "event after a restore still does once; not the restore itself, which only Lambda can time):",
        "",
        "| function | into the snapshot: import, deps, clients, warm-up ms | first event after restore, one-time ms |",
        "|---|---:|---:|",
        *snap,
    ])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    outcome = run(int(os.environ.get("BENCH_ROUNDS", "5")))
    print(markdown(outcome))
    out = Path(os.environ.get("AUTOPILOT_BUILD_DIR") or ROOT / "build") / "bench-cold-start.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcome, indent=2))
