"""Policy files: YAML documents (``---`` separated) read, checked and turned into policy models.

Users fix what they can locate, so every problem is reported with its file, its document (1-based,
as people count ``---`` documents), the dotted field path (``spec.scaling.rules[1].steps[0]``) and a
plain reason; a line number is added where the YAML says where the field is. Whatever the input
(binary junk, a bare number, deep nesting), loading returns errors and never raises.

YAML 1.1 reads ``off``, ``no`` and ``yes`` as booleans, which would turn ``mode: off`` into
``false``; policy files are read with YAML 1.2 booleans (only ``true``/``false``), as editors using
the JSON Schema (yaml-language-server) do.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from autopilot.models.policy import ServicePolicy, TaskPolicy

MAX_FILE_BYTES = 10 * 1024 * 1024  # a policy file for hundreds of services is well under 1 MiB
MAX_ERRORS_PER_DOCUMENT = 25
MAX_DOCUMENTS = 5000  # ~25 times a 200-service estate; beyond that the input is not a policy file
API_VERSION = "autopilot/v1"
KINDS: dict[str, type[ServicePolicy] | type[TaskPolicy]] = {"ServicePolicy": ServicePolicy, "TaskPolicy": TaskPolicy}
STDIN = "-"
STDIN_LABEL = "<stdin>"

AnyPolicy = ServicePolicy | TaskPolicy


@dataclass(frozen=True)
class PolicyError:
    """One problem in a policy file, located as precisely as the input allows.

    ``document`` is None for problems with the file itself; ``field`` is None for YAML syntax
    errors (then ``line``/``column`` locate it) and "" for a problem with a whole document.
    """

    file: str
    document: int | None
    field: str | None
    reason: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.document is None:
            return f"{self.file}: {self.reason}"
        if self.field is None:
            where = f"line {self.line}:{self.column}: " if self.line is not None else ""
            return f"{self.file}: document {self.document}: {where}{self.reason}"
        suffix = f" (line {self.line})" if self.line is not None else ""
        return f"{self.file}: document {self.document}: {self.field or '(document)'}: {self.reason}{suffix}"


@dataclass(frozen=True)
class SourcedPolicy:
    """A valid policy and where it was written (for duplicate checks and messages)."""

    policy: AnyPolicy
    file: str
    document: int


# ------------------------------------------------------------------------------------------- YAML
class _PolicyLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: ``off``/``on``/``yes``/``no`` stay strings."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PolicyLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass
class _Document:
    index: int
    node: yaml.Node
    data: Any


def _mark_error(file: str, document: int, exc: yaml.YAMLError) -> PolicyError:
    """A YAML error as file, document, line:column and the parser's own explanation."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            reason = f"{reason} ({exc.context} at line {exc.context_mark.line + 1}:{exc.context_mark.column + 1})"
        elif exc.context:
            reason = f"{reason} ({exc.context})"
        if mark is not None:
            return PolicyError(file, document, None, _one_line(reason), mark.line + 1, mark.column + 1)
        return PolicyError(file, document, None, _one_line(reason))
    return PolicyError(file, document, None, _one_line(str(exc)))


def _reader_error(file: str, text: str, exc: yaml.reader.ReaderError) -> PolicyError:
    before = text[: exc.position]
    line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
    document = 1 + len(re.findall(r"^---", before, flags=re.MULTILINE))
    return PolicyError(file, document, None, f"character {exc.character:#06x} is not allowed in YAML", line, column)


