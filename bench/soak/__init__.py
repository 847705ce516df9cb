"""The soak (`make soak`): a long, seeded simulation of an estate running the real handlers, checking invariants.

See bench/soak/run.py for the design, the fault rates and the invariants; README "Soak" for the figures.
"""
