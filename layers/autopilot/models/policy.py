"""Policy documents: the user-facing format of contract section 2, validated with pydantic v2.

Every model forbids unknown keys so a typo (``minTask``) is an error, not a silently ignored field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Mode = Literal["enforce", "dry-run", "off"]
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
# CloudWatch statistics: the five basic ones, percentiles and the trimmed/windsorized/percentile-rank forms.
_STAT = (r"^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?"
         r"|(tm|wm|tc|ts|pr)\(?[\d.:%]*\)?|TM|WM|TC|TS|PR|IQM)$")

# Resource names as ECS and CloudWatch accept them (kept loose: AWS is the final judge).
ClusterName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
ServiceName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
AlarmName = Annotated[str, Field(min_length=1, max_length=255)]


class StrictModel(BaseModel):
    """Base for policy models: unknown keys are errors, values are immutable once parsed.

    ``allow_inf_nan=False``: YAML's ``.nan``/``.inf`` would slip past every bound and gap check.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True,
                              allow_inf_nan=False)


class Step(StrictModel):
    """One step adjustment; bounds are relative to the alarm threshold (AAS semantics)."""

    lowerBound: float | None = None
    upperBound: float | None = None
    adjustment: int | str = Field(description='Change in tasks (e.g. 2, -1) or a percent string ("30%", "-10%").')
    minAdjustmentMagnitude: int | None = Field(default=None, ge=1)

    @field_validator("adjustment")
    @classmethod
    def _adjustment_form(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not _PERCENT.match(value.strip()):
            raise ValueError('a percent adjustment must look like "30%" or "-10%"')
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _bounds(self) -> Step:
        if self.lowerBound is not None and self.upperBound is not None and self.lowerBound >= self.upperBound:
            raise ValueError("lowerBound must be below upperBound")
        if self.minAdjustmentMagnitude is not None and not self.is_percent:
            raise ValueError("minAdjustmentMagnitude only applies to percent adjustments")
        return self

    @property
    def is_percent(self) -> bool:
        return isinstance(self.adjustment, str)

    @property
    def percent(self) -> Fraction:
        """The percentage as an exact fraction (only for percent steps)."""
        match = _PERCENT.match(str(self.adjustment))
        assert match is not None  # guaranteed by the validator
        return Fraction(Decimal(match.group(1)))


class MetricSpec(StrictModel):
    """A CloudWatch metric a targetTracking rule reads directly (one GetMetricData MetricStat)."""

    namespace: Annotated[str, Field(min_length=1, max_length=255)]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    dimensions: dict[Annotated[str, Field(min_length=1, max_length=255)],
                     Annotated[str, Field(min_length=1, max_length=1024)]] = Field(default_factory=dict, max_length=30)
    stat: str = Field(default="Average", pattern=_STAT)
    period: int = Field(default=60, description="Seconds: 1, 5, 10, 30 (high resolution) or a multiple of 60.")

    @field_validator("period")
    @classmethod
    def _period(cls, value: int) -> int:
        if value not in (1, 5, 10, 30) and (value <= 0 or value % 60):
            raise ValueError("period must be 1, 5, 10, 30 or a multiple of 60 seconds")
        return value


class RatePolicy(StrictModel):
    """At most ``value`` tasks (Tasks) or percent of the capacity (Percent) per ``periodSeconds`` (HPA policies)."""

    type: Literal["Tasks", "Percent"]
    value: int = Field(gt=0, le=100000)
    periodSeconds: int = Field(default=60, ge=1, le=1800)


ROBUST_ONLY = ("scaleInPercentile", "scaleInHysteresis", "scaleOutNoiseDeviations", "holdAfterScaleOutSeconds",
               "predictive")


class Predictive(StrictModel):
    """A targetTracking rule's predictive lever: pre-scale from a forecast of the service's own demand.

    The reconciler fits daily and weekly seasonality, level and trend to ``historyDays`` of ``loadMetric``
    (one GetMetricData call per 500 queries per run, at most every ``refreshSeconds``), stores the fit in the
    state table, and each minute raises the desired count to what the forecast of the next
    ``taskStartSeconds`` needs (calibrated on the rule's own recent load). It never lowers the count, and it
    stays out while the forecast's recent error is above ``maxError``.
    """

    loadMetric: AlarmName | MetricSpec = Field(
        description="A metric proportional to the demand (e.g. the ALB's RequestCount, Sum): not a utilization.")
    historyDays: int = Field(default=14, ge=2, le=14, description="days of history fitted (CloudWatch keeps "
                                                                    "5-minute data for 63 days)")
    refreshSeconds: int = Field(default=3600, ge=300, le=86400, description="how often the fit is refreshed")
    taskStartSeconds: int = Field(default=120, ge=0, le=1800, description="how far ahead to pre-scale: the time "
                                                                          "from a scale-out to new tasks serving")
    maxError: float = Field(default=0.3, gt=0, le=2, description="quality gate: the forecast is used only while "
                                                                 "its recent relative error is at most this")


class TargetTracking(StrictModel):
    """Keep a metric near ``targetValue`` the way Kubernetes' HPA does, evaluated every minute by the reconciler.

    ``metric`` is either an alarm name (the rule reads that alarm's metric, query and period; the alarm's
    state is irrelevant) or a metric spec mapping.
    """

    metric: AlarmName | MetricSpec
    targetValue: float = Field(gt=0)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scaleInStabilizationSeconds: int | None = Field(default=None, ge=0, le=3600,
                                                    description="default 900 (robust) or 300 (newest)")
    # Empty = no rate limit: HPA's defaults (100 % per 15 s) are no limit at the reconciler's one-minute
    # cadence; maxTasks, the tolerance and scale-in stabilization are the brakes unless the user adds some.
    scaleOutPolicies: list[RatePolicy] = Field(default_factory=list, max_length=10)
    scaleInPolicies: list[RatePolicy] = Field(default_factory=list, max_length=10)
    scaleOutSelectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    scaleInSelectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    datapointsToScaleOut: int | None = Field(default=None, ge=1, le=15,
                                             description="default 3 (robust: their mean) or 1 (newest)")
    # Asymmetric band: scale in only below targetValue x (1 - scaleInTolerance). Default: ``tolerance``.
    scaleInTolerance: float | None = Field(default=None, ge=0, lt=1)
    # Trend-aware scale-out (0 = off): forecast the metric this many seconds past its newest datapoint with a
    # least-squares line through the newest ``trendDatapoints`` (ignored without a lookahead); a higher forecast
    # stands in for the newest datapoint when deciding to scale out (never to scale in). A good value: task
    # start time + metric delay.
    scaleOutLookaheadSeconds: int = Field(default=0, ge=0, le=900)
    trendDatapoints: int = Field(default=3, ge=2, le=15)
    # How the rule sizes (issue 12). ``robust`` (the default): the rule keeps the load its metric implies (in tasks
    # at the target) over a window; it scales out on a sustained breach (the mean of the newest datapoints beyond
    # the band) or one datapoint far beyond the noise, and scales in to what a high percentile of the window needs,
    # only when that clears one task fewer by a margin of the window's own noise. ``newest``: HPA's rule on the
    # newest datapoint (the behaviour before issue 12). Fields marked robust only apply to ``robust``.
    sizing: Literal["robust", "newest"] = Field(
        default="robust", description="robust (default): a window of loads, sustained or beyond-the-noise scale-out, "
                                      "percentile scale-in with noise hysteresis; newest: HPA on the newest datapoint")
    scaleInPercentile: float | None = Field(default=None, ge=50, le=100, description="robust: default 80")
    scaleInHysteresis: float | None = Field(default=None, ge=0, le=5, description="robust: default 0.5")
    scaleOutNoiseDeviations: float | None = Field(default=None, ge=0, le=20, description="robust: default 3")
    holdAfterScaleOutSeconds: int | None = Field(default=None, ge=0, le=3600, description="robust: default 300")
    predictive: Predictive | None = Field(default=None, description="robust only: pre-scale from a forecast of the "
                                                                     "service's own demand")

    @model_validator(mode="after")
    def _sizing_fields(self) -> TargetTracking:
        if self.sizing == "newest":
            robust_only = [name for name in ROBUST_ONLY if getattr(self, name) is not None]
            if robust_only:
                raise ValueError(f"{', '.join(robust_only)} only apply to sizing: robust")
        return self

    @property
    def window_seconds(self) -> int:
        """The scale-in window: ``scaleInStabilizationSeconds``, default 900 s (robust) or 300 s (newest)."""
        if self.scaleInStabilizationSeconds is not None:
            return self.scaleInStabilizationSeconds
        return 900 if self.sizing == "robust" else 300

    @property
    def out_datapoints(self) -> int:
        """Datapoints a scale-out needs: ``datapointsToScaleOut``, default 3 (robust: their mean) or 1 (newest)."""
        if self.datapointsToScaleOut is not None:
            return self.datapointsToScaleOut
        return 3 if self.sizing == "robust" else 1

    @property
    def in_percentile(self) -> float:
        return 80.0 if self.scaleInPercentile is None else self.scaleInPercentile

    @cached_property
    def in_z(self) -> float:
        """The normal quantile of ``scaleInPercentile``: the noise headroom (in deviations) it keeps."""
        from statistics import NormalDist

        return NormalDist().inv_cdf(min(self.in_percentile, 99.9) / 100)

    @property
    def in_hysteresis(self) -> float:
        return 0.5 if self.scaleInHysteresis is None else self.scaleInHysteresis

    @property
    def out_noise_deviations(self) -> float:
        return 3.0 if self.scaleOutNoiseDeviations is None else self.scaleOutNoiseDeviations

    @property
    def hold_after_out(self) -> int:
        return 300 if self.holdAfterScaleOutSeconds is None else self.holdAfterScaleOutSeconds

    @cached_property
    def key(self) -> str:
        """A stable name for the rule's memory in the service state (one rule per metric)."""
        if isinstance(self.metric, str):
            return f"alarm:{self.metric}"
        dims = ",".join(f"{k}={v}" for k, v in sorted(self.metric.dimensions.items()))
        return f"{self.metric.namespace}/{self.metric.name}[{dims}]/{self.metric.stat}/{self.metric.period}"

    @cached_property
    def longest_rate_period(self) -> int:
        """Seconds of desired-count changes the rate limits need to remember (0: no rate limit)."""
        return max((p.periodSeconds for p in (*self.scaleOutPolicies, *self.scaleInPolicies)), default=0)


class ScalingRule(StrictModel):
    """What to do for one signal: an alarm with exactly one of steps, targetValue, exactCapacity, or a
    targetTracking rule (no alarm: the reconciler reads its metric every minute)."""

    alarm: AlarmName | None = None
    steps: list[Step] | None = Field(default=None, min_length=1)
    targetValue: float | None = Field(default=None, gt=0)
    exactCapacity: int | None = Field(default=None, ge=0)
    targetTracking: TargetTracking | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScalingRule:
        kinds = [k for k in ("steps", "targetValue", "exactCapacity", "targetTracking") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a rule needs exactly one of steps, targetValue, exactCapacity, targetTracking")
        if self.targetTracking is not None and self.alarm is not None:
            raise ValueError("a targetTracking rule has no alarm: to track an alarm's metric, "
                             "name the alarm in targetTracking.metric")
        if self.targetTracking is None and self.alarm is None:
            raise ValueError("alarm: Field required (every rule but targetTracking is driven by an alarm)")
        if self.steps is not None:
            _check_steps(self.steps)
        return self


def _check_steps(steps: list[Step]) -> None:
    """AAS rules: no overlap, no gap, at most one open lower and one open upper bound."""
    if sum(1 for s in steps if s.lowerBound is None) > 1:
        raise ValueError("at most one step may have no lowerBound")
    if sum(1 for s in steps if s.upperBound is None) > 1:
        raise ValueError("at most one step may have no upperBound")
    if len(steps) == 1 and steps[0].lowerBound is None and steps[0].upperBound is None:
        raise ValueError("a single step needs a lowerBound or an upperBound")
    ordered = sorted(steps, key=lambda s: float("-inf") if s.lowerBound is None else s.lowerBound)
    for before, after in pairwise(ordered):
        if before.upperBound is None or after.lowerBound is None:
            raise ValueError("steps overlap: an open bound must be the first or the last step")
        if before.upperBound < after.lowerBound:
            raise ValueError(f"steps leave a gap between {before.upperBound} and {after.lowerBound}")
        if before.upperBound > after.lowerBound:
            raise ValueError(f"steps overlap between {after.lowerBound} and {before.upperBound}")


class Scaling(StrictModel):
    minTasks: int = Field(ge=0)
    maxTasks: int = Field(ge=0)
    scaleOutCooldownSeconds: int = Field(default=300, ge=0, le=86400)
    scaleInCooldownSeconds: int = Field(default=300, ge=0, le=86400)
    rules: list[ScalingRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _min_max(self) -> Scaling:
        if self.minTasks > self.maxTasks:
            raise ValueError(f"minTasks ({self.minTasks}) must not exceed maxTasks ({self.maxTasks})")
        for rule in self.rules:
            if rule.exactCapacity is not None and not self.minTasks <= rule.exactCapacity <= self.maxTasks:
                raise ValueError(f"exactCapacity of rule {rule.alarm!r} is outside [minTasks, maxTasks]")
        tracked = [r.targetTracking.key for r in self.rules if r.targetTracking is not None]
        if len(tracked) != len(set(tracked)):
            raise ValueError("each metric may be tracked by one targetTracking rule per policy")
        return self


class CrashLoop(StrictModel):
    failures: int = Field(default=3, ge=1, le=1000)
    windowSeconds: int = Field(default=600, ge=10, le=86400)
    action: Literal["rollback", "notify"] = "rollback"


class Oom(StrictModel):
    growPercent: int = Field(default=25, ge=1, le=400)
    maxMemoryMiB: int = Field(default=8192, ge=128, le=122880)


class SpotFallback(StrictModel):
    interruptions: int = Field(default=2, ge=1, le=1000)
    windowSeconds: int = Field(default=300, ge=10, le=86400)
    holdSeconds: int = Field(default=1800, ge=60, le=7 * 86400)
    onDemandProvider: str = Field(default="FARGATE", min_length=1, max_length=255)


class Healing(StrictModel):
    crashLoop: CrashLoop | None = None
    oom: Oom | None = None
    spotFallback: SpotFallback | None = None


class Rollout(StrictModel):
    rollbackOnDeploymentFailure: bool = True
    rollbackOnImagePullFailure: bool = True
    rollbackAlarms: list[AlarmName] = Field(default_factory=list)
    bakeSeconds: int = Field(default=1800, ge=0, le=7 * 86400)
    recycleAlarms: list[AlarmName] = Field(default_factory=list)


class ServiceMetadata(StrictModel):
    cluster: ClusterName
    service: ServiceName


class ServiceSpec(StrictModel):
    mode: Mode = "enforce"
    scaling: Scaling | None = None
    healing: Healing | None = None
    rollout: Rollout | None = None


class ServicePolicy(StrictModel):
    """How one ECS service is scaled, healed and rolled back."""

    apiVersion: Literal["autopilot/v1"]
    kind: Literal["ServicePolicy"]
    metadata: ServiceMetadata
    spec: ServiceSpec

    @model_validator(mode="after")
    def _unique_alarms(self) -> ServicePolicy:
        names = self.alarm_names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each alarm may appear once per policy; repeated: {', '.join(duplicates)}")
        return self

    def alarm_names(self) -> list[str]:
        """Every alarm the policy reacts to (rules, rollback and recycle alarms), in order."""
        # targetTracking rules have no alarm: their metric is read by the reconciler, never by alarm events.
        names = [r.alarm for r in self.spec.scaling.rules if r.alarm is not None] if self.spec.scaling else []
        if self.spec.rollout:
            names += self.spec.rollout.rollbackAlarms + self.spec.rollout.recycleAlarms
        return names

    @property
    def key(self) -> str:
        return service_key(self.metadata.cluster, self.metadata.service)


class TaskMetadata(StrictModel):
    cluster: ClusterName
    family: ServiceName


class Restart(StrictModel):
    maxRestarts: int = Field(default=3, ge=0, le=100)
    initialBackoffSeconds: int = Field(default=10, ge=0, le=86400)
    maxBackoffSeconds: int = Field(default=300, ge=0, le=86400)
    resetAfterSeconds: int = Field(default=600, ge=0, le=7 * 86400)

    @model_validator(mode="after")
    def _backoff(self) -> Restart:
        if self.initialBackoffSeconds > self.maxBackoffSeconds:
            raise ValueError("initialBackoffSeconds must not exceed maxBackoffSeconds")
        return self


class Network(StrictModel):
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-zA-Z]+$")]] = Field(min_length=1, max_length=16)
    securityGroups: list[Annotated[str, Field(pattern=r"^sg-[0-9a-zA-Z]+$")]] = Field(
        default_factory=list, max_length=5
    )
    assignPublicIp: Literal["ENABLED", "DISABLED"] = "DISABLED"


class TaskSpec(StrictModel):
    mode: Mode = "enforce"
    restart: Restart = Field(default_factory=Restart)
    network: Network | None = None


class TaskPolicy(StrictModel):
    """How failed standalone tasks of one family are re-run."""

    apiVersion: Literal["autopilot/v1"]
    kind: Literal["TaskPolicy"]
    metadata: TaskMetadata
    spec: TaskSpec

    @property
    def key(self) -> str:
        return family_key(self.metadata.cluster, self.metadata.family)


Policy = Annotated[ServicePolicy | TaskPolicy, Field(discriminator="kind")]


def service_key(cluster: str, service: str) -> str:
    return f"SVC#{cluster}#{service}"


def family_key(cluster: str, family: str) -> str:
    return f"TASK#{cluster}#{family}"


MODE_RANK: dict[str, int] = {"enforce": 0, "dry-run": 1, "off": 2}


def effective_mode(global_mode: str, policy_mode: str) -> str:
    """The stricter of the global switch and the policy's own mode (off > dry-run > enforce)."""
    return max(global_mode, policy_mode, key=lambda m: MODE_RANK[m])
