"""Speaking Kling: auth, products, the task model, errors, the async client, callbacks.

Knows nothing of storage; see DESIGN.md.
"""
