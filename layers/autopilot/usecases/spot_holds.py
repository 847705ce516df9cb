"""The reconciler's Spot hold hook: end every Spot fallback hold whose ``holdSeconds`` have passed."""

from __future__ import annotations

from autopilot.decide.healing import decide_spot_restore, spot_hold_expired
from autopilot.models.actions import Decision
from autopilot.models.audit import AuditEntry
from autopilot.models.policy import ServicePolicy, effective_mode
from autopilot.models.state import ServiceState, Snapshot
from autopilot.ports import Dependencies
from autopilot.usecases.facts import Fetch, fetcher, resolve
from autopilot.usecases.runner import Context, act, states


def restore_spot_holds(ctx: Context, deps: Dependencies, policies: list[ServicePolicy]) -> list[AuditEntry]:
    """End every Spot fallback hold whose ``holdSeconds`` have passed (one BatchGetItem per 100 services).

    Every service policy is looked at, not only those that still have ``spotFallback``: removing it
    from a policy during a hold must not strand the service on on-demand capacity.
    """
    if not policies:
        return []
    snaps = states(ctx, [p.key for p in policies])
    entries: list[AuditEntry] = []
    for policy in policies:
        snap = snaps.get(policy.key)
        if snap is None or not spot_hold_expired(snap.state, ctx.now):
            continue
        if snap.state.paused or effective_mode(ctx.global_mode, policy.spec.mode) == "off":
            continue  # the hold waits for the operator (no audit line every minute)
        cluster, service = policy.metadata.cluster, policy.metadata.service
        fetch = fetcher(deps, cluster, service, None)

        def decide(current: Snapshot, cluster: str = cluster, service: str = service,
                   fetch: Fetch = fetch) -> tuple[Decision, ServiceState]:
            return resolve(lambda facts: decide_spot_restore(cluster=cluster, service=service, state=current.state,
                                                             facts=facts, now=ctx.now), fetch)

        entries.append(act(ctx, key=policy.key, policy_mode=policy.spec.mode, trigger="reconcile: Spot hold ended",
                           event_key=None, decide=decide))
    return entries
