"""Issue 11, finding 8: the derived-revision lookup is exact whatever the family's recent history.

ListTaskDefinitions is paginated (100 a page, newest first), ``familyPrefix`` also lists longer family names,
and every ACTIVE revision newer than the base is a candidate (the lookup used to describe the 5 newest of
the first 10 only). moto answers in one page: a stub client with AWS's paging stands in here.
"""

from __future__ import annotations

from typing import Any

from autopilot.aws.taskdefs import TaskDefinitions
from autopilot.decide.taskdef import TAG_DERIVATION_ID

ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/{}"


class PagedEcs:
    """ListTaskDefinitions as AWS answers it (newest first, ``maxResults`` a page, ``nextToken``)."""

    def __init__(self, revisions: dict[str, int], derived: dict[str, str]) -> None:
        self.arns = sorted((ARN.format(f"{family}:{n}") for family, top in revisions.items()
                            for n in range(1, top + 1)),
                           key=lambda a: int(a.rsplit(":", 1)[1]), reverse=True)
        self.derived = derived  # arn -> derivation id
        self.calls: list[str] = []

    def list_task_definitions(self, familyPrefix: str, maxResults: int, nextToken: str | None = None,
                              **_: Any) -> dict[str, Any]:
        self.calls.append("List")
        matching = [a for a in self.arns if a.rsplit("/", 1)[1].startswith(familyPrefix)]
        start = int(nextToken or 0)
        page = matching[start:start + maxResults]
        answer: dict[str, Any] = {"taskDefinitionArns": page}
        if start + maxResults < len(matching):
            answer["nextToken"] = str(start + maxResults)
        return answer

    def describe_task_definition(self, taskDefinition: str, include: list[str]) -> dict[str, Any]:
        self.calls.append("Describe")
        tags = [{"key": TAG_DERIVATION_ID, "value": self.derived[taskDefinition]}] \
            if taskDefinition in self.derived else []
        return {"taskDefinition": {"taskDefinitionArn": taskDefinition}, "tags": tags}


def test_a_derived_revision_far_below_the_newest_is_found() -> None:
    ours = ARN.format("web:8")  # registered right after its base web:7; 250 revisions came after it
    ecs = PagedEcs({"web": 258, "web-api": 300}, {ours: "oom-web7", ARN.format("web-api:8"): "oom-web7"})
    found = TaskDefinitions(aws_client=ecs).find_derived("web", "oom-web7", newer_than=7)
    assert found.arn == ours
    assert found.describe_calls == 1, "oldest first: a retry's own revision follows its base"
    assert found.list_calls == ecs.calls.count("List") >= 3, "every page down to the base"


def test_nothing_is_found_when_nothing_was_registered_and_the_listing_stops_at_the_base() -> None:
    ecs = PagedEcs({"web": 1000}, {})
    found = TaskDefinitions(aws_client=ecs).find_derived("web", "oom-web990", newer_than=990)
    assert found.arn is None and found.describe_calls == 10
    assert ecs.calls.count("List") == 1, "the first page already reaches below the base"
