"""`make soak`: a long, seeded simulation of an estate running the real handlers, checking invariants as it goes.

    python -m bench.soak.run --services 500 --families 50 --hours 24 --seed 11    (make soak)
    python -m bench.soak.run --small                                                (inside make test)

What runs is the production code: ``functions/*/app.py`` ``lambda_handler`` (Powertools logger, metrics and
idempotency included), the use cases, the pure decisions, ``autopilot.store`` and ``autopilot.aws``. Only the
boto3 clients are replaced (``autopilot.aws.clients.use_factory``) by ``bench/soak/aws.py``: in-process
services with AWS's semantics, limits and faults, below which ``bench/soak/world.py`` plays ECS, CloudWatch,
SNS and SQS on a simulated clock. The invariants are in ``bench/soak/checks.py``.

The last line is ``soak: N services, M events, F faults injected, violations V`` (exit 1 if V > 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import types
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the handlers' logs: one JSON line per decision
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ecs-autopilot")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EcsAutopilot")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.soak.aws import ACCOUNT, REGION, Aws, FaultRates, Outage  # noqa: E402
from bench.soak.checks import INVARIANTS, Checks  # noqa: E402
from bench.soak.estate import ON_DEMAND, SPOT_STRATEGY, Estate, generate  # noqa: E402
from bench.soak.runtime import Runtime  # noqa: E402
from bench.soak.world import Alarm, Clock, CloudWatch, Ecs, Queue, Sns, Sqs, World  # noqa: E402

START = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
TABLE = "soak-StateTable"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:soak-NotificationTopic"
QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/soak-RestartQueue"
SHARD_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/soak-ReconcileShardQueue"
FUNCTIONS = ("scaler", "healer", "rollout", "restarter", "reconciler")


# ------------------------------------------------------------------------------------------ set-up
def _load_handler(function: str) -> types.ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_soak_{function}_app", ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _SimDatetime(datetime):
    """``datetime.now()`` for Powertools idempotency: the simulated time of the invocation."""

    clock: Callable[[], datetime] = staticmethod(lambda: START)  # type: ignore[assignment]

    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        moment = cls.clock()
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


def _patch_runtime(aws: Aws, checks: Checks) -> None:
    """Powertools' idempotency reads wall-clock time; its metrics print EMF: both follow the simulation here."""
    import datetime as real_datetime

    from aws_lambda_powertools.metrics import base as metrics_base
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch
    from aws_lambda_powertools.utilities.idempotency import base as idem_base
    from aws_lambda_powertools.utilities.idempotency.persistence import base as persistence_base
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord, dynamodb

    _SimDatetime.clock = staticmethod(aws.now)  # type: ignore[assignment]
    shim = types.SimpleNamespace(datetime=_SimDatetime, timedelta=real_datetime.timedelta, date=real_datetime.date,
                                 time=real_datetime.time, timezone=real_datetime.timezone)
    for module in (idem_base, persistence_base, datarecord, dynamodb):
        module.dt = shim  # type: ignore[attr-defined]

    def emf(text: str = "", *_: Any, **__: Any) -> None:
        if text.startswith('{"_aws"'):
            checks.on_metrics(json.loads(text))

    for module in (metrics_base, cloudwatch):  # type: ignore[assignment]
        module.print = emf  # type: ignore[attr-defined]
    warnings.filterwarnings("ignore")


