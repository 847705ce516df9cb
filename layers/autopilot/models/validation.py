"""How a rejected input is described, in one place: the first error pydantic found, located by its field path.

Event parsers (alarm, task, deployment events) and the restart message reader turn a ValidationError into
one line for the log, the ``InvalidEvent`` metric and the audit trail: ``detail.state.value: Input should be
'ALARM', 'OK' or 'INSUFFICIENT_DATA'``. (Policy files get a fuller, multi-error report from the CLI.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_error(exc: ValidationError, whole: str = "event") -> str:
    """``field.path: why`` for the first error; ``whole`` names the input when the error is about all of it."""
    errors = exc.errors()
    if not errors:  # pydantic always reports at least one; be safe anyway
        return f"{whole}: invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    return f"{where}: {first['msg']}"