def _parse(file: str, text: str) -> tuple[list[_Document], list[PolicyError]]:
    """Every document of ``text`` with its node tree (for line numbers); stops at a syntax error."""
    documents: list[_Document] = []
    errors: list[PolicyError] = []
    try:
        loader = _PolicyLoader(text)
    except yaml.reader.ReaderError as exc:
        return [], [_reader_error(file, text, exc)]
    index = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                index += 1
                if index > MAX_DOCUMENTS:
                    errors.append(PolicyError(file, index, None, f"more than {MAX_DOCUMENTS} documents in one file"))
                    break
                node = loader.get_node()
            except yaml.YAMLError as exc:  # the parser cannot resume after a syntax error
                errors.append(_mark_error(file, max(index, 1), exc))
                break
            except RecursionError:
                errors.append(PolicyError(file, max(index, 1), None, "the YAML is nested too deeply"))
                break
            if node is None:
                continue
            duplicates = _duplicate_keys(file, index, node)
            if duplicates:
                errors.extend(duplicates)
                continue
            try:
                data = loader.construct_document(node)
            except yaml.YAMLError as exc:
                _reset_constructor(loader)
                errors.append(_mark_error(file, index, exc))
                continue
            except RecursionError:
                _reset_constructor(loader)
                errors.append(PolicyError(file, index, None, "the YAML is nested too deeply"))
                continue
            documents.append(_Document(index, node, data))
    finally:
        loader.dispose()
    return documents, errors


def _reset_constructor(loader: _PolicyLoader) -> None:
    """Forget a failed document's half-built objects so the next document starts clean."""
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    loader.state_generators = []
    loader.deep_construct = False


def _duplicate_keys(file: str, document: int, root: yaml.Node) -> list[PolicyError]:
    """Keys repeated in one mapping (YAML loaders silently keep the last one; we refuse)."""
    errors: list[PolicyError] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, list[str | int]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # anchors and aliases share nodes: visit each once
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in first_line:
                        errors.append(PolicyError(
                            file, document, _format_path([*path, key.value]),
                            f"appears more than once in the same mapping (first at line {first_line[key.value]})",
                            key.start_mark.line + 1))
                    else:
                        first_line[key.value] = key.start_mark.line + 1
                    stack.append((value, [*path, key.value]))
                else:
                    stack.append((value, [*path, "?"]))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, [*path, i]) for i, item in enumerate(node.value))
    return sorted(errors, key=lambda e: e.line or 0)


# ----------------------------------------------------------------------------------- validation
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PATTERN_HINTS = {
    r"^[A-Za-z0-9_-]+$": "may contain only letters, digits, hyphens and underscores",
    r"^subnet-[0-9a-zA-Z]+$": 'must be a subnet id such as "subnet-0abc1234"',
    r"^sg-[0-9a-zA-Z]+$": 'must be a security group id such as "sg-0abc1234"',
}
_FIELD_HINTS = {  # fields that take several forms: say which, whatever form failed
    "adjustment": 'must be a whole number of tasks (2, -1) or a percent string ("30%", "-10%")',
    "metric": "must be an alarm name or a metric mapping (namespace, name, dimensions, stat, period)",
}


def _format_path(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = str(part)
            piece = text if _PLAIN_KEY.match(text) else repr(text[:60])
            out += f".{piece}" if out else piece
    return out


def _show(value: Any) -> str:
    """A short rendering of a user's value for a message (never the whole of a huge input)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
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
        return _one_line(str(ctx.get("error", error["msg"])))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("' or '", "', '")
        return f"must be one of {expected} (got {_show(value)})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        quoted = _quoted(value, int)
        return _FIELD_HINTS.get(field) or (f"must be a whole number, {quoted}" if quoted
                                           else f"must be a whole number (got {_show(value)})")
    if kind in ("float_type", "float_parsing"):
        quoted = _quoted(value, float)
        return f"must be a number, {quoted}" if quoted else f"must be a number (got {_show(value)})"
    if kind == "finite_number":
        return "must be a finite number (not .inf or .nan)"
    if kind in ("bool_type", "bool_parsing"):
        quoted = _quoted(value, bool)
        return f"must be true or false, {quoted}" if quoted else f"must be true or false (got {_show(value)})"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _FIELD_HINTS.get(field) or f'must be a string (got {_show(value)}; put it in quotes: "{value}")'
        return _FIELD_HINTS.get(field) or f"must be a string (got {_show(value)})"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long (got {len(str(value))})"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"{_PATTERN_HINTS.get(pattern, f'must match the pattern {pattern}')} (got {_show(value)})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("greater than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        return f"must be {words[0]} {ctx.get(words[1])} (got {_show(value)})"
    if kind == "list_type":
        return f"must be a list (got {_show(value)})"
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return f"needs at least {minimum} item{'s' if minimum != 1 else ''}"
    if kind == "too_long":
        return f"may have at most {ctx.get('max_length')} items (got {ctx.get('actual_length')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of fields (key: value), not {_kind_of(value)}"
    return _one_line(str(error["msg"]))[:300]


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
    return f"not the string {_show(value)} (write it without quotes: {text})" if fits else None


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {_show(value)}"
    if isinstance(value, str):
        return f"the string {_show(value)}"
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


def _locate(node: yaml.Node, path: Sequence[Any]) -> int:
    """The 1-based line of the field at ``path``: its key's line (or its list item's), else its nearest ancestor's."""
    line = node.start_mark.line + 1
    current = node
    for part in path:
        found: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found, line = value, key.start_mark.line + 1
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(current.value):
            found = current.value[part]
            line = found.start_mark.line + 1
        if found is None:
            break
        current = found
    return line


