"""TaskDefinitionsPort on boto3: describe with tags, register with tags, find a derived revision again.

A derived revision carries the tag ``autopilot:derivation-id``. Before registering, the executor asks
``find_derived`` whether an earlier attempt (that failed after RegisterTaskDefinition, before
UpdateService) already registered it: ListTaskDefinitions of the family, newest first, and
DescribeTaskDefinition (with tags) of the few revisions newer than the base. In the common case, the
base is the newest revision and this costs one List call.
"""

from __future__ import annotations

from typing import Any

from autopilot.aws.clients import AwsAdapter
from autopilot.ports import DerivedLookup, DescribedTaskDefinition

FIND_NEWEST = 10  # ListTaskDefinitions page asked for
FIND_DESCRIBE_AT_MOST = 5  # DescribeTaskDefinition calls a lookup may make


class TaskDefinitions(AwsAdapter):
    service = "ecs"

    def describe(self, task_definition: str) -> DescribedTaskDefinition:
        response = self.client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
        return DescribedTaskDefinition(task_definition=response["taskDefinition"],
                                       tags=list(response.get("tags") or []))

    def register(self, request: dict[str, Any]) -> str:
        kwargs = dict(request)
        if not kwargs.get("tags"):
            kwargs.pop("tags", None)
        response = self.client.register_task_definition(**kwargs)
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def find_derived(self, family: str, derivation_id: str, newer_than: int | None) -> DerivedLookup:
        """The ACTIVE revision of ``family`` registered for ``derivation_id``, looking at the newest few."""
        from autopilot.decide.taskdef import is_derivation, revision_number  # only functions that derive load it

        response = self.client.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC",
                                                     maxResults=FIND_NEWEST)
        arns = [str(a) for a in response.get("taskDefinitionArns") or []]
        # Sorted here too: some emulators ignore ``sort``; AWS already returns newest first.
        numbered = sorted(((revision_number(a) or 0, a) for a in arns), reverse=True)
        candidates = [a for n, a in numbered if newer_than is None or n > newer_than][:FIND_DESCRIBE_AT_MOST]
        described = 0
        for arn in candidates:
            described += 1
            found = self.describe(arn)
            if is_derivation(found.tags, derivation_id):
                return DerivedLookup(arn=arn, describe_calls=described)
        return DerivedLookup(arn=None, describe_calls=described)
