"""Subcommands that live in other packages, imported only when they are run.

To add one, add a line to ``EXTERNAL_COMMANDS``: the command name, the module, the function
(``run(argv: list[str]) -> int``, receiving every argument after the command name) and a one-line
help. ``autopilot NAME ...`` then forwards to it, and ``autopilot --help`` lists it. If the module
is not installed (yet), the command says so and exits 2 instead of failing with a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class External:
    module: str
    function: str
    help: str
    extra: str | None = None  # the pip extra that installs what the command needs beyond the CLI


_PKG = "autopilot_tools"
EXTERNAL_COMMANDS: dict[str, External] = {
    "demo": External(f"{_PKG}.demo.cli", "run", "run the local demonstration on an embedded AWS emulator",
                     extra="demo"),
    "backtest": External(f"{_PKG}.backtest.cli", "run_backtest", "replay recorded metrics through the policies"),
    "recommend": External(f"{_PKG}.backtest.cli", "run_recommend", "suggest policy settings from recorded metrics"),
    "dlq": External(f"{_PKG}.dlq.cli", "run", "inspect and redrive events that failed after all retries"),
    "local": External(f"{_PKG}.local", "run", "serve the stack's table and queues on an embedded AWS emulator "
                      "for trying the CLI without an AWS account", extra="demo"),
}

NOT_AVAILABLE = 2


def _is_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """True if ``module`` itself (or a parent package) is absent, not one of its own imports."""
    missing = exc.name or ""
    return missing == module or module.startswith(missing + ".")


def load(name: str) -> Callable[[list[str]], int | None] | None:
    """The function behind an external command, or None (with a message) if it is not available."""
    spec = EXTERNAL_COMMANDS[name]
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if spec.extra and exc.name and not exc.name.startswith(("autopilot", "autopilot_tools")):
            print(f"autopilot: '{name}' needs the Python package {exc.name!r}, which is not installed.\n"
                  f"  install it with: pip install 'ecs-autopilot[{spec.extra}]'"
                  f"   (from a clone: pip install -e '.[{spec.extra}]')", file=sys.stderr)
            return None
        if not _is_missing(exc, spec.module):
            raise
        print(f"autopilot: '{name}' is not available in this installation (module {spec.module} not found)",
              file=sys.stderr)
        return None
    function = getattr(module, spec.function, None)
    if not callable(function):
        print(f"autopilot: '{name}' is not available: {spec.module} has no {spec.function}()", file=sys.stderr)
        return None
    return function  # type: ignore[no-any-return]


def run(name: str, argv: list[str]) -> int:
    """Forward ``argv`` to the external command ``name``; its return value is the exit code."""
    function = load(name)
    if function is None:
        return NOT_AVAILABLE
    result = function(argv)
    return 0 if result is None else int(result)
