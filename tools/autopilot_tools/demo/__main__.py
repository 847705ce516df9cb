"""``python -m autopilot_tools.demo``: the same as ``autopilot demo``."""

from __future__ import annotations

import sys

from autopilot_tools.demo.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