class Soak:
    def __init__(self, *, services: int, families: int, hours: float, seed: int, faults: bool = True,
                 plant: str | None = None, progress: bool = True, deploys_per_day: float = 2.0,
                 bad_revisions: tuple[int, int, int, int] = (85, 6, 5, 4)) -> None:
        self.hours, self.seed, self.progress = hours, seed, progress
        self.deploys_per_day = deploys_per_day
        self.bad_revisions = bad_revisions  # weights of healthy, crash, oom, image in user deployments
        self.rng = random.Random(seed)
        self.estate: Estate = generate(random.Random(seed), services, families, hours)
        self.clock = Clock(START)
        self.aws = Aws(random.Random(seed + 1), START, FaultRates() if faults else FaultRates(0, 0, 0, 0, 0, 0))
        self.aws.world_now = lambda: self.clock.now
        self.world = World(self.aws, self.clock, random.Random(seed + 2))
        self.aws.services = {"ecs": Ecs(self.world), "cloudwatch": CloudWatch(self.world), "sns": Sns(self.world),
                             "sqs": Sqs(self.world)}
        from bench.soak.aws import DynamoDB

        self.table = DynamoDB(TABLE, self.aws)
        self.table.keep_audit = False
        self.aws.services["dynamodb"] = self.table
        self.queue = Queue(self.world, QUEUE)
        self.world.queues[QUEUE] = self.queue
        self.shard_queue = Queue(self.world, SHARD_QUEUE, visibility=720, max_receives=5)
        self.world.queues[SHARD_QUEUE] = self.shard_queue
        self.faults_enabled = faults
        self.plant = plant
        self.wall_started = time.perf_counter()

    # ---------------------------------------------------------------- wiring the real code
    def _wire(self) -> tuple[Any, dict[str, Any]]:
        from autopilot import settings as settings_module
        from autopilot import wiring
        from autopilot.aws.clients import use_factory

        use_factory(self.aws.factory)
        config = settings_module.Settings(table=TABLE, topic_arn=TOPIC, restart_queue_url=QUEUE, mode="enforce",
                                          managed_clusters=self.estate.clusters, home_account=ACCOUNT,
                                          home_region=REGION, reconcile_queue_url=SHARD_QUEUE)
        deps = wiring.build(config)

        def sleep(seconds: float) -> None:
            if self.aws.invocation is not None:
                self.aws.invocation.elapsed += seconds

        deps.clock = self.aws.now
        deps.sleep = sleep
        deps.store.sleep = sleep
        if deps.taskdefs is not None:
            deps.taskdefs.sleep = sleep  # type: ignore[attr-defined]
        handlers = {f: _load_handler(f) for f in FUNCTIONS}
        for module in handlers.values():
            module.dependencies = lambda: deps  # type: ignore[attr-defined]
        _plant(self.plant)
        return deps, handlers

    # ---------------------------------------------------------------- the estate
    def _build(self, deps: Any) -> dict[str, str]:
        world, rng = self.world, self.rng
        self.aws.enabled = False
        service_of_alarm: dict[str, str] = {}
        for plan in self.estate.services:
            td = world.register(plan.name, "healthy")
            desired = max(plan.min_tasks, min(plan.max_tasks, round(plan.demand(START)(START) * 60 / 55)))
            if plan.poisoned:
                desired = plan.min_tasks  # it wants to scale out every minute, and never may
            service = world.add_service(plan.cluster, plan.name, desired, td,
                                        SPOT_STRATEGY if plan.spot else ON_DEMAND, breaker=plan.breaker,
                                        breaker_rollback=plan.breaker and rng.random() < 0.7)
            service.poisoned = plan.poisoned
            world.demand[(plan.cluster, plan.name)] = plan.demand(START)
            for suffix, threshold, comparison, periods in (("high", 70.0, "GreaterThanThreshold", 2),
                                                           ("low", 30.0, "LessThanThreshold", 5)):
                name = f"{plan.name}-cpu-{suffix}"
                world.alarms[name] = Alarm(name=name, service=service, threshold=threshold, comparison=comparison,
                                           to_alarm=periods, updated=START)
                service_of_alarm[name] = f"SVC#{plan.cluster}#{plan.name}"
            deps.store.put_policy(plan.policy(), START)
        for family in self.estate.families:
            world.register(family.family, "healthy")
            world.family_failure[family.family] = family.failure_rate
            deps.store.put_policy(family.policy(), START)
        self.aws.enabled = True
        return service_of_alarm

    def _schedule(self, runtime: Runtime, checks: Checks) -> None:
        clock, world, rng = self.clock, self.world, self.rng
        end = START + timedelta(hours=self.hours)
        steps = {f"SVC#{p.cluster}#{p.name}" for p in self.estate.services if p.kind == "steps"}
        scaling_alarms = {f"{p.name}-cpu-{s}": f"SVC#{p.cluster}#{p.name}" for p in self.estate.services
                          if p.kind == "steps" and p.mode != "off" for s in ("high", "low")}

        def every(seconds: float, offset: float, action: Callable[[], None]) -> None:
            def tick() -> None:
                action()
                if clock.now + timedelta(seconds=seconds) <= end:
                    clock.after(seconds, tick)

            clock.at(START + timedelta(seconds=offset), tick)

        every(60, 0, world.evaluate)
        expected: dict[str, set[str]] = {}

        def reconcile() -> None:
            expected["keys"] = {key for name, key in scaling_alarms.items() if world.alarms[name].state == "ALARM"}
            runtime.reconcile()

        runtime.on_reconciled.append(
            lambda reads, died, inv, shard: checks.reconciled(reads, died, _in_shard(expected["keys"], shard),
                                                              _in_shard(steps, shard)))
        every(60, 30, reconcile)
        every(60, 45, lambda: checks.minute(clock.now))
        if self.faults_enabled:
            for hour in range(int(self.hours)):  # outages: a few minutes of one service, now and then
                if rng.random() < 0.25:
                    service = rng.choice(["sns", "dynamodb", "ecs", "sns"])
                    start = self.aws.seconds(START) + hour * 3600 + rng.uniform(0, 3000)
                    length = rng.uniform(120, 300)
                    self.aws.outages.append(Outage(service, start, start + length,
                                                   rng.choice(["500", "503", "throttle"])))
        for plan in self.estate.services:  # users deploy; some revisions are bad
            for _ in range(_poisson(rng, self.deploys_per_day * self.hours / 24)):
                at = START + timedelta(seconds=rng.uniform(600, self.hours * 3600))
                clock.at(at, partial(self._user_deploys, plan))
            if rng.random() < 0.1 * self.hours / 24 and plan.kind != "healing-only":  # an operator's manual change
                at = START + timedelta(seconds=rng.uniform(600, self.hours * 3600))
                clock.at(at, partial(self._operator_drift, plan))
        for hour in range(int(self.hours)):
            if rng.random() < 0.5:
                clock.at(START + timedelta(hours=hour, minutes=rng.uniform(0, 59)),
                         lambda: world.spot_wave(rng.uniform(0.1, 0.4)))
        for family in self.estate.families:
            for _ in range(_poisson(rng, self.hours * 1.0)):
                at = START + timedelta(seconds=rng.uniform(0, self.hours * 3600))
                clock.at(at, partial(self._user_job, family))

    def _user_job(self, family: Any) -> None:
        self.world.run_standalone(family.cluster, family.family, "user")

    def _user_deploys(self, plan: Any) -> None:
        service = self.world.services[(plan.cluster, plan.name)]
        behaviour = self.rng.choices(["healthy", "crash", "oom", "image"], weights=self.bad_revisions)[0]
        current = self.world.taskdefs[service.primary.td]
        memory = int(current.body.get("memory", 1024))
        needs = int(memory * self.rng.choice([1.15, 1.2, 6.0])) if behaviour == "oom" else 0
        td = self.world.register(plan.name, behaviour, memory=memory, cpu=int(current.body.get("cpu", 512)),
                                 needs_memory=needs)
        self.world.deploy(service, td.arn)

    def _operator_drift(self, plan: Any) -> None:
        service = self.world.services[(plan.cluster, plan.name)]
        self.world.set_desired(service, plan.max_tasks + self.rng.randint(1, 5) if self.rng.random() < 0.5 else 0)

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        deps, handlers = self._wire()
        service_of_alarm = self._build(deps)
        runtime = Runtime(self.aws, self.world, self.clock, random.Random(self.seed + 3), handlers, service_of_alarm)
        runtime.attach_queue(self.queue)
        runtime.attach_shard_queue(self.shard_queue)
        checks = Checks(self.estate, self.world, self.aws, runtime.ledger)
        self.table.on_write.append(checks.on_write)
        _patch_runtime(self.aws, checks)
        self._schedule(runtime, checks)
        end = START + timedelta(hours=self.hours)
        bar = _Progress(end, checks, runtime, self.aws, enabled=self.progress)
        self.clock.run_until(end + timedelta(minutes=30), on_step=bar.step)  # 30 min to drain retries and restarts
        checks.finish()
        bar.close()
        return self._report(runtime, checks)

    def _report(self, runtime: Runtime, checks: Checks) -> dict[str, Any]:
        ledger = runtime.ledger
        runs = ledger.reconciler_runs
        injected = {k: v for k, v in self.aws.faults.items() if not k.endswith(":rate-limited")}
        return {
            "seed": self.seed, "services": len(self.estate.services), "families": len(self.estate.families),
            "clusters": len({p.cluster for p in self.estate.services}), "hours": self.hours,
            "events": sum(ledger.delivered.values()) + len(ledger.foreign), "delivered": dict(ledger.delivered),
            "restart_messages": sum(1 for k in ledger.succeeded if k.startswith("sqs:")),
            "invocation_failures": dict(ledger.failures), "cut_off": dict(ledger.cut_off),
            "dead_letters": len(self.world.dead_letters), "concurrent": ledger.nested,
            "faults": sum(injected.values()), "fault_kinds": dict(sorted(injected.items())),
            "rate_limited": sum(v for k, v in self.aws.faults.items() if k.endswith(":rate-limited")),
            "calls": sum(self.aws.calls.values()), "notifications": len(self.world.published),
            "metrics": {k: checks.metrics[k] for k in ("ActionFailed", "NotificationFailed", "InvalidEvent")},
            "reconciler": _run_stats(runs), "runs_judged": checks.runs_judged,
            "largest_item": self.table.largest, "registered": len(self.world.registered),
            "violations": sum(checks.violations.values()),
            "by_invariant": {name: checks.violations.get(name, 0) for name in INVARIANTS},
            "examples": {k: v for k, v in checks.examples.items()},
            "wall_seconds": round(time.perf_counter() - self.wall_started, 1),
        }


