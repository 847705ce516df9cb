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

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not self.table:
            raise ValueError("table: the state table's name (AUTOPILOT_TABLE) is empty")
        mode = (self.mode or "enforce").strip().lower() if isinstance(self.mode, str) else self.mode
        if mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)} (AUTOPILOT_MODE)")
        self.mode = cast(Mode, mode)

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
            )
        except ValueError as exc:
            raise RuntimeError(f"invalid ecs-autopilot environment: {exc}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings of this process (cached: the environment of a Lambda sandbox does not change)."""
    return Settings.from_env()
