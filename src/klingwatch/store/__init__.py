"""klingwatch.store (see DESIGN.md)."""
