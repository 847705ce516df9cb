"""Environment configuration, validated once at handler entry (a bad deploy fails loudly and early).

A plain dataclass: five environment variables need no pydantic, and a function's start need not load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, cast

Mode = Literal["enforce", "dry-run", "off"]
MODES: tuple[Mode, ...] = ("enforce", "dry-run", "off")


@dataclass
class Settings:
    table: str
    topic_arn: str | None = None
    restart_queue_url: str | None = None
    mode: Mode = "enforce"
    managed_clusters: list[str] = field(default_factory=list)
    account: str | None = None  # AUTOPILOT_ACCOUNT_ID (the template sets it): events from elsewhere are ignored
    region: str | None = None  # AUTOPILOT_REGION (the template sets it), else AWS_REGION
    # The reconciler's fan-out (usecases/shards.py): above this many service policies, the scheduled run sends one
    # SQS message per shard to this queue and the shards run in their own invocations.
    reconcile_queue_url: str | None = None  # AUTOPILOT_RECONCILE_QUEUE_URL (the reconciler's environment)
    reconcile_shard_size: int = 1000  # AUTOPILOT_RECONCILE_SHARD_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not self.table:
            raise ValueError("table: the state table's name (AUTOPILOT_TABLE) is empty")
        mode = (self.mode or "enforce").strip().lower() if isinstance(self.mode, str) else self.mode
        if mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)} (AUTOPILOT_MODE)")
        self.mode = cast(Mode, mode)
        if not isinstance(self.reconcile_shard_size, int) or self.reconcile_shard_size < 1:
            raise ValueError(f"reconcile_shard_size: {self.reconcile_shard_size!r} is not a positive whole number "
                             "(AUTOPILOT_RECONCILE_SHARD_SIZE)")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        clusters = [c.strip() for c in env.get("AUTOPILOT_MANAGED_CLUSTERS", "").split(",") if c.strip()]
        try:
            return cls(
                table=env.get("AUTOPILOT_TABLE", ""),
                topic_arn=env.get("AUTOPILOT_TOPIC_ARN") or None,
                restart_queue_url=env.get("AUTOPILOT_RESTART_QUEUE_URL") or None,
                mode=cast(Mode, env.get("AUTOPILOT_MODE", "enforce")),
                managed_clusters=clusters,
                account=env.get("AUTOPILOT_ACCOUNT_ID") or None,
                region=env.get("AUTOPILOT_REGION") or env.get("AWS_REGION") or None,
                reconcile_queue_url=env.get("AUTOPILOT_RECONCILE_QUEUE_URL") or None,
                reconcile_shard_size=_whole(env.get("AUTOPILOT_RECONCILE_SHARD_SIZE"), 1000),
            )
        except ValueError as exc:
            raise RuntimeError(f"invalid ecs-autopilot environment: {exc}") from None


def _whole(text: str | None, default: int) -> int:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number (AUTOPILOT_RECONCILE_SHARD_SIZE)") from None


def admits(config: Settings, account: str | None, region: str | None) -> bool:
    """Whether an event from ``account`` and ``region`` may act here: this deployment's own account and region.

    The one place that says so (the EventBridge rules filter the same way, template.yaml): an alarm of a dev
    account forwarded to this bus must not scale prod. An event that names no account or region, where this
    deployment knows its own, is not admitted either. A deployment that does not know its account (settings
    built by hand, the local demo without AUTOPILOT_ACCOUNT_ID) admits every account.
    """
    if config.account and account != config.account:
        return False
    return not (config.region and region != config.region)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings of this process (cached: the environment of a Lambda sandbox does not change)."""
    return Settings.from_env()
