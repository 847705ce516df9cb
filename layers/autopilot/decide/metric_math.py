"""Metric math query ids, renamed for one GetMetricData request that carries many alarms' queries.

Ids must be unique within a request, so each alarm's (or rule's) queries get a prefix, and every
expression must name the renamed ids. A textual replace is wrong: renaming ``m1`` inside ``m10 + m1``
touches ``m10`` too (``a0_a0_m10 + a0_m1``), GetMetricData refuses the request and the whole run fails.
Here an expression is tokenized: only whole identifiers that are ids of the same alarm are renamed;
numbers (``1e3``), string literals (``SEARCH('{AWS/EC2,InstanceId} MetricName="CPU"', 'Average')``) and
functions (upper case; ids start with a lower-case letter) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autopilot.models.policy import MetricSpec

_TOKENS = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')      # string literals: never renamed
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)                       # identifiers: ids, functions, keywords
""", re.VERBOSE)


def rename_ids(expression: str, names: Mapping[str, str]) -> str:
    """``expression`` with each whole identifier found in ``names`` replaced by its new name."""
    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        return names.get(name, name) if name is not None else match.group(0)

    return _TOKENS.sub(replace, expression)


def prefixed(queries: Iterable[Mapping[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Copies of one alarm's ``MetricDataQueries`` with ``prefix`` before every Id, expressions renamed to match."""
    copies = [dict(q) for q in queries]
    names = {str(q["Id"]): f"{prefix}{q['Id']}" for q in copies}
    for query in copies:
        query["Id"] = names[str(query["Id"])]
        if "Expression" in query:
            query["Expression"] = rename_ids(str(query["Expression"]), names)
    return copies


def returning_one(queries: Sequence[Mapping[str, Any]], prefix: str) -> tuple[list[dict[str, Any]], str] | None:
    """One alarm's queries for a shared GetMetricData request, and the renamed Id of the series it returns.

    Ids are ``prefixed``; ``ReturnData`` is on for the one query the alarm returns and off for the others (only
    that series is read as the alarm's value). None when the alarm returns no series or several."""
    returned = [index for index, query in enumerate(queries) if query.get("ReturnData", True)]
    if len(returned) != 1:
        return None
    copies = prefixed(queries, prefix)
    for index, query in enumerate(copies):
        query["ReturnData"] = index == returned[0]
    return copies, str(copies[returned[0]]["Id"])


def metric_stat_query(query_id: str, spec: MetricSpec, period: int) -> dict[str, Any]:
    """The GetMetricData query of a metric a policy names itself (not through an alarm), at ``period``."""
    stat = {"Metric": {"Namespace": spec.namespace, "MetricName": spec.name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(spec.dimensions.items())]},
            "Period": period, "Stat": spec.stat}
    return {"Id": query_id, "MetricStat": stat, "ReturnData": True}


def referenced_ids(expression: str) -> set[str]:
    """The identifiers an expression names (ids among them; functions and keywords too, which match no id)."""
    return {m.group("name") for m in _TOKENS.finditer(expression) if m.group("name") is not None}


def batches(queries: list[dict[str, Any]], limit: int = 500) -> list[list[dict[str, Any]]]:
    """``queries`` split into requests of at most ``limit`` (GetMetricData's 500), never separating an
    expression from the ids it names (they must be in the same request). Order is kept."""
    group_of: dict[str, int] = {}
    groups: list[list[dict[str, Any]]] = []
    for query in queries:
        named = referenced_ids(str(query["Expression"])) if "Expression" in query else set()
        joined = sorted({group_of[n] for n in named if n in group_of})
        if joined:
            target = joined[0]
            for other in joined[1:]:  # an expression that ties two groups together merges them
                groups[target] += groups[other]
                for moved in groups[other]:
                    group_of[str(moved["Id"])] = target
                groups[other] = []
        else:
            target = len(groups)
            groups.append([])
        groups[target].append(query)
        group_of[str(query["Id"])] = target
    out: list[list[dict[str, Any]]] = []
    for group in (g for g in groups if g):
        if out and len(out[-1]) + len(group) <= limit:
            out[-1] += group
        else:
            out.append(list(group))
    return out
