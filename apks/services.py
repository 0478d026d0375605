"""State changes of this app (docs/ARCHITECTURE.md: the only place that changes state)."""
