"""Single-task reads gathered into batched ones: many callers, few requests.

Confirming unsigned callbacks needs one read per delivery, and deliveries come in bursts (a
batch finishing). :class:`GatheredReads` holds each ``get(product, task_id)`` for a moment
(``gather`` nominal seconds from the first one waiting), then reads everything gathered at once
in the fewest requests the credentials allow, and answers every caller:

    API key      GET /tasks?task_ids= (20 a request)
    AK/SK        the product's first legacy list page (500 newest first; a task that just
                 reported its end is almost always there) when two or more wait, then single
                 GETs for the rest; a lone task is one single GET

A caller gets the :class:`~klingwatch.kling.models.Task`, or the error its read raised (a task
Kling does not know: :class:`~klingwatch.kling.errors.TaskNotFound`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import KlingError, TaskNotFound, TasksStyleRefused
from klingwatch.kling.models import Task
from klingwatch.kling.products import has_legacy_list

__all__ = ["GatheredReads"]

log = logging.getLogger(__name__)

_Key = tuple[str, str]  # (product, task id)


class GatheredReads:
    """Reads single tasks for many callers with batched requests (see the module docstring)."""

    def __init__(
        self, client: KlingClient, clock: Clock, *, gather: float = 0.5, page_size: int = 500
    ) -> None:
        self.client = client
        self.clock = clock
        self.gather = gather
        self.page_size = page_size
        self._waiting: dict[_Key, list[asyncio.Future[Task]]] = {}
        # The flush collecting callers now (None: the next get starts one), and those reading.
        self._collecting: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        #: requests sent, and reads answered (a figure for tests and metrics)
        self.requests = 0
        self.answered = 0

    async def get(self, product: str, task_id: str) -> Task:
        """The task as Kling reports it, read together with whatever else waits meanwhile."""
        future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((product, task_id), []).append(future)
        if self._collecting is None:
            flush = asyncio.create_task(self._gathered(), name="gathered-reads")
            self._collecting = flush
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await future

    async def aclose(self) -> None:
        """Stop a pending flush; its callers get ``CancelledError``."""
        for flush in list(self._flushes):
            flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flush
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()

    async def _gathered(self) -> None:
        if self.gather > 0:
            await self.clock.sleep(self.gather)
        # Callers arriving from now on gather for the next flush.
        batch, self._waiting, self._collecting = self._waiting, {}, None
        try:
            found = await self._read(list(batch))
        except BaseException as exc:  # every caller learns of the failure, then it goes on
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in batch.items():
            answer = found.get(key)
            for future in futures:
                if future.done():
                    continue
                if isinstance(answer, Task):
                    future.set_result(answer)
                else:
                    future.set_exception(
                        answer
                        or TaskNotFound(f"Kling has no task {key[1]}", status_code=200, code=None)
                    )
            self.answered += len(futures)

    async def _read(self, keys: list[_Key]) -> dict[_Key, Task | Exception]:
        found: dict[_Key, Task | Exception] = {}
        if self.client.tasks_api:
            before = self.client.stats.requests
            try:
                by_id = await self.client.get_many([task_id for _, task_id in keys])
            except TasksStyleRefused:
                pass  # remembered by the client: the legacy way below
            else:
                self.requests += self.client.stats.requests - before
                for key in keys:
                    if key[1] in by_id:
                        found[key] = by_id[key[1]]
                return found
        by_product: dict[str, list[_Key]] = {}
        for key in keys:
            by_product.setdefault(key[0], []).append(key)
        for product, group in by_product.items():
            if len(group) > 1 and has_legacy_list(product):
                self.requests += 1
                try:
                    page = await self.client.list_page(product, 1, self.page_size)
                except KlingError as exc:
                    log.info(
                        "list page for %d confirmations failed (%s); reading singly",
                        len(group),
                        exc,
                    )
                    page = []
                on_page = {task.id: task for task in page}
                for key in group:
                    if key[1] in on_page:
                        found[key] = on_page[key[1]]
        rest = [key for key in keys if key not in found]
        answers = await asyncio.gather(
            *(self.client.get(product, task_id) for product, task_id in rest),
            return_exceptions=True,
        )
        self.requests += len(rest)
        for key, answer in zip(rest, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer
            found[key] = answer
        return found
