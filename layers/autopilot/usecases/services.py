"""Reading many managed services at once: grouped per cluster, one DescribeServices per 10 services."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from autopilot.models.policy import ServicePolicy
from autopilot.ports import EcsPort, ServiceView


def describe_policies(ecs: EcsPort, policies: Iterable[ServicePolicy]) -> dict[tuple[str, str], ServiceView]:
    """The services of ``policies`` as DescribeServices sees them, keyed by (cluster, service).

    A service AWS does not know (or INACTIVE) is absent from the answer.
    """
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for policy in policies:
        names = by_cluster[policy.metadata.cluster]
        if policy.metadata.service not in names:
            names.append(policy.metadata.service)
    return {(cluster, name): view for cluster, services in by_cluster.items()
            for name, view in ecs.describe_services(cluster, services).items()}
