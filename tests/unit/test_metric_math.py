"""Issue 11, finding 2: metric math ids are renamed as whole identifiers, once, in one place.

The old ``str.replace`` turned ``m10 + m1`` into ``a0_a0_m10 + a0_m1``: GetMetricData refused the request
and the reconciler's whole run failed. The answer checked here is what GetMetricData itself checks: every
id an expression names is a query of the same request.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot.aws.cloudwatch import CloudWatchAlarms
from autopilot.decide.metric_math import batches, prefixed, referenced_ids, rename_ids, returning_one
from autopilot.models.policy import TargetTracking
from autopilot.ports import AlarmView
from autopilot.usecases.predictive import history_query
from autopilot.usecases.target_tracking import metric_queries

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def stat(name: str) -> dict[str, Any]:
    return {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": []},
            "Period": 60, "Stat": "Sum"}


M1_M10 = [
    {"Id": "m1", "MetricStat": stat("RequestCount"), "ReturnData": False},
    {"Id": "m10", "MetricStat": stat("HTTPCode_Target_5XX_Count"), "ReturnData": False},
    {"Id": "e1", "Expression": "100 * m10 / (m10 + m1)", "ReturnData": True},
]


class GetMetricData:
    """A CloudWatch client that validates a GetMetricData request as AWS does (ids unique, expressions
    naming only ids of the same request) and answers one datapoint per returned query."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        ids = [q["Id"] for q in MetricDataQueries]
        assert len(ids) == len(set(ids)) and len(ids) <= 500
        for q in MetricDataQueries:
            assert _ID.match(q["Id"]), f"ValidationError: invalid id {q['Id']}"
            if "Expression" in q:
                unknown = {n for n in referenced_ids(q["Expression"]) if n[0].islower()} - set(ids)
                assert not unknown, f"ValidationError: {q['Expression']} names unknown ids {unknown}"
        self.requests.append(MetricDataQueries)
        return {"MetricDataResults": [{"Id": q["Id"], "Timestamps": [NOW - timedelta(minutes=1)], "Values": [7.0]}
                                      for q in MetricDataQueries if q.get("ReturnData", True)]}


@pytest.mark.parametrize(("expression", "expected"), [
    ("m10 + m1", "a0_m10 + a0_m1"),
    ("m1+m10", "a0_m1+a0_m10"),
    ("100*(m1/m10)", "100*(a0_m1/a0_m10)"),
    ("m1 * 1e1 + m10", "a0_m1 * 1e1 + a0_m10"),  # a number is not an id
    ("FILL(m1, 0) + m11", "FILL(a0_m1, 0) + m11"),  # m11 is not an id of this alarm; FILL is a function
    ("SEARCH('{AWS/EC2,InstanceId} MetricName=\"m1\"', 'Average', 60)",
     "SEARCH('{AWS/EC2,InstanceId} MetricName=\"m1\"', 'Average', 60)"),  # inside a string: untouched
    ("SUM(METRICS(\"m1\"))", "SUM(METRICS(\"m1\"))"),
])
def test_rename_ids_renames_whole_identifiers_only(expression: str, expected: str) -> None:
    assert rename_ids(expression, {"m1": "a0_m1", "m10": "a0_m10"}) == expected


ids = st.from_regex(r"[a-z][a-z0-9]{0,3}", fullmatch=True)


@given(st.lists(ids, min_size=1, max_size=6, unique=True), st.data())
def test_prefixing_keeps_every_expression_pointing_at_its_own_queries(names: list[str], data: Any) -> None:
    terms = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=8))
    queries = [{"Id": n, "MetricStat": stat(n), "ReturnData": False} for n in names]
    queries.append({"Id": "expr", "Expression": " + ".join(terms), "ReturnData": True})
    renamed = prefixed(queries, "p3_")
    assert [q["Id"] for q in renamed] == [f"p3_{q['Id']}" for q in queries]
    assert renamed[-1]["Expression"] == " + ".join(f"p3_{t}" for t in terms)
    assert queries[-1]["Expression"] == " + ".join(terms), "the alarm's own queries are not modified"


