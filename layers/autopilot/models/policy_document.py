"""One policy document checked the way ``autopilot validate`` reports it: every error, at its field, in words.

Shared by the CLI (``autopilot_tools.policyfile`` adds the file, the document number and the YAML line) and
by the runtime (the ``Custom::EcsAutopilotPolicy`` CloudFormation resource, whose properties arrive as JSON,
not YAML), so a policy declared in a stack fails with exactly the reasons ``autopilot validate`` prints.
Pure: pydantic and the policy models only, no YAML.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from autopilot.models.place import ACCOUNT_PATTERN, REGION_PATTERN
from autopilot.models.policy import ServicePolicy, TaskPolicy

API_VERSION = "autopilot/v1"
KINDS: dict[str, type[ServicePolicy] | type[TaskPolicy]] = {"ServicePolicy": ServicePolicy, "TaskPolicy": TaskPolicy}
AnyPolicy = ServicePolicy | TaskPolicy


@dataclass(frozen=True)
class DocumentError:
    """One problem of a document: ``field`` is the dotted path ("" for the whole document), ``path`` its parts."""

    field: str
    reason: str
    path: tuple[Any, ...] = ()

    def __str__(self) -> str:
        return f"{self.field or '(document)'}: {self.reason}"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PATTERN_HINTS = {
    r"^[A-Za-z0-9_-]+$": "may contain only letters, digits, hyphens and underscores",
    ACCOUNT_PATTERN: 'must be a 12-digit AWS account id in quotes, such as "123456789012"',
    REGION_PATTERN: 'must be an AWS region such as "eu-west-1"',
    r"^subnet-[0-9a-zA-Z]+$": 'must be a subnet id such as "subnet-0abc1234"',
    r"^sg-[0-9a-zA-Z]+$": 'must be a security group id such as "sg-0abc1234"',
}
_FIELD_HINTS = {  # fields that take several forms: say which, whatever form failed
    "adjustment": 'must be a whole number of tasks (2, -1) or a percent string ("30%", "-10%")',
    "metric": "must be an alarm name or a metric mapping (namespace, name, dimensions, stat, period)",
}


def format_path(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = str(part)
            piece = text if _PLAIN_KEY.match(text) else repr(text[:60])
            out += f".{piece}" if out else piece
    return out


def show(value: Any) -> str:
    """A short rendering of a user's value for a message (never the whole of a huge input)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(text: str) -> str:
    return " ".join(text.split())


def _model_at(model: type[BaseModel], path: Sequence[Any]) -> type[BaseModel] | None:
    """The model class that holds the fields at ``path`` (to suggest field names)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_model(annotation: Any) -> Any:
    """The model inside ``X | None``, ``list[X]``, ``Annotated[X, ...]``, or the annotation itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
    return annotation


def _unknown_field_reason(model: type[BaseModel], parent: Sequence[Any], key: Any) -> str:
    holder = _model_at(model, parent)
    if holder is None:
        return "unknown field"
    allowed = list(holder.model_fields)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean {close[0]}?)"
    return f"unknown field (allowed here: {', '.join(allowed)})"


