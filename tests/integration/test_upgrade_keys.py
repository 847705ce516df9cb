"""A single-account deployment upgraded to places (issue 13): what the previous version stored stays valid.

The items below are written exactly as the version before places wrote them (raw DynamoDB items); the
upgraded code reads them, acts on them and writes back under the same keys. Nothing is migrated.
"""

from __future__ import annotations

import json
from typing import Any

from autopilot.aws.clients import client
from autopilot.models.policy import ServicePolicy
from tests.conftest import load_handler, sample

# The policy document as the previous version stored it (model_dump_json(exclude_none=True)).
OLD_DOCUMENT = ('{"apiVersion":"autopilot/v1","kind":"ServicePolicy","metadata":{"cluster":"prod","service":"web"},'
                '"spec":{"mode":"enforce","scaling":{"minTasks":2,"maxTasks":10,"scaleOutCooldownSeconds":60,'
                '"scaleInCooldownSeconds":300,"rules":[{"alarm":"web-cpu-high","steps":[{"lowerBound":0.0,'
                '"adjustment":2}]}]}}}')


def test_state_written_before_places_is_read_and_written_under_the_same_keys(deps: Any, lambda_context: Any) -> None:
    table = deps.settings.table
    dynamodb, ecs = client("dynamodb"), client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=4)
    for item in (
        {"PK": "SVC#prod#web", "SK": "POLICY", "GSI1PK": "POLICIES", "GSI1SK": "SVC#prod#web", "kind": "ServicePolicy",
         "doc": OLD_DOCUMENT, "alarms": json.dumps(["web-cpu-high"]), "updatedAt": "2026-11-01T00:00:00+00:00"},
        {"PK": "ALARM#web-cpu-high", "SK": "SVC#prod#web", "doc": OLD_DOCUMENT},
        {"PK": "SVC#prod#web", "SK": "STATE", "doc": json.dumps({"paused": False, "applied_events": ["old"]}),
         "version": 7},
    ):
        dynamodb.put_item(TableName=table, Item={k: {"N": str(v)} if isinstance(v, int) else {"S": v}
                                                 for k, v in item.items()})
    stored = deps.store.get_policy("SVC#prod#web")
    assert isinstance(stored, ServicePolicy)
    assert stored.model_dump_json(exclude_none=True) == OLD_DOCUMENT, "the same document: nothing to re-apply"
    assert deps.store.put_policy(stored, deps.clock()) == "unchanged"

    result = load_handler("scaler").lambda_handler(sample("scaler-alarm-high.json"), lambda_context)
    assert [o["outcome"] for o in result["outcomes"]] == ["scale-out"]
    snapshot = deps.store.load_state("SVC#prod#web")
    assert snapshot.version == 8 and "old" in snapshot.state.applied_events
    partitions = {i["PK"]["S"] for i in dynamodb.scan(TableName=table)["Items"]}
    assert "IDEMPOTENCY#scaler" in partitions, "the hub's own idempotency records keep their partition"
    assert "AUDIT#prod#web" in partitions
    assert not [p for p in partitions if p.count("#") > 2 and not p.startswith("ALARM#")], partitions
