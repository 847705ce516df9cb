"""Nothing the tests run may read beside the repository (a user's clone has nothing there).

An audit hook (PEP 578) refuses every open, listdir or scandir of a path in the directory that holds the
clone but outside the clone itself (a sibling folder of the clone): the code that tried fails with OutsideRepository,
so the test that exercised it fails, whatever the developer's machine happens to have beside the
repository. The virtualenvs and the temporary directory are allowed wherever they live.
tests/unit/test_repo_boundary.py proves the hook bites and scans the code for paths that leave the clone.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_ROOT = str(ROOT) + os.sep
_BESIDE = str(ROOT.parent) + os.sep
# Places the tests may use wherever they are; a place that holds the clone itself (a clone under /tmp) would
# exempt everything beside it, so it does not count.
_ALLOWED = tuple(
    place for place in (
        str(Path(p).resolve()) + os.sep
        for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir(),
                  os.environ.get("AUTOPILOT_SAM_VENV") or sys.prefix,
                  os.environ.get("AUTOPILOT_BUILD_DIR") or sys.prefix})
    if not _ROOT.startswith(place)
)
_EVENTS = {"open", "os.listdir", "os.scandir"}


class OutsideRepository(RuntimeError):
    """A read of a path beside the repository (not an OSError: glob and friends swallow those)."""


def outside(path: Any) -> bool:
    """Whether ``path`` lies beside the clone (in its parent directory) rather than inside it."""
    if isinstance(path, int) or path is None:
        return False
    try:
        text = os.fsdecode(path)
    except TypeError:
        return False
    full = os.path.abspath(text) + os.sep
    return full.startswith(_BESIDE) and not full.startswith(_ROOT) and not full.startswith(_ALLOWED)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in _EVENTS and args and outside(args[0]):
        raise OutsideRepository(f"{args[0]!r} is outside the repository {ROOT}: copy what the tests need into it")


_installed = False


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


install()
