"""What the API's action endpoints do: retry, track, resume, and reading the pause.

Each delegates to the engine's own functions (the submitter, the gates) so that the API, the CLI
and the engine change the ledger in exactly the same way.
"""

from __future__ import annotations

import logging

from klingwatch.kling.products import get_product
from klingwatch.monitor import gates
from klingwatch.monitor.observe import observe_task
from klingwatch.monitor.retries import retry_task
from klingwatch.server.schemas import TrackIn
from klingwatch.server.state import AppState
from klingwatch.store import Source, TaskRecord

__all__ = ["FORCE_IN_JSON", "pause_code", "paused", "resume", "retry", "track"]

logger = logging.getLogger(__name__)


#: How the API says "force" in a refusal's message.
FORCE_IN_JSON = '"force": true to the JSON body'


def paused(state: AppState) -> tuple[bool, str | None]:
    """``(paused, reason)`` of submissions, as the submitter keeps it in the ledger."""
    pause = gates.pause_state(state.ledger)
    return (pause is not None, pause.reason if pause is not None else None)


def pause_code(state: AppState) -> int | None:
    """Kling's code that paused submissions (1102: pack exhausted), if paused."""
    pause = gates.pause_state(state.ledger)
    return pause.code if pause is not None else None


async def retry(state: AppState, record: TaskRecord, *, force: bool = False) -> TaskRecord:
    """Queue a new task with ``record``'s request, under the one retry rule
    (:func:`~klingwatch.monitor.retries.check_retry`: raises ``RetryRefused``)."""
    return retry_task(state.ledger, record, force=force, how_to_force=FORCE_IN_JSON)


async def track(state: AppState, body: TrackIn) -> TaskRecord:
    """Adopt a task created elsewhere, as ``klingwatch track`` does.

    With a Kling client the task is read once first: a task Kling does not know raises
    :class:`~klingwatch.kling.errors.TaskNotFound`, and one it knows is recorded as Kling says.
    """
    product = get_product(body.product)  # raises a KlingError naming the known products
    found = None
    if state.client is not None:
        found = await state.client.get(product.name, body.task_id)
    local_id = state.ledger.adopt(
        body.batch, product.name, body.task_id, family=product.family.value
    )
    if found is not None:
        state.ledger.apply(
            observe_task(found, source=Source.GET, at=state.clock.time(), local_id=local_id)
        )
    record = state.ledger.task(local_id)
    assert record is not None
    logger.info("tracking Kling task %s as #%d", body.task_id, local_id)
    return record


async def resume(state: AppState) -> list[str]:
    """Clear the pause (and its alert); return the alert kinds cleared."""
    was = gates.resume(state.ledger)
    return [gates.PAUSE_ALERT] if was is not None else []
