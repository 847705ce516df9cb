"""Invoke ``functions/<name>/app.py`` exactly as Lambda would: the template's environment, a context,
one sandbox per function (module-level caches survive between invocations, as in a warm sandbox).

Handlers log and emit EMF metrics to stdout; the host captures both per invocation so the timeline
can show what a function logged (a rejected event's one log line) without drowning the terminal.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from autopilot_tools.demo.emulator import ACCOUNT_ID, REGION
from autopilot_tools.localstack import LocalStack

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ROOT / "functions"

# Template logical id -> folder under functions/ (contract section 1).
FOLDERS = {
    "ScalerFunction": "scaler",
    "HealerFunction": "healer",
    "RolloutFunction": "rollout",
    "RestarterFunction": "restarter",
    "ReconcilerFunction": "reconciler",
    "PolicyResourceFunction": "policy_resource",
}


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from a real Lambda context."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    timeout_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "demo/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class Invocation:
    """One handler call: what went in, what came out, what it logged and which metrics it emitted."""

    function: str
    event: Any
    result: Any = None
    error: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def function_available(logical_id: str, template: dict[str, Any]) -> str | None:
    """None when the function exists in the template and on disk, else why not (a capability not built yet)."""
    folder = FOLDERS.get(logical_id)
    if logical_id not in template.get("Resources", {}):
        return f"{logical_id} is not in template.yaml yet"
    if folder is None or not (FUNCTIONS / folder / "app.py").is_file():
        return f"functions/{folder}/app.py does not exist yet"
    return None


class FunctionHost:
    """Loads each function once and invokes it with its own environment and the virtual clock."""

    def __init__(self, stack: LocalStack, template: dict[str, Any], clock: Callable[[], datetime]) -> None:
        self.stack = stack
        self.template = template
        self.clock = clock
        self._modules: dict[str, ModuleType] = {}

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        name = f"{self.stack.stack_name}-{logical_id}"
        self._enter(logical_id, name)
        module = self._module(logical_id)
        invocation = Invocation(function=logical_id, event=event)
        stdout, logs = io.StringIO(), io.StringIO()
        with _captured_logger(logs), contextlib.redirect_stdout(stdout):
            try:
                invocation.result = module.lambda_handler(event, LambdaContext(function_name=name))
            except Exception as exc:  # Lambda would record a function error and retry; the demo shows it
                invocation.error = f"{type(exc).__name__}: {exc}"
        invocation.logs, invocation.metrics = _parse_output(logs.getvalue() + stdout.getvalue())
        return invocation

    def _enter(self, logical_id: str, function_name: str) -> None:
        """The function's environment, as the template builds it, and dependencies on the virtual clock."""
        env = self.stack.function_environment(self.template, logical_id)
        env.update({"AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false"})
        os.environ.update(env)
        from autopilot import settings, wiring

        settings.settings.cache_clear()  # boto3 clients stay: the endpoint is the same for every function
        wiring.dependencies.cache_clear()

        deps = wiring.dependencies()
        deps.clock = self.clock

    def _module(self, logical_id: str) -> ModuleType:
        if logical_id not in self._modules:
            path = FUNCTIONS / FOLDERS[logical_id] / "app.py"
            module_name = f"_autopilot_demo_{FOLDERS[logical_id]}_app"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            self._modules[logical_id] = module
        return self._modules[logical_id]


@contextlib.contextmanager
def _captured_logger(buffer: io.StringIO) -> Any:
    """Point the Powertools logger's stream handlers at ``buffer`` for one invocation."""
    targets = [h for h in logging.getLogger("ecs-autopilot").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(buffer) for h in targets]
    try:
        yield
    finally:
        for handler, stream in zip(targets, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


def _parse_output(text: str) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Split captured output into structured log records and EMF metric values (summed by name)."""
    logs: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        emf = record.get("_aws") if isinstance(record, dict) else None
        if isinstance(emf, dict):
            for directive in emf.get("CloudWatchMetrics", []):
                for metric in directive.get("Metrics", []):
                    value = record.get(metric.get("Name"))
                    values = value if isinstance(value, list) else [value]
                    total = sum(v for v in values if isinstance(v, (int, float)))
                    label = metric["Name"]
                    if "reason" in record and label == "Skipped":
                        label = f"Skipped[{record['reason']}]"
                    metrics[label] = metrics.get(label, 0) + total
        elif isinstance(record, dict) and "level" in record:
            logs.append(record)
    return logs, metrics
