"""What the API's action endpoints do: retry, track and resume, each through the operations
layer (:mod:`klingwatch.operations`), so the API, the CLI and the MCP server change the ledger in
exactly the same way."""

from __future__ import annotations

import logging

from klingwatch.kling.errors import TaskNotFound
from klingwatch.monitor import gates
from klingwatch.server.schemas import TrackIn
from klingwatch.server.state import AppState
from klingwatch.store import TaskRecord

__all__ = ["FORCE_IN_JSON", "resume", "retry", "track"]

logger = logging.getLogger(__name__)


#: How the API says "force" in a refusal's message.
FORCE_IN_JSON = '"force": true to the JSON body'


async def retry(state: AppState, record: TaskRecord, *, force: bool = False) -> TaskRecord:
    """Queue a new task with ``record``'s request, under the one retry rule
    (:func:`~klingwatch.monitor.retries.check_retry`: raises ``RetryRefused``)."""
    result = await state.ops.retry(
        ids=[str(record.local_id)], force=force, how_to_force=FORCE_IN_JSON
    )
    return result.queued[0][1]


async def track(state: AppState, body: TrackIn) -> TaskRecord:
    """Adopt a task created elsewhere, as ``klingwatch track`` does (read on Kling first when
    this server has credentials: a task Kling does not know raises ``TaskNotFound``)."""
    result = await state.ops.track(body.product, [body.task_id], batch=body.batch)
    if result.missing:
        raise TaskNotFound(f"no {body.product} task {body.task_id!r}", status_code=404, code=None)
    return result.tracked[0]


async def resume(state: AppState) -> list[str]:
    """Clear the pause (and its alert); return the alert kinds cleared."""
    result = await state.ops.resume()
    return [gates.PAUSE_ALERT] if result.was is not None else []
