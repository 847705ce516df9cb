"""ecs-autopilot's tooling: the ``autopilot`` CLI, the local demo, backtests, dead-letter tools and the
local stack builder. Installed with the CLI (``pip install -e .``), never shipped in the Lambda layer:
the functions import only the runtime package ``autopilot``."""
