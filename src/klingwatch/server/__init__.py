"""klingwatch.server: the web face (see DESIGN.md and docs/web.md).

:func:`create_app` builds one FastAPI app on a ledger: the callback receiver
(``/callbacks/kling/{token}``), the JSON API (``/api``, OpenAPI at ``/docs``), the dashboard
(``/``), ``/metrics`` and ``/healthz``. ``klingwatch serve`` runs it with the engine.
"""

from klingwatch.server.app import create_app

__all__ = ["create_app"]
