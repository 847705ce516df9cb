"""Environment configuration, validated once at handler entry (a bad deploy fails loudly and early)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(defer_build=True)

    table: str = Field(min_length=1)
    topic_arn: str | None = None
    restart_queue_url: str | None = None
    mode: Literal["enforce", "dry-run", "off"] = "enforce"
    managed_clusters: list[str] = Field(default_factory=list)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        return (value or "enforce").strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        clusters = [c.strip() for c in env.get("AUTOPILOT_MANAGED_CLUSTERS", "").split(",") if c.strip()]
        try:
            return cls(
                table=env.get("AUTOPILOT_TABLE", ""),
                topic_arn=env.get("AUTOPILOT_TOPIC_ARN") or None,
                restart_queue_url=env.get("AUTOPILOT_RESTART_QUEUE_URL") or None,
                mode=env.get("AUTOPILOT_MODE", "enforce"),
                managed_clusters=clusters,
            )
        except ValidationError as exc:
            raise RuntimeError(f"invalid ecs-autopilot environment: {exc}") from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings of this process (cached: the environment of a Lambda sandbox does not change)."""
    return Settings.from_env()