def _reason(error: Any, model: type[BaseModel], path: list[Any]) -> str:
    """Pydantic's error in the words a policy author would use."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    field = next((str(p) for p in reversed(path) if not isinstance(p, int)), "")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field_reason(model, path[:-1], path[-1] if path else "")
    if kind in ("value_error", "assertion_error"):
        return one_line(str(ctx.get("error", error["msg"])))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("' or '", "', '")
        return f"must be one of {expected} (got {show(value)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        quoted = _quoted(value, int)
        return _FIELD_HINTS.get(field) or (f"must be a whole number, {quoted}" if quoted
                                           else f"must be a whole number (got {show(value)})")
    if kind in ("float_type", "float_parsing"):
        quoted = _quoted(value, float)
        return f"must be a number, {quoted}" if quoted else f"must be a number (got {show(value)})"
    if kind == "finite_number":
        return "must be a finite number (not .inf or .nan)"
    if kind in ("bool_type", "bool_parsing"):
        quoted = _quoted(value, bool)
        return f"must be true or false, {quoted}" if quoted else f"must be true or false (got {show(value)})"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _FIELD_HINTS.get(field) or f'must be a string (got {show(value)}; put it in quotes: "{value}")'
        return _FIELD_HINTS.get(field) or f"must be a string (got {show(value)})"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long (got {len(str(value))})"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"{_PATTERN_HINTS.get(pattern, f'must match the pattern {pattern}')} (got {show(value)})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("greater than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        return f"must be {words[0]} {ctx.get(words[1])} (got {show(value)})"
    if kind == "list_type":
        return f"must be a list (got {show(value)})"
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return f"needs at least {minimum} item{'s' if minimum != 1 else ''}"
    if kind == "too_long":
        return f"may have at most {ctx.get('max_length')} items (got {ctx.get('actual_length')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of fields (key: value), not {kind_of(value)}"
    return one_line(str(error["msg"]))[:300]


def _quoted(value: Any, wanted: type) -> str | None:
    """Fields are strict (never coerced): when the value is the right thing in quotes, say so."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if wanted is bool:
        fits = text in ("true", "false")
    else:
        try:
            number = float(text) if wanted is float else int(text)
        except ValueError:
            return None
        fits = math.isfinite(number)
    return f"not the string {show(value)} (write it without quotes: {text})" if fits else None


def kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class _Where:
    """Where a pydantic error is, in the user's terms, and which union alternative it came from."""

    path: list[Any]  # the loc without union member tags
    union_at: tuple[Any, ...] | None = None  # path of the innermost union the error went through
    member: str | None = None  # pydantic's tag of that union member ("int", "constrained-str", "MetricSpec")
    member_is_model: bool = False


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _members(annotation: Any) -> list[Any]:
    """The non-None members of a union annotation (one member for ``X | None``, none if not a union)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [_strip_annotated(a) for a in typing.get_args(annotation) if a is not type(None)]
    return []


def _where(model: type[BaseModel], loc: Sequence[Any]) -> _Where:
    """Walk pydantic's loc along the model's types: union member tags are not fields, they are dropped.

    Pydantic adds a tag to the loc for each member of a union of two or more types (``int``, ``str``,
    ``constrained-str``, a model's name); ``X | None`` gets none.
    """
    path: list[Any] = []
    current: Any = model
    union_at: tuple[Any, ...] | None = None
    member: str | None = None
    member_is_model = False
    for part in loc:
        annotation = _strip_annotated(current) if current is not None else None
        members = _members(annotation)
        if len(members) == 1:
            annotation = members[0]
        elif len(members) > 1:  # this part is the tag of the member that failed
            models = [m for m in members if _is_model(m)]
            chosen = next((m for m in models if m.__name__ == part), None)
            if chosen is None and str(part).startswith("function-") and len(models) == 1:
                chosen = models[0]  # a model with a wrap validator is tagged by its validator, not its name
            union_at, member, member_is_model = tuple(path), str(part), chosen is not None
            current = chosen if chosen is not None else next((m for m in members if not _is_model(m)), None)
            continue
        path.append(part)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            field = annotation.model_fields.get(part)
            current = field.annotation if field is not None else None
        elif typing.get_origin(annotation) is list and isinstance(part, int):
            current = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            current = typing.get_args(annotation)[1]
        else:
            current = None
    return _Where(path, union_at, member, member_is_model)


def _value_at(data: Any, path: Sequence[Any]) -> Any:
    for part in path:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return None
        data = data[part]
    return data


def _member_words(tag: str) -> str:
    if tag == "int":
        return "a whole number"
    if tag in ("float", "constrained-float"):
        return "a number"
    if tag == "bool":
        return "true or false"
    if "str" in tag:
        return "a string"
    return "a mapping of fields"




def check_document(data: Any) -> tuple[AnyPolicy | None, list[DocumentError]]:
    """Validate one document (a mapping with apiVersion, kind, metadata and spec); never raises.

    Errors come in the models' field order; a caller that knows where each field was written may sort them."""
    if not isinstance(data, dict):
        return None, [DocumentError("", "a policy must be a mapping with apiVersion, kind, metadata and spec, "
                                        f"not {kind_of(data)}")]
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        errors: list[DocumentError] = []
        if data.get("apiVersion") != API_VERSION:
            reason = ("required field is missing" if "apiVersion" not in data
                      else f"must be {API_VERSION!r} (got {show(data.get('apiVersion'))})")
            errors.append(DocumentError("apiVersion", reason, ("apiVersion",)))
        reason = ("required field is missing (ServicePolicy or TaskPolicy)" if "kind" not in data
                  else f"must be one of 'ServicePolicy', 'TaskPolicy' (got {show(kind)})")
        errors.append(DocumentError("kind", reason, ("kind",)))
        return None, errors
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, translate(model, data, exc.errors())
    except RecursionError:
        return None, [DocumentError("", "the document is nested too deeply")]


def translate(model: type[BaseModel], data: Any, raw: Iterable[Any]) -> list[DocumentError]:
    """Pydantic errors -> DocumentErrors, one plain reason per problem.

    When a value may take several forms (``metric``: an alarm name or a mapping), only the errors of the
    form the user wrote count: a mapping is checked as the mapping form, anything else as the scalar
    forms; the scalar forms' failures together become one "must be X or Y".
    """
    located = [(_where(model, error["loc"]), error) for error in raw]
    shapes: dict[tuple[Any, ...], bool] = {}
    for where, _ in located:
        if where.union_at is not None and where.union_at not in shapes:
            shapes[where.union_at] = isinstance(_value_at(data, where.union_at), dict)
    kept = [(w, e) for w, e in located if w.union_at is None or w.member_is_model == shapes[w.union_at]
            or not any(other.union_at == w.union_at and other.member_is_model == shapes[w.union_at]
                       for other, _ in located)]
    grouped: dict[str, list[tuple[_Where, Any]]] = {}
    for where, error in kept:
        grouped.setdefault(format_path(where.path), []).append((where, error))
    errors: list[DocumentError] = []
    for field_path, entries in grouped.items():
        path = entries[0][0].path
        name = next((str(p) for p in reversed(path) if not isinstance(p, int)), "")
        tags = [w.member for w, _ in entries if w.member is not None and w.union_at == tuple(path)]
        if len(tags) > 1 and len(tags) == len(entries):
            allowed = " or ".join(dict.fromkeys(_member_words(t) for t in tags))
            reasons = [_FIELD_HINTS.get(name) or f"must be {allowed}"]
        else:
            reasons = list(dict.fromkeys(_reason(e, model, w.path) for w, e in entries))
        errors.extend(DocumentError(field_path, reason, tuple(path)) for reason in reasons)
    return errors


def summary(errors: Sequence[DocumentError], limit: int = 240) -> str:
    """The errors in one line of at most ``limit`` characters (a CloudFormation status reason), the first first."""
    if not errors:
        return ""
    text = str(errors[0])
    shown = 1
    for error in errors[1:]:
        more = f"; {error}"
        rest = len(errors) - shown - 1
        tail = f" (and {rest} more)" if rest else ""
        if len(text) + len(more) + len(tail) > limit:
            break
        text += more
        shown += 1
    hidden = len(errors) - shown
    suffix = f" (and {hidden} more: autopilot validate lists them all)" if hidden else ""
    if len(text) + len(suffix) > limit:
        text = text[: max(0, limit - len(suffix) - 1)] + "…"
    return text + suffix