def _run_stats(all_runs: list[Any]) -> dict[str, Any]:
    """Per reconciler invocation: the scheduled runs (or, when a run is fanned out, its shards)."""
    runs = [r for r in all_runs if r.kind in ("run", "shard")]
    if not runs:
        return {}
    sims = sorted(r.simulated for r in runs)
    operations: Counter[str] = Counter()
    for run in runs:
        operations.update(run.by_operation)
    minutes = len({r.at.replace(second=0, microsecond=0) for r in all_runs}) or 1
    return {"runs": len(runs), "ok": sum(1 for r in runs if r.ok),
            "fanned_out": sum(1 for r in all_runs if r.kind == "fan-out"),
            "stale_shards": sum(1 for r in all_runs if r.kind == "stale"),
            "invocations_per_minute": round(len(all_runs) / minutes, 1),
            "calls_per_run_by_operation": {k: round(v / len(runs), 1) for k, v in operations.most_common()},
            "real_s_max": round(max(r.real for r in runs), 3),
            "calls_median": statistics.median(r.calls for r in runs), "calls_max": max(r.calls for r in runs),
            "simulated_s_median": round(statistics.median(sims), 2),
            "simulated_s_p95": round(sims[int(0.95 * (len(sims) - 1))], 2), "simulated_s_max": round(sims[-1], 2),
            "real_s_median": round(statistics.median(r.real for r in runs), 3)}


