"""An in-memory AWS for the cold-start benchmark's "first event": every boto3 call answered in the process.

``FakeAws.install()`` replaces ``botocore.client.BaseClient._make_api_call``, so no request is signed,
serialized or sent: what the first event costs beyond the second is the library's own one-time work
(lazy imports, pydantic validator builds), not the network or botocore. Answers are just realistic
enough for the handlers to take their usual paths: the state table holds the given policy items,
every service asked for exists (2 tasks, one completed deployment), every alarm asked for is in ALARM
20 % above its threshold, every metric sits at that value, every RunTask starts a task.

Not a test double for correctness (tests use moto): conditions are not evaluated, writes always win.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"

Item = dict[str, dict[str, Any]]
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def policy_items(key: str, kind: str, document: str, alarms: list[str]) -> list[Item]:
    """The items ``StateTable.put_policy`` writes for one policy: the policy and its alarm index entries."""
    policy: Item = {"PK": {"S": key}, "SK": {"S": "POLICY"}, "GSI1PK": {"S": "POLICIES"}, "GSI1SK": {"S": key},
                    "kind": {"S": kind}, "doc": {"S": document}, "alarms": {"S": json.dumps(sorted(alarms))},
                    "updatedAt": {"S": "2026-01-01T00:00:00+00:00"}}
    index: list[Item] = [{"PK": {"S": f"ALARM#{alarm}"}, "SK": {"S": key}, "doc": {"S": document}}
                         for alarm in alarms]
    return [policy, *index]


class FakeAws:
    def __init__(self, items: list[Item]) -> None:
        self.seed = items
        self.items: dict[tuple[str, str], Item] = {}
        self.calls: list[tuple[str, str]] = []
        self.reset()
        self.answers: dict[tuple[str, str], Answer] = {
            ("dynamodb", "GetItem"): self._get_item, ("dynamodb", "PutItem"): self._put_item,
            ("dynamodb", "UpdateItem"): lambda p: {}, ("dynamodb", "DeleteItem"): self._delete_item,
            ("dynamodb", "Query"): self._query, ("dynamodb", "BatchGetItem"): self._batch_get_item,
            ("dynamodb", "TransactWriteItems"): self._transact_write_items,
            ("ecs", "DescribeServices"): self._describe_services, ("ecs", "UpdateService"): self._update_service,
            ("ecs", "RunTask"): self._run_task,
            ("sns", "Publish"): lambda p: {"MessageId": "00000000-0000-0000-0000-000000000000"},
            ("sqs", "SendMessage"): lambda p: {"MessageId": "00000000-0000-0000-0000-000000000000"},
            ("cloudwatch", "DescribeAlarms"): self._describe_alarms,
            ("cloudwatch", "GetMetricData"): self._get_metric_data,
        }

    def reset(self) -> None:
        """Back to the seeded table (a second event then takes exactly the first one's path)."""
        self.items = {(i["PK"]["S"], i["SK"]["S"]): copy.deepcopy(i) for i in self.seed}
        self.calls.clear()

    def install(self) -> None:
        import botocore.client

        fake = self

        def _make_api_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
            service = client.meta.service_model.service_name
            fake.calls.append((service, operation))
            answer = fake.answers.get((service, operation))
            if answer is None:
                raise NotImplementedError(f"bench/fake_aws.py does not answer {service}:{operation}")
            return answer(params)

        setattr(botocore.client.BaseClient, "_make_api_call", _make_api_call)  # noqa: B010 (mypy: private)

    # ------------------------------------------------------------------ DynamoDB (one table, PK/SK + GSI1)
    def _key(self, key: Item) -> tuple[str, str]:
        return key["PK"]["S"], key["SK"]["S"]

    def _get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.items.get(self._key(params["Key"]))
        return {"Item": copy.deepcopy(found)} if found else {}

    def _put_item(self, params: dict[str, Any]) -> dict[str, Any]:
        self.items[self._key(params["Item"])] = copy.deepcopy(params["Item"])
        return {}

    def _delete_item(self, params: dict[str, Any]) -> dict[str, Any]:
        self.items.pop(self._key(params["Key"]), None)
        return {}

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        attribute = "GSI1PK" if params.get("IndexName") == "GSI1" else "PK"
        wanted = params["ExpressionAttributeValues"][":p"]["S"]
        items = [copy.deepcopy(i) for i in self.items.values() if i.get(attribute, {}).get("S") == wanted]
        return {"Items": items, "Count": len(items)}

    def _batch_get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[Item]] = {}
        for table, request in params["RequestItems"].items():
            found = (self.items.get(self._key(key)) for key in request["Keys"])
            responses[table] = [copy.deepcopy(item) for item in found if item]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _transact_write_items(self, params: dict[str, Any]) -> dict[str, Any]:
        for write in params["TransactItems"]:
            if "Put" in write:
                self._put_item(write["Put"])
            elif "Delete" in write:
                self._delete_item(write["Delete"])
        return {}

    # ------------------------------------------------------------------ ECS
    @staticmethod
    def _service(cluster: str, name: str) -> dict[str, Any]:
        task_definition = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{name}:7"
        deployed = datetime(2026, 1, 1, tzinfo=UTC)
        return {
            "serviceName": name, "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}",
            "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}", "status": "ACTIVE",
            "desiredCount": 4, "runningCount": 4, "taskDefinition": task_definition, "launchType": "FARGATE",
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
            "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": task_definition,
                             "rolloutState": "COMPLETED", "createdAt": deployed, "updatedAt": deployed}],
        }

    def _describe_services(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = params["cluster"].rsplit("/", 1)[-1]
        return {"services": [self._service(cluster, name.rsplit("/", 1)[-1]) for name in params["services"]],
                "failures": []}

    def _update_service(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"service": self._service(params["cluster"], params["service"])}

    @staticmethod
    def _run_task(params: dict[str, Any]) -> dict[str, Any]:
        cluster = params.get("cluster", "default")
        return {"tasks": [{"taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/0123456789abcdef"}],
                "failures": []}

    # ------------------------------------------------------------------ CloudWatch
    @staticmethod
    def _describe_alarms(params: dict[str, Any]) -> dict[str, Any]:
        changed = datetime.now(UTC) - timedelta(minutes=5)
        alarms = [{
            "AlarmName": name, "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "StateValue": "ALARM", "Threshold": 50.0, "StateUpdatedTimestamp": changed,
            "StateReasonData": json.dumps({"version": "1.0", "threshold": 50.0, "recentDatapoints": [60.0]}),
            "MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average", "Period": 60,
            "Dimensions": [{"Name": "ServiceName", "Value": name}],
        } for name in params.get("AlarmNames", [])]
        return {"MetricAlarms": alarms, "CompositeAlarms": []}

    @staticmethod
    def _get_metric_data(params: dict[str, Any]) -> dict[str, Any]:
        end = params.get("EndTime") or datetime.now(UTC)
        stamps = [end - timedelta(minutes=m) for m in range(1, 11)]
        results = [{"Id": q["Id"], "Label": q["Id"], "Timestamps": stamps, "Values": [60.0] * len(stamps),
                    "StatusCode": "Complete"} for q in params["MetricDataQueries"] if q.get("ReturnData", True)]
        return {"MetricDataResults": results, "Messages": []}


class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name = "bench-function"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench-function"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench-function"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000
