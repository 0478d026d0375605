"""State changes of this app (see STYLE.md: the only place that changes state)."""
