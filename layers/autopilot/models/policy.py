"""Policy documents: the user-facing format of contract section 2, validated with pydantic v2.

Every model forbids unknown keys so a typo (``minTask``) is an error, not a silently ignored field, and is
strict: ``minTasks: "2"`` is an error, never coerced (YAML ints, floats and booleans are already typed;
an int is accepted where a float is expected; percent adjustments such as ``"30%"`` are strings by design).

Cross-field checks (``minTasks <= maxTasks``, step gaps, an alarm named twice...) are written against the raw
input and run whatever else is wrong, so one validation reports every error of a document at once, each at the
field it is about. Pydantic's own "after" model validators would skip them as soon as any field failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeGuard, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from autopilot.models.place import ACCOUNT_PATTERN, REGION_PATTERN, Place, key_prefix, place_of

Mode = Literal["enforce", "dry-run", "off"]
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
# CloudWatch statistics: the five basic ones, percentiles and the trimmed/windsorized/percentile-rank forms.
_STAT = (r"^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?"
         r"|(tm|wm|tc|ts|pr)\(?[\d.:%]*\)?|TM|WM|TC|TS|PR|IQM)$")

# Resource names as ECS and CloudWatch accept them (kept loose: AWS is the final judge).
ClusterName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
ServiceName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
AlarmName = Annotated[str, Field(min_length=1, max_length=255)]
# Where a service lives (issue 13): both default to the hub's own account and region. Strings, so YAML never
# turns an account id into a number (and drops its leading zeros).
AccountId = Annotated[str, Field(pattern=ACCOUNT_PATTERN, description="12-digit AWS account id, in quotes")]
RegionName = Annotated[str, Field(pattern=REGION_PATTERN, description="AWS region, e.g. eu-west-1")]
# Strict scalars: "2" is not 2 and "true" is not true (YAML already types numbers and booleans; quotes make
# strings). A whole number is still accepted where a float is expected. Per field rather than the models'
# strict mode, which would also type their constructors for mypy (code builds nested models from dicts).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]  # where (relative to the model being checked) and why


# ------------------------------------------------------------------------------------ raw-input helpers
def _get(data: Any, name: str) -> Any:
    """A field of raw input: a mapping's key or an already-built model's attribute (None if absent)."""
    if isinstance(data, dict):
        return data.get(name)
    return getattr(data, name, None) if isinstance(data, BaseModel) else None


def _items(data: Any) -> list[Any]:
    return list(data) if isinstance(data, list | tuple) else []


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int  # bool is not a whole number of tasks


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _dotted(loc: Loc) -> str:
    """``("spec", "scaling", "rules", 0, "alarm")`` -> ``spec.scaling.rules[0].alarm``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _reraised(errors: Sequence[Any]) -> list[InitErrorDetails]:
    """Pydantic's errors as they were, to raise again beside the cross-field problems."""
    out: list[InitErrorDetails] = []
    for error in errors:
        detail: dict[str, Any] = {"type": error["type"], "loc": error["loc"], "input": error["input"]}
        if error.get("ctx"):
            detail["ctx"] = error["ctx"]
        out.append(detail)  # type: ignore[arg-type]
    return out


class StrictModel(BaseModel):
    """Base for policy models: unknown keys are errors, values are immutable once parsed.

    ``allow_inf_nan=False``: YAML's ``.nan``/``.inf`` would slip past every bound and gap check.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True,
                              allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _every_error(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Field validation and this model's cross-field checks, reported together."""
        problems = cls._problems(data) if isinstance(data, dict) else []
        if not problems:
            return handler(data)
        try:
            handler(data)
            found: list[Any] = []
        except ValidationError as exc:
            found = exc.errors()
        new: list[InitErrorDetails] = [
            {"type": "value_error", "loc": loc, "input": _value_at(data, loc), "ctx": {"error": ValueError(message)}}
            for loc, message in problems]
        try:
            error = ValidationError.from_exception_data(cls.__name__, [*_reraised(found), *new])
        except (KeyError, TypeError):  # an error type pydantic-core cannot rebuild: keep its words as they were
            kept: list[InitErrorDetails] = [
                {"type": PydanticCustomError(e["type"], e["msg"]),
                 "loc": e["loc"], "input": e["input"]} for e in found]
            error = ValidationError.from_exception_data(cls.__name__, [*kept, *new])
        raise error

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        """Cross-field checks of the raw input. Each looks only at values that are valid on their own
        (a string where a number belongs is the field's error, not the check's)."""
        return []


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        if isinstance(part, int):
            items = _items(data)
            data = items[part] if 0 <= part < len(items) else None
        else:
            data = _get(data, part)
    return data