def _validate(file: str, document: _Document) -> tuple[AnyPolicy | None, list[PolicyError]]:
    data = document.data
    line_of = document.node.start_mark.line + 1

    def whole(reason: str) -> PolicyError:
        return PolicyError(file, document.index, "", reason, line_of)

    if not isinstance(data, dict):
        return None, [whole("a policy must be a mapping with apiVersion, kind, metadata and spec, "
                            f"not {_kind_of(data)}")]
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        errors: list[PolicyError] = []
        if data.get("apiVersion") != API_VERSION:
            reason = ("required field is missing" if "apiVersion" not in data
                      else f"must be {API_VERSION!r} (got {_show(data.get('apiVersion'))})")
            errors.append(PolicyError(file, document.index, "apiVersion", reason,
                                      _locate(document.node, ["apiVersion"])))
        reason = ("required field is missing (ServicePolicy or TaskPolicy)" if "kind" not in data
                  else f"must be one of 'ServicePolicy', 'TaskPolicy' (got {_show(kind)})")
        errors.append(PolicyError(file, document.index, "kind", reason, _locate(document.node, ["kind"])))
        return None, errors
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, _translate(file, document, model, exc.errors())
    except RecursionError:
        return None, [whole("the document is nested too deeply")]


def _translate(file: str, document: _Document, model: type[BaseModel], raw: Iterable[Any]) -> list[PolicyError]:
    """Pydantic errors -> PolicyErrors, one plain reason per problem.

    When a value may take several forms (``metric``: an alarm name or a mapping), only the errors of the
    form the user wrote count: a mapping is checked as the mapping form, anything else as the scalar
    forms; the scalar forms' failures together become one "must be X or Y".
    """
    located = [(_where(model, error["loc"]), error) for error in raw]
    shapes: dict[tuple[Any, ...], bool] = {}
    for where, _ in located:
        if where.union_at is not None and where.union_at not in shapes:
            shapes[where.union_at] = isinstance(_value_at(document.data, where.union_at), dict)
    kept = [(w, e) for w, e in located if w.union_at is None or w.member_is_model == shapes[w.union_at]
            or not any(other.union_at == w.union_at and other.member_is_model == shapes[w.union_at]
                       for other, _ in located)]
    grouped: dict[str, list[tuple[_Where, Any]]] = {}
    for where, error in kept:
        grouped.setdefault(_format_path(where.path), []).append((where, error))
    errors: list[PolicyError] = []
    for field, entries in grouped.items():
        path = entries[0][0].path
        name = next((str(p) for p in reversed(path) if not isinstance(p, int)), "")
        tags = [w.member for w, _ in entries if w.member is not None and w.union_at == tuple(path)]
        if len(tags) > 1 and len(tags) == len(entries):
            allowed = " or ".join(dict.fromkeys(_member_words(t) for t in tags))
            reasons = [_FIELD_HINTS.get(name) or f"must be {allowed}"]
        else:
            reasons = list(dict.fromkeys(_reason(e, model, w.path) for w, e in entries))
        line = _locate(document.node, path)
        errors.extend(PolicyError(file, document.index, field, reason, line) for reason in reasons)
    errors.sort(key=lambda e: e.line or 0)  # pydantic reports in field order; people read top to bottom
    if len(errors) > MAX_ERRORS_PER_DOCUMENT:
        hidden = len(errors) - MAX_ERRORS_PER_DOCUMENT
        errors = errors[:MAX_ERRORS_PER_DOCUMENT]
        errors.append(PolicyError(file, document.index, "", f"... and {hidden} more errors in this document"))
    return errors