def test_latest_values_of_an_alarm_with_ids_m1_and_m10() -> None:
    cw = GetMetricData()
    alarm = AlarmView(name="web-5xx-rate", state="ALARM", metric_query=[dict(q) for q in M1_M10])
    other = AlarmView(name="api-5xx-rate", state="ALARM", metric_query=[dict(q) for q in M1_M10])
    values = CloudWatchAlarms(aws_client=cw).latest_values([alarm, other], now=NOW)
    assert values == {"web-5xx-rate": 7.0, "api-5xx-rate": 7.0}
    (request,) = cw.requests
    assert [q["Expression"] for q in request if "Expression" in q] == [
        "100 * a0_m10 / (a0_m10 + a0_m1)", "100 * a1_m10 / (a1_m10 + a1_m1)"]


def test_target_tracking_and_predictive_queries_of_an_alarm_with_ids_m1_and_m10() -> None:
    alarm = AlarmView(name="web-5xx-rate", state="OK", metric_query=[dict(q) for q in M1_M10])
    tt = TargetTracking.model_validate({"metric": "web-5xx-rate", "targetValue": 1,
                                        "predictive": {"loadMetric": "web-5xx-rate"}})
    queries, where = metric_queries("p0r0", tt, {"web-5xx-rate": alarm})
    assert [q["Expression"] for q in queries if "Expression" in q] == ["100 * p0r0_m10 / (p0r0_m10 + p0r0_m1)"]
    assert where.query_id == "p0r0_e1"
    history = history_query("h0", tt, {"web-5xx-rate": alarm})
    assert [q["Expression"] for q in history if "Expression" in q] == ["100 * h0_m10 / (h0_m10 + h0_m1)"]
    GetMetricData().get_metric_data(MetricDataQueries=queries + history)


def test_a_request_over_500_queries_never_separates_an_expression_from_its_ids() -> None:
    cw = GetMetricData()
    alarms = [AlarmView(name=f"alarm-{i}", state="ALARM", metric_query=[dict(q) for q in M1_M10]) for i in range(200)]
    values = CloudWatchAlarms(aws_client=cw).latest_values(alarms, now=NOW)
    assert len(values) == 200 and len(cw.requests) == 2
    assert all(len(r) % 3 == 0 for r in cw.requests)


def test_batches_keep_groups_whole_and_order() -> None:
    queries = [{"Id": f"q{i}", "MetricStat": stat("x")} for i in range(4)]
    queries.insert(2, {"Id": "e", "Expression": "q0 + q1"})
    assert [[q["Id"] for q in b] for b in batches(queries, 3)] == [["q0", "q1", "e"], ["q2", "q3"]]


STAT = {"Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization"}, "Period": 60, "Stat": "Average"}


@pytest.mark.parametrize(("queries", "expected"), [
    # a plain alarm: its one query, renamed, returned
    ([{"Id": "m1", "MetricStat": STAT}], ([("p_m1", True)], "p_m1")),
    # metric math: only the expression is returned, the ids it names are read but not returned
    ([{"Id": "m1", "MetricStat": STAT, "ReturnData": False}, {"Id": "m10", "MetricStat": STAT, "ReturnData": False},
      {"Id": "e1", "Expression": "m10 + m1", "ReturnData": True}],
     ([("p_m1", False), ("p_m10", False), ("p_e1", True)], "p_e1")),
    # ReturnData defaults to true: two returned series are no single value
    ([{"Id": "m1", "MetricStat": STAT}, {"Id": "m2", "MetricStat": STAT}], None),
    ([{"Id": "m1", "MetricStat": STAT, "ReturnData": False}], None),
])
def test_returning_one(queries: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(queries)
    found = returning_one(queries, "p_")
    assert queries == before, "the alarm's own queries are left as they are"
    if expected is None:
        assert found is None
        return
    copies, returned_id = found  # type: ignore[misc]
    assert ([(q["Id"], q["ReturnData"]) for q in copies], returned_id) == expected
    if len(queries) == 3:
        assert copies[2]["Expression"] == "p_m10 + p_m1"
