"""Logger and Metrics, created once per process (Powertools reads POWERTOOLS_* variables).

The X-Ray SDK Tracer is deliberately not created: it costs ~200 ms of cold start even when tracing
is disabled. The template turns on Lambda's active tracing, which traces each invocation without it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="ecs-autopilot")
metrics = Metrics(namespace="EcsAutopilot", service="ecs-autopilot")

__all__ = ["MetricUnit", "logger", "metrics"]
