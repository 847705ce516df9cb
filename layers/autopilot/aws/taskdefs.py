"""TaskDefinitionsPort on boto3: describe with tags, register with tags, find a derived revision again.

RegisterTaskDefinition takes no idempotency token, so registering "the same" revision twice makes a twin.
Three things keep a derivation (identified by its ``autopilot:derivation-id`` tag) to one revision:

- the executor records the derived ARN under its derivation id (the state store's derivation ledger) as
  soon as RegisterTaskDefinition answers, and looks there first on a retry;
- ``find_derived`` is exact whatever the family's recent history: every ACTIVE revision of the family newer
  than the base (ListTaskDefinitions, paginated), described with tags until one carries the derivation id;
- ``register_derived`` makes one attempt at a time (a client without botocore's retries): a throttled
  attempt was not applied and is retried after a back-off; an attempt whose outcome is unknown (a timeout,
  a 5xx: the revision may exist) is followed by ``find_derived`` before anything is registered again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from autopilot.aws.clients import AwsAdapter, MemberAccess, client
from autopilot.aws.errors import is_throttling, is_transient
from autopilot.backoff import Sleep, pause, real_sleep
from autopilot.ports import DerivedLookup, DescribedTaskDefinition

if TYPE_CHECKING:
    from autopilot.models.place import Place

LIST_PAGE = 100  # ListTaskDefinitions' largest page
REGISTER_ATTEMPTS = 5  # as botocore's standard mode, but each unknown outcome is looked up first


class TaskDefinitions(AwsAdapter):
    service = "ecs"

    def __init__(self, aws_client: Any | None = None, register_client: Any | None = None,
                 sleep: Sleep = real_sleep, *, place: Place | None = None, access: MemberAccess | None = None) -> None:
        super().__init__(aws_client, place=place, access=access)
        self._register_client = register_client
        self.sleep = sleep

    @property
    def register_client(self) -> Any:
        """The client RegisterTaskDefinition goes through: one attempt per call (made on first use only)."""
        if self._register_client is not None:
            return self._register_client
        return self._client if self._client is not None else client(self.service, self.place, self.access,
                                                                                single_attempt=True)

    def describe(self, task_definition: str) -> DescribedTaskDefinition:
        response = self.client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
        return DescribedTaskDefinition(task_definition=response["taskDefinition"],
                                       tags=list(response.get("tags") or []))

    def register(self, request: dict[str, Any]) -> str:
        kwargs = dict(request)
        if not kwargs.get("tags"):
            kwargs.pop("tags", None)
        response = self.register_client.register_task_definition(**kwargs)
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def register_derived(self, request: dict[str, Any], family: str, derivation_id: str,
                         newer_than: int | None) -> DerivedLookup:
        """Register ``request`` once: retried after throttling; after an unknown outcome, looked up first."""
        described = 0
        for attempt in range(REGISTER_ATTEMPTS):
            if attempt:
                pause(self.sleep, attempt - 1, base=0.1, cap=5.0)
            try:
                return DerivedLookup(arn=self.register(request), describe_calls=described, registered=True)
            except ClientError as exc:
                if not is_transient(exc.response) or attempt == REGISTER_ATTEMPTS - 1:
                    raise
                if is_throttling(exc.response):
                    continue  # refused before anything was registered
            except BotoCoreError:  # a timeout or a dropped connection: it may have been registered
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
            found = self.find_derived(family, derivation_id, newer_than)
            described += found.describe_calls
            if found.arn is not None:
                return DerivedLookup(arn=found.arn, describe_calls=described, list_calls=found.list_calls)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def find_derived(self, family: str, derivation_id: str, newer_than: int | None) -> DerivedLookup:
        """The ACTIVE revision of ``family`` registered for ``derivation_id``: every revision newer than the base
        is looked at (oldest first: a retry's own revision follows its base closely)."""
        from autopilot.decide.taskdef import is_derivation, revision_number  # only functions that derive load it

        candidates: list[tuple[int, str]] = []
        kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE", "sort": "DESC", "maxResults": LIST_PAGE}
        lists = 0
        while True:
            response = self.client.list_task_definitions(**kwargs)
            lists += 1
            page = [(revision_number(str(a)) or 0, str(a)) for a in response.get("taskDefinitionArns") or []
                    if _family_of(str(a)) == family]  # familyPrefix also matches "web-api" for "web"
            candidates += [(n, a) for n, a in page if newer_than is None or n > newer_than]
            numbers = [n for n, _ in page]
            done = newer_than is not None and numbers and numbers == sorted(numbers, reverse=True) \
                and numbers[-1] <= newer_than  # newest first (AWS's order): the rest is older than the base
            if done or not response.get("nextToken"):
                break
            kwargs["nextToken"] = response["nextToken"]
        described = 0
        for _, arn in sorted(set(candidates)):
            described += 1
            found = self.describe(arn)
            if is_derivation(found.tags, derivation_id):
                return DerivedLookup(arn=arn, describe_calls=described, list_calls=lists)
        return DerivedLookup(arn=None, describe_calls=described, list_calls=lists)


def _family_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
