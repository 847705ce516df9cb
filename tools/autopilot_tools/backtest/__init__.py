"""Backtests: replay metric histories through scaling policies (the functions' own decision code).

``autopilot backtest`` and ``autopilot recommend`` live in ``cli``; nothing here runs in a Lambda.
"""
