"""Environment configuration, validated once at handler entry (a bad deploy fails loudly and early).

A plain dataclass: a few environment variables need no pydantic, and a function's start need not load it.

Places (issue 13): the hub's own account comes from ``AUTOPILOT_HOME_ACCOUNT`` (the template sets it) and its
region from ``AWS_REGION`` (Lambda sets it); neither ever changes for a stack. The members registered with the
hub are not environment variables (a parameter change would not reach the functions' published versions): the
stack writes them to the state table (``StateTable.registration``). Whether an event's place is admitted is
decided in one place, ``models.place.admitted`` (the single-account case: the hub's own place only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, cast

from autopilot.models.place import Place

Mode = Literal["enforce", "dry-run", "off"]
MODES: tuple[Mode, ...] = ("enforce", "dry-run", "off")


@dataclass
class Settings:
    table: str
    topic_arn: str | None = None
    restart_queue_url: str | None = None
    mode: Mode = "enforce"
    managed_clusters: list[str] = field(default_factory=list)
    home_account: str | None = None  # None: not configured (every event then counts as the hub's own)
    home_region: str | None = None
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
        if self.home_account is not None and not Place(self.home_account, "us-east-1").valid:
            raise ValueError(f"home account {self.home_account!r} is not a 12-digit AWS account id "
                             "(AUTOPILOT_HOME_ACCOUNT)")

    @property
    def home(self) -> Place | None:
        """The hub's own account and region; None while either is unknown (then every event counts as the
        hub's own: settings built by hand, the local demo without AUTOPILOT_HOME_ACCOUNT)."""
        if not self.home_account or not self.home_region:
            return None
        return Place(self.home_account, self.home_region)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        # The hub's region is where the process runs (Lambda sets AWS_REGION), whatever ``env`` says besides.
        region = (env or {}).get("AWS_REGION") or os.environ.get("AWS_REGION") or \
            (env or {}).get("AWS_DEFAULT_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        env = dict(os.environ if env is None else env)
        clusters = _list(env.get("AUTOPILOT_MANAGED_CLUSTERS"))
        try:
            return cls(
                table=env.get("AUTOPILOT_TABLE", ""),
                topic_arn=env.get("AUTOPILOT_TOPIC_ARN") or None,
                restart_queue_url=env.get("AUTOPILOT_RESTART_QUEUE_URL") or None,
                mode=cast(Mode, env.get("AUTOPILOT_MODE", "enforce")),
                managed_clusters=clusters,
                home_account=(env.get("AUTOPILOT_HOME_ACCOUNT") or "").strip() or None,
                home_region=region.strip() or None,
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


def _list(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings of this process (cached: the environment of a Lambda sandbox does not change)."""
    return Settings.from_env()
