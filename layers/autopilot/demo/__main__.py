"""``python -m autopilot.demo``: the same as ``autopilot demo``."""

from __future__ import annotations

import sys

from autopilot.demo.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