class Step(StrictModel):
    """One step adjustment; bounds are relative to the alarm threshold (AAS semantics)."""

    lowerBound: Float | None = None
    upperBound: Float | None = None
    adjustment: Int | str = Field(description='Change in tasks (e.g. 2, -1) or a percent string ("30%", "-10%").')
    minAdjustmentMagnitude: Int | None = Field(default=None, ge=1)

    @field_validator("adjustment")
    @classmethod
    def _adjustment_form(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not _PERCENT.match(value.strip()):
            raise ValueError('a percent adjustment must look like "30%" or "-10%"')
        return value.strip() if isinstance(value, str) else value

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        problems: list[Problem] = []
        lower, upper = data.get("lowerBound"), data.get("upperBound")
        if _is_number(lower) and _is_number(upper) and lower >= upper:
            problems.append(((), "lowerBound must be below upperBound"))
        if data.get("minAdjustmentMagnitude") is not None and _is_int(data.get("adjustment")):
            problems.append((("minAdjustmentMagnitude",), "minAdjustmentMagnitude only applies to percent adjustments"))
        return problems

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
    period: Int = Field(default=60, description="Seconds: 1, 5, 10, 30 (high resolution) or a multiple of 60.")

    @field_validator("period")
    @classmethod
    def _period(cls, value: int) -> int:
        if value not in (1, 5, 10, 30) and (value <= 0 or value % 60):
            raise ValueError("period must be 1, 5, 10, 30 or a multiple of 60 seconds")
        return value


def _metric_key(metric: Any) -> str | None:
    """A stable name of a tracked metric (an alarm name or a metric spec, raw or built); None if unreadable."""
    if isinstance(metric, str):
        return f"alarm:{metric}"
    namespace, name, dimensions = _get(metric, "namespace"), _get(metric, "name"), _get(metric, "dimensions") or {}
    if not (isinstance(namespace, str) and isinstance(name, str) and isinstance(dimensions, dict)):
        return None
    stat, period = _get(metric, "stat") or "Average", _get(metric, "period") or 60
    dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items(), key=lambda kv: str(kv[0])))
    return f"{namespace}/{name}[{dims}]/{stat}/{period}"


class RatePolicy(StrictModel):
    """At most ``value`` tasks (Tasks) or percent of the capacity (Percent) per ``periodSeconds`` (HPA policies)."""

    type: Literal["Tasks", "Percent"]
    value: Int = Field(gt=0, le=100000)
    periodSeconds: Int = Field(default=60, ge=1, le=1800)


ROBUST_ONLY = ("scaleInPercentile", "scaleInHysteresis", "scaleOutNoiseDeviations", "holdAfterScaleOutSeconds",
               "predictive")


