"""What the API's action endpoints do: retry, track, resume, and reading the pause.

Each delegates to the engine's own functions (the submitter, the gates) so that the API, the CLI
and the engine change the ledger in exactly the same way.
"""

from __future__ import annotations

import logging

from klingwatch.kling.errors import KlingError
from klingwatch.kling.products import get_product
from klingwatch.monitor import gates
from klingwatch.monitor.observe import observe_task
from klingwatch.server.schemas import TrackIn
from klingwatch.server.state import AppState
from klingwatch.store import Source, TaskRecord

__all__ = ["ActionRefused", "pause_code", "paused", "resume", "retry", "track"]

logger = logging.getLogger(__name__)


class ActionRefused(KlingError):
    """An action the ledger's state does not allow (e.g. retrying a task still in flight)."""


def paused(state: AppState) -> tuple[bool, str | None]:
    """``(paused, reason)`` of submissions, as the submitter keeps it in the ledger."""
    pause = gates.pause_state(state.ledger)
    return (pause is not None, pause.reason if pause is not None else None)


def pause_code(state: AppState) -> int | None:
    """Kling's code that paused submissions (1102: pack exhausted), if paused."""
    pause = gates.pause_state(state.ledger)
    return pause.code if pause is not None else None


async def retry(state: AppState, record: TaskRecord) -> TaskRecord:
    """Queue a new task with ``record``'s request; the submitter sends it when a slot frees."""
    from klingwatch.monitor.retries import retry_task

    if not record.status.is_final:
        raise ActionRefused(
            f"task {record.local_id} is {record.status.value}; only a finished task can be retried"
        )
    return retry_task(state.ledger, record, at=state.clock.time())


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
