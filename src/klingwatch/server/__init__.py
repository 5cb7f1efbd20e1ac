"""klingwatch.server (see DESIGN.md)."""
