"""Typed models at the edges: policies, events, actions and stored state (no I/O here)."""
