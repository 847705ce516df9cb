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

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autopilot.models.policy import ServicePolicy, TaskPolicy
from autopilot.models.policy_document import API_VERSION, KINDS, check_document
from autopilot.models.policy_document import format_path as _format_path
from autopilot.models.policy_document import one_line as _one_line

MAX_FILE_BYTES = 10 * 1024 * 1024  # a policy file for hundreds of services is well under 1 MiB
MAX_ERRORS_PER_DOCUMENT = 25
MAX_DOCUMENTS = 5000  # ~25 times a 200-service estate; beyond that the input is not a policy file
__all__ = ["API_VERSION", "KINDS"]  # re-exported from the runtime, where the checks live
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
# The checks and their words live in the runtime (autopilot.models.policy_document), shared with the policy
# CloudFormation resource; what is added here is where a field was written (its YAML line).


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
    policy, problems = check_document(document.data)
    errors = [PolicyError(file, document.index, p.field, p.reason, _locate(document.node, p.path)) for p in problems]
    errors.sort(key=lambda e: e.line or 0)  # pydantic reports in field order; people read top to bottom
    if len(errors) > MAX_ERRORS_PER_DOCUMENT:
        hidden = len(errors) - MAX_ERRORS_PER_DOCUMENT
        errors = errors[:MAX_ERRORS_PER_DOCUMENT]
        errors.append(PolicyError(file, document.index, "", f"... and {hidden} more errors in this document"))
    return policy, errors


# ------------------------------------------------------------------------------------ public API
def _target(policy: AnyPolicy) -> str:
    name = policy.metadata.service if isinstance(policy, ServicePolicy) else policy.metadata.family
    place = policy.metadata.place  # a member's account and region (issue 13)
    return f"{policy.metadata.cluster}/{name}" + (f" @ {place}" if place is not None else "")


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
