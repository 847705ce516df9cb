"""``autopilot demo``: the whole system on an embedded AWS emulator, driven by a virtual clock.

The demo stands in for AWS's control and data planes only where moto cannot (alarm evaluation,
ECS deployments and task lifecycles, Lambda's event delivery); every decision is made by the real
handlers in ``functions/``, wired by the real template, recorded in the real state table.
"""
