"""AlarmsPort on boto3: alarm states in batches, and the latest value of each alarm's metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from autopilot.aws.clients import AwsAdapter
from autopilot.decide.metric_math import batches, returning_one
from autopilot.ports import AlarmView

_BATCH = 100  # DescribeAlarms accepts up to 100 names per call


def alarm_view(raw: dict[str, Any]) -> AlarmView:
    """Reduce a DescribeAlarms MetricAlarm to its state and a GetMetricData query for its metric."""
    queries: list[dict[str, Any]] = []
    if raw.get("Metrics"):
        keep = ("Id", "MetricStat", "Expression", "Label", "ReturnData", "Period")
        queries = [{k: v for k, v in q.items() if k in keep} for q in raw["Metrics"]]
    elif raw.get("MetricName"):
        stat: dict[str, Any] = {
            "Metric": {"Namespace": raw.get("Namespace"), "MetricName": raw["MetricName"],
                       "Dimensions": raw.get("Dimensions", [])},
            "Period": raw.get("Period", 60),
            "Stat": raw.get("Statistic") or raw.get("ExtendedStatistic") or "Average",
        }
        queries = [{"Id": "m0", "MetricStat": stat, "ReturnData": True}]
    updated = raw.get("StateUpdatedTimestamp")
    return AlarmView(
        name=raw["AlarmName"], state=raw.get("StateValue", "INSUFFICIENT_DATA"),
        state_reason_data=raw.get("StateReasonData"), threshold=raw.get("Threshold"),
        state_updated=updated.isoformat() if updated is not None and hasattr(updated, "isoformat") else updated,
        metric_query=queries,
    )


class CloudWatchAlarms(AwsAdapter):
    service = "cloudwatch"

    def describe_alarms(self, names: list[str]) -> dict[str, AlarmView]:
        """One DescribeAlarms call per 100 alarm names (paginated within a batch)."""
        found: dict[str, AlarmView] = {}
        unique = sorted(set(names))
        for start in range(0, len(unique), _BATCH):
            kwargs: dict[str, Any] = {"AlarmNames": unique[start:start + _BATCH], "AlarmTypes": ["MetricAlarm"],
                                      "MaxRecords": _BATCH}
            while True:
                response = self.client.describe_alarms(**kwargs)
                for raw in response.get("MetricAlarms", []):
                    found[raw["AlarmName"]] = alarm_view(raw)
                if not response.get("NextToken"):
                    break
                kwargs["NextToken"] = response["NextToken"]
        return found

    def latest_values(self, alarms: list[AlarmView], now: datetime | None = None) -> dict[str, float]:
        """The most recent value of each alarm's metric, with one GetMetricData call per 500 queries."""
        queries: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        for index, alarm in enumerate(alarms):
            found = returning_one(alarm.metric_query, f"a{index}_")
            if found is None:
                continue
            queries += found[0]
            owner[found[1]] = alarm.name
        if not queries:
            return {}
        end = now or datetime.now(UTC)
        series = self.metric_series(queries, end - timedelta(minutes=15), end)
        # Results come newest first (ScanBy TimestampDescending): the first point is the latest value.
        return {name: points[0][1] for query_id, name in owner.items() if (points := series.get(query_id))}

    def metric_series(self, queries: list[dict[str, Any]], start: datetime,
                      end: datetime) -> dict[str, list[tuple[datetime, float]]]:
        """Datapoints of many GetMetricData queries, keyed by query Id: one call per 500 queries (paginated;
        a metric math expression and the ids it names always go in the same call).

        Used by targetTracking rules, which read all their metrics of a reconciler run at once.
        """
        series: dict[str, list[tuple[datetime, float]]] = {}
        for batch in batches(queries, 500):  # an expression stays in the request of the ids it names
            kwargs: dict[str, Any] = {"MetricDataQueries": batch, "StartTime": start,
                                      "EndTime": end, "ScanBy": "TimestampDescending"}
            while True:
                response = self.client.get_metric_data(**kwargs)
                for result in response.get("MetricDataResults", []):
                    points = series.setdefault(result.get("Id", ""), [])
                    pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                    points.extend((ts if ts.tzinfo else ts.replace(tzinfo=UTC), float(v)) for ts, v in pairs)
                if not response.get("NextToken"):
                    break
                kwargs["NextToken"] = response["NextToken"]
        return series
