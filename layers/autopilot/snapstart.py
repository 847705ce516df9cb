"""Lambda SnapStart for Python (template parameter ``SnapStart``): work for the snapshot, and after a restore.

With SnapStart, Lambda runs a published version's initialization once, snapshots the memory, and starts
new execution environments from that snapshot. Each handler calls ``prepare_snapshot(clients)`` at import:

- **before the snapshot** (``warm_up``): build the dependencies, create the function's boto3 clients (the
  most expensive part of a cold start) and build every pydantic validator the first event would otherwise
  build, so a restored environment starts with all of it done;
- **after a restore** (``after_restore``): reseed ``random`` (every environment restored from one snapshot
  would otherwise draw the same numbers: botocore's retry jitter uses it; ``uuid4`` reads os.urandom and
  needs nothing), and keep the clients only if their credentials refresh themselves. Under SnapStart the
  runtime serves credentials through the container credential provider (AWS_CONTAINER_CREDENTIALS_FULL_URI),
  which botocore refreshes before they expire; were they static (captured in the snapshot, hours old by the
  time of a restore), the session and its clients are dropped and created again on first use. No network
  connection is opened before the snapshot (the warm-up makes no call), so none is stale after it.

The hooks come from ``snapshot_restore_py``, which the Lambda Python runtimes include. Off Lambda, or on
Lambda without SnapStart, nothing is registered or nothing calls them: the code paths are the usual ones.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterable
from typing import Any

from autopilot.observability import logger

# Modules some events import lazily (only the paths that need them): the snapshot should hold them.
LAZY_MODULES = ("autopilot.decide.taskdef", "autopilot.usecases.alarm_rules")


def prepare_snapshot(clients: Iterable[str], register: Callable[..., Any] | None = None,
                     after: Callable[..., Any] | None = None) -> bool:
    """Register the SnapStart hooks; False where the runtime has no SnapStart support (tests, the demo)."""
    if register is None or after is None:
        try:
            from snapshot_restore_py import register_after_restore, register_before_snapshot
        except ImportError:
            return False
        register, after = register_before_snapshot, register_after_restore
    wanted = tuple(clients)
    register(warm_up, wanted)
    after(after_restore)
    return True


def warm_up(clients: Iterable[str] = ()) -> None:
    """What the snapshot should hold: dependencies, boto3 clients, lazily imported modules, pydantic validators."""
    from autopilot.aws.clients import client
    from autopilot.wiring import dependencies

    dependencies()
    for name in clients:
        client(name)
    for module in LAZY_MODULES:
        importlib.import_module(module)
    built = build_validators()
    logger.info("SnapStart: warmed up before the snapshot", extra={"clients": list(clients), "validators": built})


def build_validators() -> int:
    """Build every deferred pydantic validator of the loaded autopilot models (``defer_build`` skips it at
    import, so the first validation of each model would pay it); returns how many were built."""
    from pydantic import BaseModel

    built = 0
    pending: list[type[BaseModel]] = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model.__module__.startswith("autopilot.") and not model.__pydantic_complete__:
            model.model_rebuild(force=True)
            built += 1
    from autopilot.store.table import _policy_adapter  # the policy union's validator (a TypeAdapter)

    _policy_adapter()
    return built


def after_restore() -> None:
    """Restore uniqueness and make sure no credential captured in the snapshot is reused past its life."""
    from autopilot.aws.clients import refresh_after_restore

    random.seed()
    kept = refresh_after_restore()
    logger.info("SnapStart: restored", extra={"clients_kept": kept})