# ------------------------------------------------------------------------------------ public API
def _target(policy: AnyPolicy) -> str:
    name = policy.metadata.service if isinstance(policy, ServicePolicy) else policy.metadata.family
    return f"{policy.metadata.cluster}/{name}"


def describe(policy: AnyPolicy) -> str:
    """``ServicePolicy prod/web``: how messages name a policy."""
    return f"{policy.kind} {_target(policy)}"


def parse_policies(text: str, file: str = "<string>") -> tuple[list[SourcedPolicy], list[PolicyError]]:
    """Every valid policy of a YAML text, and every problem found (duplicates within the text too)."""
    documents, errors = _parse(file, text)
    found: list[SourcedPolicy] = []
    first: dict[str, SourcedPolicy] = {}
    for document in documents:
        if document.data is None:  # an empty document (``---`` twice, or only comments)
            continue
        policy, problems = _validate(file, document)
        errors.extend(problems)
        if policy is None:
            continue
        earlier = first.get(policy.key)
        if earlier is not None:
            errors.append(PolicyError(
                file, document.index, "metadata",
                f"{describe(policy)} is already defined in document {earlier.document}",
                _locate(document.node, ["metadata"])))
            continue
        sourced = SourcedPolicy(policy, file, document.index)
        first[policy.key] = sourced
        found.append(sourced)
    errors.sort(key=lambda e: (e.document or 0, e.line if e.line is not None else sys.maxsize))
    return found, errors


def label(path: str | Path) -> str:
    """How messages name a file: as given, ``<stdin>`` for ``-``."""
    return STDIN_LABEL if str(path) == STDIN else str(path)


def read_text(path: str | Path) -> tuple[str | None, PolicyError | None]:
    """A policy file's text (``-`` reads standard input), or why it cannot be read."""
    name = label(path)
    try:
        if str(path) == STDIN:
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, PolicyError(name, None, None, "no such file")
    except IsADirectoryError:
        return None, PolicyError(name, None, None, "is a directory, not a policy file")
    except PermissionError:
        return None, PolicyError(name, None, None, "permission denied")
    except OSError as exc:
        return None, PolicyError(name, None, None, f"cannot be read ({exc.strerror or exc})")
    if len(raw) > MAX_FILE_BYTES:
        return None, PolicyError(name, None, None, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, PolicyError(name, None, None,
                                 f"is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})")


EMPTY_FILE = "contains no policies (pass --allow-empty if that is intended)"


def load_sourced(paths: Iterable[str | Path], *, allow_empty: bool = True,
                 ) -> tuple[list[SourcedPolicy], list[PolicyError]]:
    """Policies of several files with where each came from; a target defined twice is an error.

    With ``allow_empty=False`` a file without a single policy (and no other error) is an error too: a
    truncated file or the wrong path should not pass validation silently.
    """
    policies: list[SourcedPolicy] = []
    errors: list[PolicyError] = []
    first: dict[str, SourcedPolicy] = {}
    for path in dict.fromkeys(str(p) for p in paths):  # a file named twice is read once
        text, problem = read_text(path)
        if problem is not None or text is None:
            errors.append(problem or PolicyError(label(path), None, None, "cannot be read"))
            continue
        found, problems = parse_policies(text, label(path))
        errors.extend(problems)
        if not found and not problems and not allow_empty:
            errors.append(PolicyError(label(path), None, None, EMPTY_FILE))
        for sourced in found:
            earlier = first.get(sourced.policy.key)
            if earlier is not None:
                errors.append(PolicyError(
                    sourced.file, sourced.document, "metadata",
                    f"{describe(sourced.policy)} is already defined in {earlier.file} document {earlier.document}"))
                continue
            first[sourced.policy.key] = sourced
            policies.append(sourced)
    return policies, errors


def load_policies(path: str | Path) -> tuple[list[AnyPolicy], list[PolicyError]]:
    """The valid policies of one file and every error found in it (never raises)."""
    found, errors = load_sourced([path])
    return [s.policy for s in found], errors
