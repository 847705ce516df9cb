"""One module per trigger: load, decide, execute, record. Handlers call exactly one use case."""
