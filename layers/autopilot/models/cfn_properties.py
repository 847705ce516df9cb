"""A policy declared as CloudFormation custom resource properties, typed back before it is checked.

CloudFormation hands a custom resource its properties as JSON in which every number and boolean has become
a string (``minTasks: 2`` arrives as ``"2"``, ``true`` as ``"true"``); lists and maps keep their shape.
The policy models are strict (``"2"`` is not a whole number), so each string is turned back into what the
policy's JSON Schema says its field is, where it reads as one: ``"2"`` where a whole number belongs, ``"0.5"``
where a number does, ``"true"``/``"false"`` where a boolean does, and ``"30%"`` stays a percent string. What
does not read as its type is left as it is, and the policy check then reports it in ``autopilot validate``'s
words (``minTasks: must be a whole number (got 'two')``).
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@cache
def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy document (either kind), built once."""
    from pydantic import TypeAdapter

    from autopilot.models.policy import Policy

    return TypeAdapter(Policy).json_schema()


def typed(properties: Any, schema: dict[str, Any] | None = None) -> Any:
    """``properties`` with the strings CloudFormation made of numbers and booleans typed back."""
    schema = schema or policy_schema()
    return _typed(properties, schema, schema.get("$defs", {}))


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    return schema


def _branches(schema: dict[str, Any], value: Any, defs: dict[str, Any]) -> list[dict[str, Any]]:
    mapping = (schema.get("discriminator") or {}).get("mapping") or {}
    name = (schema.get("discriminator") or {}).get("propertyName")
    if mapping and isinstance(value, dict) and isinstance(value.get(name), str) and value[name] in mapping:
        return [_resolve({"$ref": mapping[value[name]]}, defs)]
    return [_resolve(b, defs) for b in schema.get("anyOf") or schema.get("oneOf") or []]


def _typed(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    schema = _resolve(schema, defs)
    branches = _branches(schema, value, defs)
    if branches:
        if isinstance(value, str):  # the first scalar form it reads as (adjustment: "2" is 2, "30%" stays)
            for branch in branches:
                converted = _scalar(value, branch.get("type"))
                if converted is not value:
                    return converted
            return value
        kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
        chosen = next((b for b in branches if b.get("type") == kind or (kind == "object" and "properties" in b)),
                      None)
        return _typed(value, chosen, defs) if chosen is not None else value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return {k: _typed(v, properties.get(k) or (extra if isinstance(extra, dict) else {}), defs)
                for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [_typed(v, items, defs) for v in value] if isinstance(items, dict) else value
    if isinstance(value, str):
        return _scalar(value, schema.get("type"))
    return value


def _scalar(value: str, kind: Any) -> Any:
    text = value.strip()
    if kind == "integer" and _INTEGER.match(text):
        return int(text)
    if kind == "number" and _NUMBER.match(text):
        number = float(text)
        if math.isfinite(number):
            return int(number) if _INTEGER.match(text) else number
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return value