class Predictive(StrictModel):
    """A targetTracking rule's predictive lever: pre-scale from a forecast of the service's own demand.

    The reconciler fits daily and weekly seasonality, level and trend to ``historyDays`` of ``loadMetric``
    (one GetMetricData call per 500 queries per run, at most every ``refreshSeconds``), stores the fit in the
    state table, and each minute raises the desired count to what the forecast of the next
    ``taskStartSeconds`` needs (calibrated on the rule's own recent load). It never lowers the count, and it
    stays out while the forecast's recent error is above ``maxError``. While it is in, the forecast pre-scales
    ahead of the next rise, so the rule's scale-in needs less headroom of its own: its percentile moves the
    forecast's measured skill (1 - (error / a flat forecast's error)^2) of the way down to
    ``trustedScaleInPercentile``, never below what the newest ``datapointsToScaleOut`` loads need.
    """

    loadMetric: AlarmName | MetricSpec = Field(
        description="A metric proportional to the demand (e.g. the ALB's RequestCount, Sum): not a utilization.")
    historyDays: Int = Field(default=14, ge=2, le=14, description="days of history fitted (CloudWatch keeps "
                                                                    "5-minute data for 63 days)")
    refreshSeconds: Int = Field(default=3600, ge=300, le=86400, description="how often the fit is refreshed")
    taskStartSeconds: Int = Field(default=120, ge=0, le=1800, description="how far ahead to pre-scale: the time "
                                                                          "from a scale-out to new tasks serving")
    maxError: Float = Field(default=0.3, gt=0, le=2, description="quality gate: the forecast is used only while "
                                                                 "its recent relative error is at most this")
    trustedScaleInPercentile: Float = Field(
        default=55, ge=50, le=100,
        description="robust scale-in percentile with a perfect forecast: while the forecast is usable, "
                    "scaleInPercentile moves its skill's share of the way down to this (100: never lower it)")


class TargetTracking(StrictModel):
    """Keep a metric near ``targetValue`` the way Kubernetes' HPA does, evaluated every minute by the reconciler.

    ``metric`` is either an alarm name (the rule reads that alarm's metric, query and period; the alarm's
    state is irrelevant) or a metric spec mapping.
    """

    metric: AlarmName | MetricSpec
    targetValue: Float = Field(gt=0)
    tolerance: Float | None = Field(default=None, ge=0, lt=1, description="default 0.15 (robust) or 0.1 (newest)")
    scaleInStabilizationSeconds: Int | None = Field(default=None, ge=0, le=3600,
                                                    description="default 900 (robust) or 300 (newest)")
    # Empty = no rate limit: HPA's defaults (100 % per 15 s) are no limit at the reconciler's one-minute
    # cadence; maxTasks, the tolerance and scale-in stabilization are the brakes unless the user adds some.
    scaleOutPolicies: list[RatePolicy] = Field(default_factory=list, max_length=10)
    scaleInPolicies: list[RatePolicy] = Field(default_factory=list, max_length=10)
    scaleOutSelectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    scaleInSelectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    datapointsToScaleOut: Int | None = Field(default=None, ge=1, le=15,
                                             description="default 3 (robust: their mean) or 1 (newest)")
    # Asymmetric band: scale in only below targetValue x (1 - scaleInTolerance). Default: ``tolerance``.
    scaleInTolerance: Float | None = Field(default=None, ge=0, lt=1)
    # Trend-aware scale-out (0 = off): forecast the metric this many seconds past its newest datapoint with a
    # least-squares line through the newest ``trendDatapoints`` (ignored without a lookahead); a higher forecast
    # stands in for the newest datapoint when deciding to scale out (never to scale in). A good value: task
    # start time + metric delay.
    scaleOutLookaheadSeconds: Int = Field(default=0, ge=0, le=900)
    trendDatapoints: Int = Field(default=3, ge=2, le=15)
    # How the rule sizes (issue 12). ``robust`` (the default): the rule keeps the load its metric implies (in tasks
    # at the target) over a window; it scales out on a sustained breach (the mean of the newest datapoints beyond
    # the band) or one datapoint far beyond the noise, and scales in to what a high percentile of the window needs,
    # only when that clears one task fewer by a margin of the window's own noise. ``newest``: HPA's rule on the
    # newest datapoint (the behaviour before issue 12). Fields marked robust only apply to ``robust``.
    sizing: Literal["robust", "newest"] = Field(
        default="robust", description="robust (default): a window of loads, sustained or beyond-the-noise scale-out, "
                                      "percentile scale-in with noise hysteresis; newest: HPA on the newest datapoint")
    scaleInPercentile: Float | None = Field(default=None, ge=50, le=100, description="robust: default 80")
    scaleInHysteresis: Float | None = Field(default=None, ge=0, le=5, description="robust: default 1")
    scaleOutNoiseDeviations: Float | None = Field(default=None, ge=0, le=20, description="robust: default 3")
    holdAfterScaleOutSeconds: Int | None = Field(default=None, ge=0, le=3600, description="robust: default 300")
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
    def band_tolerance(self) -> float:
        """The band around the target: ``tolerance``, default 0.15 (robust) or 0.1 (newest, as HPA).

        A robust rule sizes on a window, not on one datapoint, so a wider band costs it less reaction than
        it saves in actions (issue 12's benchmark: half the scaling actions, the same overload)."""
        if self.tolerance is not None:
            return self.tolerance
        return 0.15 if self.sizing == "robust" else 0.1

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
        return 1.0 if self.scaleInHysteresis is None else self.scaleInHysteresis

    @property
    def out_noise_deviations(self) -> float:
        return 3.0 if self.scaleOutNoiseDeviations is None else self.scaleOutNoiseDeviations

    @property
    def hold_after_out(self) -> int:
        return 300 if self.holdAfterScaleOutSeconds is None else self.holdAfterScaleOutSeconds

    @cached_property
    def key(self) -> str:
        """A stable name for the rule's memory in the service state (one rule per metric)."""
        key = _metric_key(self.metric)
        assert key is not None  # a validated metric always has one
        return key

    @cached_property
    def longest_rate_period(self) -> int:
        """Seconds of desired-count changes the rate limits need to remember (0: no rate limit)."""
        return max((p.periodSeconds for p in (*self.scaleOutPolicies, *self.scaleInPolicies)), default=0)


