"""Base for stored state models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StateModel(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)  # tolerate fields of newer versions
