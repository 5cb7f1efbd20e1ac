"""klingwatch.monitor (see DESIGN.md)."""