RULE_KINDS = ("steps", "targetValue", "exactCapacity", "targetTracking")


class ScalingRule(StrictModel):
    """What to do for one signal: an alarm with exactly one of steps, targetValue, exactCapacity, or a
    targetTracking rule (no alarm: the reconciler reads its metric every minute)."""

    alarm: AlarmName | None = None
    steps: list[Step] | None = Field(default=None, min_length=1)
    targetValue: Float | None = Field(default=None, gt=0)
    exactCapacity: Int | None = Field(default=None, ge=0)
    targetTracking: TargetTracking | None = None

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        kinds = [k for k in RULE_KINDS if data.get(k) is not None]
        if len(kinds) != 1:
            return [((), "a rule needs exactly one of steps, targetValue, exactCapacity, targetTracking")]
        if kinds == ["targetTracking"] and data.get("alarm") is not None:
            return [(("alarm",), "a targetTracking rule has no alarm: to track an alarm's metric, "
                                 "name the alarm in targetTracking.metric")]
        if kinds != ["targetTracking"] and data.get("alarm") is None:
            return [(("alarm",), "required field is missing (every rule but targetTracking is driven by an alarm)")]
        if kinds == ["steps"]:
            return [((), message) for message in _step_problems(_items(data["steps"]))]
        return []


def _step_problems(steps: list[Any]) -> list[str]:
    """AAS rules: no overlap, no gap, at most one open lower and one open upper bound (only for readable steps)."""
    bounds: list[tuple[Float | None, Float | None]] = []
    for step in steps:
        lower, upper = _get(step, "lowerBound"), _get(step, "upperBound")
        if not isinstance(step, dict | Step) or not all(b is None or _is_number(b) for b in (lower, upper)):
            return []  # the step's own fields are wrong: that is the error to fix first
        bounds.append((None if lower is None else float(lower), None if upper is None else float(upper)))
    if not bounds:
        return []
    if sum(1 for lower, _ in bounds if lower is None) > 1:
        return ["at most one step may have no lowerBound"]
    if sum(1 for _, upper in bounds if upper is None) > 1:
        return ["at most one step may have no upperBound"]
    if len(bounds) == 1 and bounds[0] == (None, None):
        return ["a single step needs a lowerBound or an upperBound"]
    ordered = sorted(bounds, key=lambda b: float("-inf") if b[0] is None else b[0])
    for (_, before_upper), (after_lower, _) in pairwise(ordered):
        if before_upper is None or after_lower is None:
            return ["steps overlap: an open bound must be the first or the last step"]
        if before_upper < after_lower:
            return [f"steps leave a gap between {before_upper} and {after_lower}"]
        if before_upper > after_lower:
            return [f"steps overlap between {after_lower} and {before_upper}"]
    return []