def _in_shard(keys: set[str], shard: tuple[int, int] | None) -> set[str]:
    if shard is None:
        return keys
    from autopilot.usecases.shards import shard_of

    return {k for k in keys if shard_of(k, shard[1]) == shard[0]}


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0) if mean > 0 else float("inf")
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


# ------------------------------------------------------------------------------------------ planted bugs
def _plant(bug: str | None) -> None:
    """A known bug, to prove the soak sees it (tests/unit/test_soak.py): the soak must report a violation."""
    if bug is None:
        return
    if bug == "no-isolation":  # finding 1: one failing service stops the reconciler's run
        from autopilot.usecases import reconcile, runner

        real = runner.context

        def context(deps: Any, *, source: str, event_id: str, isolate: bool = False) -> Any:
            return real(deps, source=source, event_id=event_id, isolate=False)

        reconcile.context = context  # type: ignore[assignment]
    elif bug == "register-twice":  # finding 8: an executor that registers a derived revision twice
        from autopilot.aws import taskdefs

        real_register = taskdefs.TaskDefinitions.register_derived

        def twice(self: Any, request: dict[str, Any], family: str, derivation_id: str, newer_than: int | None) -> Any:
            real_register(self, request, family, derivation_id, newer_than)
            return real_register(self, request, family, derivation_id, newer_than)

        taskdefs.TaskDefinitions.register_derived = twice  # type: ignore[method-assign]
    elif bug == "no-clamp":  # scaling that ignores maxTasks
        from autopilot.decide import scaling

        scaling.clamp = lambda value, scaling_policy: max(scaling_policy.minTasks, value)  # type: ignore[assignment]
    elif bug == "no-budget":  # finding 3: state items grow without a byte budget
        from autopilot.models import state_budget

        state_budget.STATE_BUDGET_BYTES = 10**9
        from autopilot.store import table

        table.fit = lambda state, budget=10**9: (state, [])  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown planted bug {bug!r}")


