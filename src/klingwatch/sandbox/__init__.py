"""klingwatch.sandbox (see DESIGN.md)."""