class Scaling(StrictModel):
    minTasks: Int = Field(ge=0)
    maxTasks: Int = Field(ge=0)
    scaleOutCooldownSeconds: Int = Field(default=300, ge=0, le=86400)
    scaleInCooldownSeconds: Int = Field(default=300, ge=0, le=86400)
    rules: list[ScalingRule] = Field(default_factory=list)

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        problems: list[Problem] = []
        low = data["minTasks"] if _is_int(data.get("minTasks")) else None
        high = data["maxTasks"] if _is_int(data.get("maxTasks")) else None
        if low is not None and high is not None and low > high:
            problems.append(((), f"minTasks ({low}) must not exceed maxTasks ({high})"))
            low = high = None  # no range to check exactCapacity against
        tracked: dict[str, int] = {}
        for index, rule in enumerate(_items(data.get("rules"))):
            exact = _get(rule, "exactCapacity")
            if low is not None and high is not None and _is_int(exact) and not low <= exact <= high:
                problems.append((("rules", index, "exactCapacity"),
                                 f"exactCapacity ({exact}) is outside [minTasks, maxTasks] = [{low}, {high}]"))
            key = _metric_key(_get(_get(rule, "targetTracking"), "metric"))
            if key is not None and key in tracked:
                problems.append((("rules", index, "targetTracking", "metric"),
                                 f"this metric is already tracked by rules[{tracked[key]}]: each metric may be "
                                 "tracked by one targetTracking rule per policy"))
            elif key is not None:
                tracked[key] = index
        return problems


class CrashLoop(StrictModel):
    failures: Int = Field(default=3, ge=1, le=1000)
    windowSeconds: Int = Field(default=600, ge=10, le=86400)
    action: Literal["rollback", "notify"] = "rollback"


class Oom(StrictModel):
    growPercent: Int = Field(default=25, ge=1, le=400)
    maxMemoryMiB: Int = Field(default=8192, ge=128, le=122880)


class SpotFallback(StrictModel):
    interruptions: Int = Field(default=2, ge=1, le=1000)
    windowSeconds: Int = Field(default=300, ge=10, le=86400)
    holdSeconds: Int = Field(default=1800, ge=60, le=7 * 86400)
    onDemandProvider: str = Field(default="FARGATE", min_length=1, max_length=255)


class Healing(StrictModel):
    crashLoop: CrashLoop | None = None
    oom: Oom | None = None
    spotFallback: SpotFallback | None = None


class Rollout(StrictModel):
    rollbackOnDeploymentFailure: Bool = True
    rollbackOnImagePullFailure: Bool = True
    rollbackAlarms: list[AlarmName] = Field(default_factory=list)
    bakeSeconds: Int = Field(default=1800, ge=0, le=7 * 86400)
    recycleAlarms: list[AlarmName] = Field(default_factory=list)


class PlacedMetadata:
    """Where the target lives: ``account`` and ``region`` default to the hub's own (the stack's)."""

    if TYPE_CHECKING:  # the models declare the fields (in the order they are documented)
        account: str | None
        region: str | None

    @property
    def place(self) -> Place | None:
        """The place as named (None: the hub's own). A half-named place ("-" for the missing part) only exists
        before ``placed`` filled it in from the hub's own."""
        if self.account is None and self.region is None:
            return None
        return Place(self.account or "-", self.region or "-")


_ACCOUNT_DOC = "AWS account of the cluster (default: the hub's own)"
_REGION_DOC = "AWS region of the cluster (default: the hub's own)"


