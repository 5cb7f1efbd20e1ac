"""The sandbox account: its tasks, slots, unit budget and the counters behind the ground truth.

Every lookup is indexed (task id, external id, video id, creation order per product and overall),
so a request costs O(1) or O(log n) whatever the number of tasks. Slots and the budget are kept by
one heap of finish times: before each request :meth:`SandboxState.advance` retires the tasks the
clock has carried past their end (O(log n) each, once per task).

All mutation happens under :attr:`SandboxState.lock`, so tests in another thread may read
``app.state.sandbox`` while a server runs.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from klingwatch.clock import Clock
from klingwatch.kling.envelope import HTTP_STATUS
from klingwatch.kling.models import TaskStatus, Video
from klingwatch.kling.products import Family, Product
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.lifecycle import Lifecycle, SandboxTask, prompt_text, units_for
from klingwatch.sandbox.outputs import result_video
from klingwatch.sandbox.script import Plan

__all__ = ["SandboxError", "SandboxState"]

logger = logging.getLogger(__name__)

_DAY = 86_400.0
#: Products whose ``video_id`` names an earlier video of the account, which must still exist.
_VIDEO_INPUTS = ("video-extend", "lip-sync", "video-to-audio")


class SandboxError(Exception):
    """A Kling error answer: ``code`` picks the HTTP status from the protocol's table."""

    def __init__(self, code: int, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or HTTP_STATUS.get(code, 400)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    route: str
    status: int
    code: int | None


class SandboxState:
    """Everything the sandbox account holds. Create one per app (``create_app`` does)."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.lifecycle = Lifecycle(config, clock)
        #: called with each new task (the callback scheduler listens here)
        self.on_created: list[Callable[[SandboxTask], None]] = []
        self._clear()

    def _clear(self) -> None:
        self.tasks: dict[str, SandboxTask] = {}
        self.order: list[SandboxTask] = []  # by creation; seq is the index
        self._created_times: list[float] = []
        self.by_external: dict[str, SandboxTask] = {}
        self.by_product: dict[str, list[SandboxTask]] = {}
        self.by_video: dict[str, SandboxTask] = {}
        #: how many create requests carried each external_task_id (created or not)
        self.creates_seen: Counter[str] = Counter()
        #: how many reads looked each external_task_id up (found or not)
        self.lookups_seen: Counter[str] = Counter()
        #: result file bodies served per task id, whole (200) or in part (206)
        self.media_served: Counter[str] = Counter()
        self.active: dict[int, SandboxTask] = {}
        self._ends: list[tuple[float, int]] = []
        self.in_use: dict[Family, int] = dict.fromkeys(Family, 0)
        self.peak: dict[Family, int] = dict.fromkeys(Family, 0)
        self.units_spent = Decimal(0)
        #: (route, HTTP status, Kling code or "dropped"/"truncated"/...) of every answer sent;
        #: the status is None for a request left unanswered (a scripted timeout)
        self.requests: Counter[tuple[str, int | None, int | str | None]] = Counter()
        self.create_refusals: Counter[int] = Counter()
        self.started_at = self.clock.time()
        #: seeded dice for orders Kling does not promise
        self.order_rng = random.Random(f"order:{self.config.seed}")
        self.last_costs_read: float | None = None

    def reset(self) -> None:
        """Forget every task and counter; the seed starts over."""
        with self.lock:
            self._clear()
            self.lifecycle.reset()

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.time()

    def advance(self) -> float:
        """Retire every task whose end the clock has passed (frees slots, refunds failures)."""
        now = self.clock.time()
        with self.lock:
            ends = self._ends
            while ends and ends[0][0] <= now:
                _, seq = heapq.heappop(ends)
                task = self.active.pop(seq)
                self.in_use[task.family] -= task.slot_cost
                if task.outcome is TaskStatus.FAILED:
                    # A failed task deducts nothing (final_unit_deduction "0").
                    self.units_spent -= task.units
        return now

    # -- creating ---------------------------------------------------------------------------
    def create(
        self,
        product: Product,
        request: dict[str, Any],
        *,
        external_id: str | None,
        callback_url: str | None,
        base_url: str,
        plan: Plan | None = None,
    ) -> SandboxTask:
        """Create a task, or raise :class:`SandboxError` the way Kling refuses one.

        ``plan`` fixes the task's future instead of the seeded draw (a scripted create); the
        draw is made all the same, so the tasks after it are what they would have been.
        """
        now = self.advance()
        with self.lock:
            try:
                task = self._create(
                    product, request, external_id, callback_url, base_url, now, plan
                )
            except SandboxError as exc:
                self.note_create(external_id, refused=exc.code)
                raise
            self.note_create(external_id)
            return task

    def note_create(self, external_id: str | None, *, refused: int | None = None) -> None:
        """Count a create request (the ground truth), made or refused with code ``refused``;
        a scripted answer that created nothing is counted here too."""
        with self.lock:
            if external_id is not None:
                self.creates_seen[external_id] += 1
            if refused is not None:
                self.create_refusals[refused] += 1

    def note_lookups(self, external_ids: Iterable[str]) -> None:
        """Count reads that looked these external ids up."""
        with self.lock:
            self.lookups_seen.update(external_ids)

    def _create(
        self,
        product: Product,
        request: dict[str, Any],
        external_id: str | None,
        callback_url: str | None,
        base_url: str,
        now: float,
        plan: Plan | None,
    ) -> SandboxTask:
        if external_id is not None and external_id in self.by_external:
            raise SandboxError(
                1201, f"external_task_id {external_id!r} already exists in this account"
            )
        marker = self.config.refuse_marker
        if marker and marker in prompt_text(request):
            raise SandboxError(1301, "Failure to pass the risk control system")
        parent = self._parent_video(product, request, now)
        units = units_for(product, request)
        budget = self.config.unit_budget
        if budget is not None and self.units_spent + units > budget:
            raise SandboxError(1102, "Account balance not enough")
        cost = product.slot_cost(request)
        family = product.family
        if self.in_use[family] + cost > self.config.slots[family]:
            raise SandboxError(1303, "parallel task over resource pack limit")
        life = self.lifecycle
        draw = life.draw(product, request)
        if plan is not None:
            draw = plan.apply(draw, self.clock)
        started = now + draw.queue
        task = SandboxTask(
            seq=len(self.order),
            task_id=life.new_task_id(),
            product=product,
            request=request,
            external_id=external_id,
            callback_url=callback_url,
            base_url=base_url.rstrip("/"),
            created=now,
            started=started,
            finished=started + draw.run,
            outcome=draw.outcome,
            fail_reason=draw.reason,
            slot_cost=cost,
            units=units,
            parent_video=parent,
        )
        outputs = product.outputs
        if "video" in outputs:
            task.video_duration = life.video_duration(product, request)
            task.video_id = life.new_uuid()
            self.by_video[task.video_id] = task
        if "audio" in outputs or "speech" in outputs:
            task.audio_duration = life.audio_duration(product, request, parent)
        if "image" in outputs:
            task.n_images = life.image_count(product, cost)
        self._index(task)
        for listener in self.on_created:
            listener(task)
        return task

    def _index(self, task: SandboxTask) -> None:
        self.tasks[task.task_id] = task
        self.order.append(task)
        self._created_times.append(task.created)
        if task.external_id is not None:
            self.by_external[task.external_id] = task
        self.by_product.setdefault(task.product.name, []).append(task)
        self.active[task.seq] = task
        heapq.heappush(self._ends, (task.finished, task.seq))
        self.in_use[task.family] += task.slot_cost
        self.peak[task.family] = max(self.peak[task.family], self.in_use[task.family])
        self.units_spent += task.units

    def _parent_video(self, product: Product, request: dict[str, Any], now: float) -> Video | None:
        """For extend and lip-sync by ``video_id``: the earlier video, which must still exist."""
        video_id = request.get("video_id")
        if video_id is None and isinstance(request.get("input"), dict):
            video_id = request["input"].get("video_id")
        if product.name not in _VIDEO_INPUTS or not video_id:
            return None
        parent = self.by_video.get(str(video_id))
        if parent is None or parent.status_at(now) is not TaskStatus.SUCCEED:
            raise SandboxError(
                1201, f"video_id {video_id} is not a succeeded video of this account"
            )
        if self.expired(parent, now):
            raise SandboxError(1201, f"video_id {video_id} is older than 30 days and was deleted")
        return result_video(parent)

    def retention(self) -> float:
        """Sandbox-clock seconds a result stays available after its task ended."""
        return self.clock.scaled(self.config.result_retention_days * _DAY)

    def expired(self, task: SandboxTask, now: float) -> bool:
        return now >= task.finished + self.retention()

    # -- reading ----------------------------------------------------------------------------
    def find(self, task_id: str) -> SandboxTask | None:
        return self.tasks.get(task_id)

    def find_external(self, external_id: str) -> SandboxTask | None:
        return self.by_external.get(external_id)

    def product_page(self, product: str, page: int, size: int) -> list[SandboxTask]:
        """One legacy list page of a product's tasks (pages count from 1)."""
        tasks = self.by_product.get(product, [])
        start = (page - 1) * size
        if self.config.list_order == "oldest":
            return tasks[start : start + size]
        end = len(tasks) - start
        return [] if end <= 0 else tasks[max(0, end - size) : end][::-1]

    def in_range(self, start: float, end: float, before_seq: int | None) -> Iterator[SandboxTask]:
        """Tasks created in ``[start, end)`` (seconds), in list order, from a cursor."""
        lo = bisect.bisect_left(self._created_times, start)
        hi = bisect.bisect_left(self._created_times, end)
        if self.config.list_order == "oldest":
            first = lo if before_seq is None else max(lo, before_seq + 1)
            yield from self.order[first:hi]
        else:
            last = hi if before_seq is None else min(hi, before_seq)
            for i in range(last - 1, lo - 1, -1):
                yield self.order[i]

    def active_tasks(self) -> list[SandboxTask]:
        """Tasks not yet terminal, in creation order (never more than the slots)."""
        return sorted(self.active.values(), key=lambda t: t.seq)

    def note_reads(self, tasks: Iterable[SandboxTask], *, single: bool = False) -> None:
        with self.lock:
            for task in tasks:
                task.reads += 1
                if single:
                    task.single_reads += 1

    def record(self, route: str, status: int | None, code: int | str | None) -> None:
        with self.lock:
            self.requests[(route, status, code)] += 1
