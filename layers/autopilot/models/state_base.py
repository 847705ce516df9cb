"""Base for stored state models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StateModel(BaseModel):
    # extra="allow": fields written by a newer version survive a read-modify-write by an older one
    model_config = ConfigDict(extra="allow", defer_build=True)