class ServiceMetadata(PlacedMetadata, StrictModel):
    cluster: ClusterName
    service: ServiceName
    account: AccountId | None = Field(default=None, description=_ACCOUNT_DOC)
    region: RegionName | None = Field(default=None, description=_REGION_DOC)


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

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        """Each alarm once per policy (rules, rollback and recycle alarms together): reported at every repeat."""
        spec = data.get("spec")
        named: list[tuple[Loc, Any]] = [
            (("spec", "scaling", "rules", i, "alarm"), _get(rule, "alarm"))
            for i, rule in enumerate(_items(_get(_get(spec, "scaling"), "rules")))]
        rollout = _get(spec, "rollout")
        for field in ("rollbackAlarms", "recycleAlarms"):
            named += [(("spec", "rollout", field, i), name) for i, name in enumerate(_items(_get(rollout, field)))]
        first: dict[str, Loc] = {}
        problems: list[Problem] = []
        for loc, name in named:
            if not isinstance(name, str):
                continue
            if name in first:
                problems.append((loc, f"alarm {name!r} is already used at {_dotted(first[name])}: each alarm may "
                                      "appear once per policy (rules, rollbackAlarms and recycleAlarms together)"))
            else:
                first[name] = loc
        return problems

    def alarm_names(self) -> list[str]:
        """Every alarm the policy reacts to (rules, rollback and recycle alarms), in order."""
        # targetTracking rules have no alarm: their metric is read by the reconciler, never by alarm events.
        names = [r.alarm for r in self.spec.scaling.rules if r.alarm is not None] if self.spec.scaling else []
        if self.spec.rollout:
            names += self.spec.rollout.rollbackAlarms + self.spec.rollout.recycleAlarms
        return names

    @property
    def key(self) -> str:
        return service_key(self.metadata.cluster, self.metadata.service, self.metadata.place)

    def place_in(self, home: Place) -> Place:
        return place_of(self.metadata.account, self.metadata.region, home)


class TaskMetadata(PlacedMetadata, StrictModel):
    cluster: ClusterName
    family: ServiceName
    account: AccountId | None = Field(default=None, description=_ACCOUNT_DOC)
    region: RegionName | None = Field(default=None, description=_REGION_DOC)


class Restart(StrictModel):
    maxRestarts: Int = Field(default=3, ge=0, le=100)
    initialBackoffSeconds: Int = Field(default=10, ge=0, le=86400)
    maxBackoffSeconds: Int = Field(default=300, ge=0, le=86400)
    resetAfterSeconds: Int = Field(default=600, ge=0, le=7 * 86400)

    @classmethod
    def _problems(cls, data: dict[str, Any]) -> list[Problem]:
        initial, most = data.get("initialBackoffSeconds", 10), data.get("maxBackoffSeconds", 300)
        if _is_int(initial) and _is_int(most) and initial > most:
            return [((), "initialBackoffSeconds must not exceed maxBackoffSeconds")]
        return []


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
        return family_key(self.metadata.cluster, self.metadata.family, self.metadata.place)

    def place_in(self, home: Place) -> Place:
        return place_of(self.metadata.account, self.metadata.region, home)


Policy = Annotated[ServicePolicy | TaskPolicy, Field(discriminator="kind")]


def service_key(cluster: str, service: str, place: Place | None = None) -> str:
    """``SVC#cluster#service`` at home (the key a single-account deployment always had), else with the place."""
    return f"{key_prefix('SVC', place)}{cluster}#{service}"


def family_key(cluster: str, family: str, place: Place | None = None) -> str:
    return f"{key_prefix('TASK', place)}{cluster}#{family}"


def placed[P: ServicePolicy | TaskPolicy](policy: P, home: Place) -> P:
    """The policy as it is stored: its place filled in from ``home`` where it names only half of one, and left
    out where it is ``home`` itself, so a policy naming the hub's own account has the key of one naming none."""
    meta = policy.metadata
    if meta.account is None and meta.region is None:
        return policy
    place = place_of(meta.account, meta.region, home)
    update = {"account": None, "region": None} if place == home else {"account": place.account,
                                                                      "region": place.region}
    return cast(P, policy.model_copy(update={"metadata": meta.model_copy(update=update)}))


MODE_RANK: dict[str, int] = {"enforce": 0, "dry-run": 1, "off": 2}


def effective_mode(global_mode: str, policy_mode: str) -> str:
    """The stricter of the global switch and the policy's own mode (off > dry-run > enforce)."""
    return max(global_mode, policy_mode, key=lambda m: MODE_RANK[m])