# ------------------------------------------------------------------------------------------ output
class _Progress:
    def __init__(self, end: datetime, checks: Checks, runtime: Runtime, aws: Aws, enabled: bool) -> None:
        self.end, self.checks, self.runtime, self.aws, self.enabled = end, checks, runtime, aws, enabled
        self.started = time.perf_counter()
        self.shown = -1

    def step(self, now: datetime) -> None:
        if not self.enabled:
            return
        done = min(1.0, (now - START) / (self.end - START))
        percent = int(done * 100)
        if percent == self.shown:
            return
        self.shown = percent
        bar = "#" * (percent // 4) + "." * (25 - percent // 4)
        events = sum(self.runtime.ledger.delivered.values())
        sys.stderr.write(f"\r[{bar}] {percent:3d}%  {(now - START).total_seconds() / 3600:5.1f} h simulated  "
                         f"{events} events  {sum(self.aws.faults.values())} faults  "
                         f"{sum(self.checks.violations.values())} violations  "
                         f"{time.perf_counter() - self.started:5.0f} s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def table(report: dict[str, Any]) -> str:
    rec = report["reconciler"]
    rows = [
        ("estate", f"{report['services']} services in {report['clusters']} clusters, {report['families']} "
                   f"standalone families, {report['hours']} simulated hours, seed {report['seed']}"),
        ("events delivered", ", ".join(f"{k} {v}" for k, v in sorted(report["delivered"].items()))
         + f"; restart messages {report['restart_messages']}"),
        ("AWS calls", f"{report['calls']} ({report['rate_limited']} attempts throttled by the rate limits)"),
        ("faults injected", ", ".join(f"{k} {v}" for k, v in report["fault_kinds"].items())),
        ("invocations failed", ", ".join(f"{k} {v}" for k, v in sorted(report["invocation_failures"].items()))
         + f" (cut off: {sum(report['cut_off'].values())}); concurrent {report['concurrent']}"),
        ("dead letters", str(report["dead_letters"])),
        ("notifications", f"{report['notifications']} published; NotificationFailed "
                          f"{report['metrics']['NotificationFailed']}; "
                          f"ActionFailed {report['metrics']['ActionFailed']}"),
        ("reconciler runs", f"{rec.get('runs', 0)} ({rec.get('ok', 0)} ok, {report['runs_judged']} judged): calls/run "
                            f"median {rec.get('calls_median')} max {rec.get('calls_max')}; simulated s/run median "
                            f"{rec.get('simulated_s_median')} p95 {rec.get('simulated_s_p95')} max "
                            f"{rec.get('simulated_s_max')}"),
        ("largest item", f"{report['largest_item']} bytes"),
        ("derived revisions", str(report["registered"])),
    ]
    rows += [(f"invariant: {name}", "ok" if count == 0 else f"{count} VIOLATIONS")
             for name, count in report["by_invariant"].items()]
    rows.append(("wall time", f"{report['wall_seconds']} s"))
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'':{width}} | |", f"|{'-' * (width + 2)}|---|"]
    lines += [f"| {k:{width}} | {v} |" for k, v in rows]
    for name, examples in report["examples"].items():
        lines += [f"  {name}: {e}" for e in examples]
    return "\n".join(lines)


def summary_line(report: dict[str, Any]) -> str:
    return (f"soak: {report['services']} services, {report['events']} events, {report['faults']} faults injected, "
            f"violations {report['violations']}")


def scale(services: int, minutes: int, seed: int) -> dict[str, Any]:
    """The reconciler's one-minute run at ``services`` managed services: AWS latencies simulated, the API rate
    limits on, no injected faults (what a run costs, not what an outage does to it)."""
    soak = Soak(services=services, families=0, hours=minutes / 60, seed=seed, faults=False, progress=False)
    report = soak.run()
    runs = report["reconciler"]
    return {"services": services, "minutes": minutes, **runs, "rate_limited": report["rate_limited"]}


def scale_table(results: list[dict[str, Any]]) -> str:
    lines = ["| managed services | reconciler invocations a minute | AWS calls per invocation (median / max) "
             "| simulated s per invocation (median / p95 / max) | CPU s per invocation (median / max) "
             "| throttled attempts |", "|---:|---:|---|---|---|---:|"]
    for r in results:
        lines.append(f"| {r['services']} | {r['invocations_per_minute']} | "
                     f"{r['calls_median']:.0f} / {r['calls_max']} | "
                     f"{r['simulated_s_median']} / {r['simulated_s_p95']} / {r['simulated_s_max']} | "
                     f"{r['real_s_median']} / {r['real_s_max']} | {r['rate_limited']} |")
    for r in results:
        top = ", ".join(f"{k} {v}" for k, v in list(r["calls_per_run_by_operation"].items())[:8])
        lines.append(f"  {r['services']} services, calls per run: {top}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--families", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--small", action="store_true", help="60 services, 10 families, 3 hours (make test)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--oom-heavy", action="store_true", help="many deployments, a third of them OOM-killed")
    parser.add_argument("--plant", choices=["no-isolation", "register-twice", "no-clamp", "no-budget"])
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--scale", type=int, nargs="*", metavar="SERVICES",
                        help="measure the reconciler's run at these estate sizes instead (no faults)")
    parser.add_argument("--minutes", type=int, default=20, help="simulated minutes per --scale size")
    args = parser.parse_args(argv)
    if args.scale:
        results = [scale(n, args.minutes, args.seed) for n in args.scale]
        print(scale_table(results))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=str))
        return 0
    if args.small:
        args.services, args.families, args.hours = 60, 10, 3.0
    heavy: dict[str, Any] = {"deploys_per_day": 24.0, "bad_revisions": (50, 10, 35, 5)} if args.oom_heavy else {}
    report = Soak(services=args.services, families=args.families, hours=args.hours, seed=args.seed,
                  faults=not args.no_faults, plant=args.plant, progress=sys.stderr.isatty(), **heavy).run()
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(summary_line(report))
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
