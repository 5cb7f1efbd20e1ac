"""The async Kling client: create, read, list, and wait for tasks of both API standards.

::

    async with KlingClient() as kling:                 # credentials from KLING_* variables
        task = await kling.create("text2video", {"prompt": "a fox in snow"},
                                  external_task_id="batch1-0001")
        done = await kling.wait("text2video", task.id, deadline=timedelta(minutes=30))
        print(done.status, done.result_urls)

        # or both at once, an ambiguous create recovered by external id:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox in snow"})

What it promises:

* Everything raised is a :class:`~klingwatch.errors.KlingwatchError`: a
  :class:`~klingwatch.kling.errors.KlingError` for what Kling or the network did (httpx errors are
  translated at one boundary, :class:`~klingwatch.kling.session.Session`, and chained), a
  :class:`~klingwatch.errors.ConfigurationError` or
  :class:`~klingwatch.kling.errors.RequestValidationError` for a local mistake found before
  sending.
* **Reads are retried** (:mod:`klingwatch.kling.retry`) on 1302, 5000-5002, dropped connections,
  timeouts and garbled answers, honouring ``Retry-After``. **Creates are never retried**, except
  the one re-sign on 1003/1004 that :class:`~klingwatch.kling.auth.KlingAuth` does (Kling refused
  before creating anything). A create that got 5000/5002, timed out, lost its connection or got
  garbage raises an error with ``may_exist=True``: look the task up with
  :meth:`KlingClient.get_by_external_id` before sending it again.
* Legacy products are read at ``<create path>/{id}`` (by task id or, in the same slot, by external
  id); new-standard products through ``/tasks``, which takes an API key only: with AK/SK alone those
  calls raise :class:`~klingwatch.errors.ConfigurationError` before sending anything.
* :attr:`KlingClient.stats` counts every request by route and outcome.
"""

from __future__ import annotations

import inspect
import logging
import random
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Container,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from klingwatch.clock import Clock, RealClock, format_duration, to_ms
from klingwatch.environment import DEFAULT_API_BASE, kling_api_base, kling_credentials
from klingwatch.errors import ConfigurationError, KlingwatchError
from klingwatch.kling import pacing
from klingwatch.kling.auth import Credentials, KlingAuth
from klingwatch.kling.budget import RequestBudget
from klingwatch.kling.envelope import parse_task, parse_tasks, raw_created_ms, raw_task_id
from klingwatch.kling.errors import (
    AuthenticationError,
    BadResponse,
    KlingError,
    NotFound,
    PermissionDenied,
    TaskNotFound,
    TasksStyleRefused,
    TokenExpired,
    WaitTimeout,
)
from klingwatch.kling.models import ApiStandard, Task, TaskStatus
from klingwatch.kling.outcomes import LOOKUP_MISS, MAX_CREATE_SENDS, CreateAction, create_outcome
from klingwatch.kling.pacing import CadencePolicy, Timing
from klingwatch.kling.products import Family, Product, get_product
from klingwatch.kling.retry import RetryPolicy, is_retryable_read
from klingwatch.kling.session import Session
from klingwatch.kling.stats import ClientStats

__all__ = [
    "DEFAULT_WAIT_DEADLINE",
    "MAX_CREATE_SENDS",
    "MAX_IDS_PER_CALL",
    "KlingClient",
    "ListedPage",
]

logger = logging.getLogger(__name__)

#: ``GET /tasks`` takes at most this many ids per call (21 answers 400/1201, seen live).
MAX_IDS_PER_CALL = 20
#: How long :meth:`KlingClient.wait` waits when no deadline is given. Generous: tasks have been
#: seen running for over an hour, and a wait that gives up early calls a live task dead.
DEFAULT_WAIT_DEADLINE = timedelta(hours=3)
#: Requests per nominal second and requests in flight at once, by default (Kling's rate limit,
#: 1302, is per account and undocumented; these stay well clear of it).
DEFAULT_REQUESTS_PER_SECOND, DEFAULT_CONCURRENCY = 5.0, 4
#: A ``POST /tasks`` listing stops following cursors after this many pages.
MAX_LIST_PAGES = 1000
#: Legacy list pages: ``pageNum`` 1-1000, ``pageSize`` 1-500.
MAX_PAGE_NUM, MAX_PAGE_SIZE = 1000, 500


OnUpdate = Callable[[Task], Awaitable[None] | None]
_T = TypeVar("_T")

# Statuses only move forward; wait() ignores a read that reports an earlier one.
_RANK = {
    TaskStatus.SUBMITTED: 0,
    TaskStatus.PROCESSING: 1,
    TaskStatus.SUCCEED: 2,
    TaskStatus.FAILED: 2,
}


class KlingClient:
    """An async client for Kling's task API (legacy ``/v1`` and the 2026 ``/tasks`` standard).

    Credentials: ``access_key`` + ``secret_key`` (JWT), or ``api_key``, or both (the API key is
    then used). When none is given, all three come from ``KLING_ACCESS_KEY``,
    ``KLING_SECRET_KEY`` and ``KLING_API_KEY``; ``base_url`` from ``KLING_API_BASE`` (default
    :data:`~klingwatch.environment.DEFAULT_API_BASE`). Nothing else is read: no ``.env``, no
    ``klingwatch.toml`` (the command line builds its clients from its settings with
    :func:`klingwatch.cli.common.make_client`). ``transport`` or ``http_client`` replace the
    network (tests use ``httpx.MockTransport`` / ``httpx.ASGITransport``); a given
    ``http_client`` is not closed by :meth:`aclose`. ``clock`` (default: the wall clock) paces
    waits and retries; ``timeout`` is per request, in seconds; ``retry`` is the read retry
    policy; ``requests_per_second`` and ``max_concurrency`` bound every request of the client.
    """

    def __init__(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        max_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if any(v is not None for v in (access_key, secret_key, api_key)):
            credentials = Credentials(access_key, secret_key, api_key)
        else:
            credentials = Credentials(**kling_credentials())
        base = base_url if base_url is not None else kling_api_base()
        if not base.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"KLING_API_BASE must be an http(s) URL such as {DEFAULT_API_BASE}, got {base!r}"
            )
        clock = clock if clock is not None else RealClock()
        self._session = Session(
            base_url=base,
            auth=KlingAuth(credentials, clock=clock),
            clock=clock,
            retry=retry if retry is not None else RetryPolicy(),
            budget=RequestBudget(
                clock=clock, requests_per_second=requests_per_second, concurrency=max_concurrency
            ),
            transport=transport,
            http_client=http_client,
            timeout=timeout,
        )
        self._clock = clock
        self._rng = random.Random()
        self._tasks_refused: KlingError | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> KlingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the ``http_client`` was given by the caller)."""
        await self._session.aclose()

    @property
    def base_url(self) -> str:
        return self._session.base_url

    @property
    def budget(self) -> RequestBudget:
        """The rate and concurrency bound every request of this client passes."""
        return self._session.budget

    @property
    def stats(self) -> ClientStats:
        """Requests sent, by route and by outcome (HTTP status and Kling code), and retries."""
        return self._session.stats

    @property
    def auth(self) -> KlingAuth:
        """The ``httpx.Auth`` in use (its repr and counters show no secret)."""
        return self._session.auth

    @property
    def has_api_key(self) -> bool:
        """True when an API key is configured, so the new-standard ``/tasks`` calls work."""
        return self._session.auth.uses_api_key

    @property
    def tasks_api(self) -> bool:
        """True while the new-standard ``/tasks`` reads may be used: an API key is configured
        and the server has not refused the style (:class:`TasksStyleRefused`, remembered)."""
        return self.has_api_key and self._tasks_refused is None

    @property
    def clock(self) -> Clock:
        return self._clock

    def __repr__(self) -> str:
        auth = "api_key" if self.has_api_key else "ak/sk"
        return f"KlingClient(base_url={self.base_url!r}, auth={auth!r}, {self.stats!r})"

    # -- creating ----------------------------------------------------------------------------
    async def create(
        self,
        product: str | Product,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Validate ``request`` and create one task; never retried (see the module docstring).

        Raises :class:`RequestValidationError` before sending if Kling would refuse the request.
        On an error with ``may_exist=True`` the task may have been created: recover with
        :meth:`get_by_external_id` before any resend (so pass an ``external_task_id``).
        """
        p = _product(product)
        body = p.body(request, external_task_id=external_task_id, callback_url=callback_url)
        if p.standard is ApiStandard.TASKS:
            self._require_api_key(f"creating a {p.name} task")
        data = await self._session.exchange("POST", p.path, p.path, json_body=body)
        task = parse_task(data, f"POST {p.path}")
        if task.external_id is None and external_task_id is not None:
            # Some answers leave task_info out; the id we sent is still the task's.
            task = task.model_copy(update={"external_id": external_task_id})
        logger.info("created %s task %s (external id %s)", p.name, task.id, task.external_id)
        return task

    # -- reading one -------------------------------------------------------------------------
    async def get(self, product: str | Product, task_id: str) -> Task:
        """The task ``task_id`` of ``product``; :class:`TaskNotFound` if Kling has no such task."""
        p = _product(product)
        if p.standard is ApiStandard.TASKS:
            found = await self.get_many([task_id])
            if task_id not in found:
                raise _not_found(f"no task with id {task_id!r}")
            return found[task_id]
        return await self._get_one(p, task_id, by="id")

    async def get_by_external_id(self, product: str | Product, external_task_id: str) -> Task:
        """The task created with ``external_task_id``; :class:`TaskNotFound` if there is none.

        Legacy products put the external id in the task id's path slot
        (``GET <create path>/{external_task_id}``, as Kling's docs show). Whether Kling also or
        instead takes ``?external_task_id=`` is not settled (KLING_PROTOCOL.md section 4), and a
        false "not found" here would make a caller resend a create, so a path-slot "not found"
        is confirmed with the query form before it is believed. New-standard products ask
        ``GET /tasks?external_task_ids=``.
        """
        p = _product(product)
        if p.standard is ApiStandard.TASKS:
            found = await self.get_many_by_external_id([external_task_id])
            if external_task_id not in found:
                raise _not_found(f"no task with external id {external_task_id!r}")
            return found[external_task_id]
        try:
            return await self._get_one(p, external_task_id, by="external_id")
        except TaskNotFound:
            return await self._get_one(p, external_task_id, by="external_id", in_query=True)

    async def _get_one(self, p: Product, key: str, *, by: str, in_query: bool = False) -> Task:
        if in_query:
            path, route, params = p.path, f"{p.path}?external_task_id", {"external_task_id": key}
        else:
            path, route, params = f"{p.path}/{_segment(key)}", f"{p.path}/{{id}}", None
        what = f"GET {path}"

        def ours(task: Task) -> bool:
            return (task.id if by == "id" else task.external_id) == key

        async def read() -> Task:
            data = await self._session.exchange("GET", path, route, params=params, lookup=True)
            if isinstance(data, list):
                # A one-item list, or (a server ignoring the query) a list page: pick ours.
                for task in parse_tasks(data, what):
                    if ours(task):
                        return task
                raise _not_found(f"no task with {by.replace('_', ' ')} {key!r} in the answer")
            task = parse_task(data, what)
            if in_query and task.external_id not in (None, key):
                raise _not_found(f"{what} answered another task ({task.external_id!r})")
            if by == "external_id" and task.external_id is None:
                task = task.model_copy(update={"external_id": key})  # not echoed back
            return task

        return await self._session.read(read, f"GET {route}")

    # -- reading many ------------------------------------------------------------------------
    async def list_page(self, product: str | Product, page: int = 1, size: int = 500) -> list[Task]:
        """One page of a legacy product's task list (``pageNum``/``pageSize``), in Kling's order."""
        p = _listed_product(product, page, size)

        async def read() -> list[Task]:
            params = {"pageNum": page, "pageSize": size}
            data = await self._session.exchange("GET", p.path, p.path, params=params)
            return parse_tasks(data, f"GET {p.path}")

        return await self._session.read(read, f"GET {p.path}")

    async def list_page_of(
        self, product: str | Product, ids: Container[str], page: int = 1, size: int = 500
    ) -> ListedPage:
        """:meth:`list_page`, parsing only the tasks whose id is in ``ids``: a caller that
        watches some of a page's 500 tasks does not pay for reading the rest (at 10000 tasks the
        pages were most of the engine's work). The page's length and every task's creation time
        come along, for deciding whether to walk on."""
        p = _listed_product(product, page, size)

        async def read() -> ListedPage:
            params = {"pageNum": page, "pageSize": size}
            what = f"GET {p.path}"
            data = await self._session.exchange("GET", p.path, p.path, params=params)
            if not isinstance(data, list):
                return ListedPage(parse_tasks(data, what), 0, [])  # a malformed page says why
            tasks = [parse_task(item, what) for item in data if raw_task_id(item) in ids]
            created = [ms for ms in map(raw_created_ms, data) if ms is not None]
            return ListedPage(tasks, len(data), created)

        return await self._session.read(read, f"GET {p.path}")

    async def iter_tasks(self, product: str | Product, *, size: int = 500) -> AsyncIterator[Task]:
        """Every task of a legacy product, page by page until a short or empty page.

        A task seen on an earlier page is not yielded again (new tasks shift the pages).
        """
        seen: set[str] = set()
        for page in range(1, MAX_PAGE_NUM + 1):
            tasks = await self.list_page(product, page, size)
            for task in tasks:
                if task.id not in seen:
                    seen.add(task.id)
                    yield task
            if len(tasks) < size:
                return

    async def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks with these ids (``GET /tasks?task_ids=``, 20 per call), keyed by id.

        An id Kling does not know is simply absent from the result. Needs an API key.
        """
        return await self._many("task_ids", task_ids, key=lambda t: t.id)

    async def get_many_by_external_id(self, ids: Sequence[str]) -> dict[str, Task]:
        """The tasks with these external ids (``GET /tasks?external_task_ids=``), keyed by them."""
        return await self._many("external_task_ids", ids, key=lambda t: t.external_id)

    async def _many(
        self, param: str, ids: Sequence[str], *, key: Callable[[Task], str | None]
    ) -> dict[str, Task]:
        if isinstance(ids, str):
            raise ConfigurationError(f"{param}: give a list of ids, not one string")
        wanted = list(dict.fromkeys(str(i) for i in ids if i))
        if not wanted:
            return {}
        self._require_api_key(f"reading tasks by {param}")
        found: dict[str, Task] = {}
        for start in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[start : start + MAX_IDS_PER_CALL]

            # Literal commas, as Kling's docs write the list (httpx would send %2C).
            query = ",".join(quote(i, safe="") for i in chunk)

            async def read(query: str = query) -> list[Task]:
                data = await self._session.exchange("GET", f"/tasks?{param}={query}", "/tasks")
                return parse_tasks(data, "GET /tasks")

            chunk_set = set(chunk)
            for task in await self._tasks_read(read, "GET /tasks"):
                k = key(task)
                if k is not None and k in chunk_set:
                    found[k] = task
        return found

    async def list_tasks(
        self,
        *,
        status: Iterable[TaskStatus | str] | None = None,
        product_type: Iterable[Family | str] | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 500,
        max_pages: int | None = None,
    ) -> list[Task]:
        """Tasks of the account (``POST /tasks``), every page, following ``next_cursor``.

        ``status`` and ``product_type`` filter (e.g. ``status=[TaskStatus.SUBMITTED,
        TaskStatus.PROCESSING]`` for every active task); ``since``/``until`` bound the creation
        time (datetime or Unix seconds; Kling's default is the last 30 days); ``limit`` is the page
        size (1-500). Includes tasks created through legacy endpoints. Needs an API key.

        ``max_pages`` stops the walk after that many pages and returns what they held (a caller
        that reads whatever is missing another way); without it, more than
        ``MAX_LIST_PAGES`` pages is an error.
        """
        if not 1 <= limit <= 500:
            raise ConfigurationError(f"limit must be 1-500, got {limit}")
        self._require_api_key("listing tasks")
        body: dict[str, Any] = {"limit": limit}
        if since is not None:
            body["start_time"] = to_ms(since)
        if until is not None:
            body["end_time"] = to_ms(until)
        filters: list[dict[str, Any]] = []
        if status is not None:
            values = [TaskStatus.parse(s).to_tasks_api() for s in _many_of(status)]
            filters.append({"key": "status", "values": values})
        if product_type is not None:
            filters.append({"key": "product_type", "values": _families(product_type)})
        if filters:
            body["filters"] = filters
        tasks: dict[str, Task] = {}
        cursors: set[str] = set()
        for walked in range(1, MAX_LIST_PAGES + 1):
            page_body = dict(body)

            async def read(page_body: dict[str, Any] = page_body) -> dict[str, Any]:
                data = await self._session.exchange("POST", "/tasks", "/tasks", json_body=page_body)
                if not isinstance(data, dict) or not isinstance(data.get("result"), list):
                    raise BadResponse(
                        f"POST /tasks: expected data {{result: [...]}}, got {data!r:.200}"
                    )
                return {**data, "result": parse_tasks(data["result"], "POST /tasks")}

            page = await self._tasks_read(read, "POST /tasks")
            for task in page["result"]:
                tasks[task.id] = task
            cursor = page.get("next_cursor")
            has_more = page.get("has_more")
            if has_more is False or (has_more is None and not cursor):
                break
            if max_pages is not None and walked >= max_pages:
                break
            if not cursor:
                raise BadResponse("POST /tasks answered has_more without a next_cursor")
            if str(cursor) in cursors:
                raise BadResponse(f"POST /tasks returned cursor {cursor!r} twice (a cursor loop)")
            cursors.add(str(cursor))
            body["cursor"] = cursor
        else:
            raise BadResponse(f"POST /tasks still had more after {MAX_LIST_PAGES} pages")
        return list(tasks.values())

    async def create_and_wait(
        self,
        product: str | Product,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
        deadline: float | timedelta | None = None,
        on_update: OnUpdate | None = None,
    ) -> Task:
        """:meth:`create`, then :meth:`wait`; an ambiguous create is recovered, never doubled.

        Every send carries an external id (``external_task_id``, else a fresh ``kw-<uuid>``).
        When a create's answer is lost (``may_exist``), the task is looked up by that id and
        sent again only if the lookup finds nothing, at most :data:`MAX_CREATE_SENDS` times in
        all. Errors that say the task was not created (validation, content policy, 1303, ...)
        are raised as they are.
        """
        p = _product(product)
        external_id = external_task_id or f"kw-{uuid.uuid4().hex}"
        task = await self._create_recovering(p, request, external_id, callback_url)
        return await self.wait(p, task.id, deadline=deadline, on_update=on_update)

    async def _create_recovering(
        self, p: Product, request: Mapping[str, Any], external_id: str, callback_url: str | None
    ) -> Task:
        """Send until created, following the create outcome table (:mod:`.outcomes`)."""
        for send in range(1, MAX_CREATE_SENDS + 1):
            try:
                return await self.create(
                    p, request, external_task_id=external_id, callback_url=callback_url
                )
            except KlingError as exc:
                if create_outcome(exc, sends=send).action is not CreateAction.LOOK_UP:
                    raise  # created nothing, or refused for good: the caller decides
                failed = exc
            try:
                return await self.get_by_external_id(p, external_id)
            except TaskNotFound:
                if create_outcome(LOOKUP_MISS, sends=send).action is CreateAction.GIVE_UP:
                    raise failed from failed.__cause__  # keep its own cause (an httpx error)
                logger.warning(
                    "create of %s failed (%s) and no task has external id %s: sending again",
                    p.name,
                    type(failed).__name__,
                    external_id,
                )
            except KlingwatchError as lookup_exc:  # whatever stopped the lookup, say so
                failed.add_note(f"the lookup by external id {external_id!r} failed: {lookup_exc}")
                raise failed from failed.__cause__  # the lookup error stays as __context__
        raise AssertionError("unreachable")  # pragma: no cover

    # -- waiting -----------------------------------------------------------------------------
    async def wait(
        self,
        product: str | Product,
        task_id: str,
        *,
        deadline: float | timedelta | None = None,
        on_update: OnUpdate | None = None,
    ) -> Task:
        """Poll one task until it succeeds or fails; return the final task.

        Looks at once, then as the engine would (:mod:`klingwatch.kling.pacing`, the one look
        schedule): soon after creation, then by where the task should be given its product's
        expected queue and run times, never more often than every 2 s nor less than every
        120 s. ``on_update`` (plain or async) is called with the task
        on every status change, the first look included. If the first look fails, its error is
        raised; later, passing errors that survive the read retries are logged and waited
        through, while the rest (not found, auth) are raised.
        ``deadline`` is nominal seconds or a timedelta (default :data:`DEFAULT_WAIT_DEADLINE`);
        past it, one last look, then :class:`WaitTimeout` carrying the last task seen.
        """
        p = _product(product)
        limit = _seconds(DEFAULT_WAIT_DEADLINE if deadline is None else deadline)
        scale = self._clock.scale
        # The pacing policy and timings on this clock's axis (clock seconds, like the engine's).
        policy = CadencePolicy().scaled(scale)
        timing = Timing.from_expected(p.expected_timing(), scale=scale)
        start = self._clock.monotonic()
        first_look = self._clock.time()
        task: Task | None = None
        running_since: float | None = None  # when the task was first seen processing
        last_error: KlingError | None = None
        while True:
            looked_at = self._clock.time()
            try:
                seen = await self.get(p, task_id)
            except KlingError as exc:
                # Before the first answer there is nothing to wait for (a wrong base URL, a
                # server down): say so now. Later, passing failures are waited through.
                if task is None or not is_retryable_read(exc):
                    raise
                logger.warning("waiting for %s: read failed (%s); will look again", task_id, exc)
                last_error = exc
            else:
                last_error = None
                # A stale read (an older status than already seen) changes nothing.
                if task is None or _RANK[seen.status] > _RANK[task.status]:
                    task = seen
                    if seen.status is TaskStatus.PROCESSING:
                        # Kling's last update of a running task is when it started, at the
                        # latest; our first sighting lags it.
                        updated = seen.updated_at.timestamp() if seen.updated_at else looked_at
                        running_since = min(updated, looked_at)
                    await _call(on_update, seen)
                if seen.is_terminal:
                    return seen
            elapsed = (self._clock.monotonic() - start) / scale
            assert task is not None  # the first look either read the task or raised
            if elapsed >= limit - 1e-6:  # float sums of sleeps may fall a hair short
                raise WaitTimeout(
                    f"task {task_id} is still {task.status} after waiting {format_duration(limit)}",
                    task,
                ) from last_error
            created = task.created_at.timestamp() if task.created_at else first_look
            began, finish = pacing.phase(
                task.status, timing, created=created, running_since=running_since
            )
            now = self._clock.time()
            elapsed_in_phase = 0.0 if began is None else now - began
            step = pacing.next_interval(
                elapsed_in_phase,
                finish,
                policy,
                self._rng.random(),
                from_submit=finish is not timing.run,
            )
            await self._clock.sleep(min(step / scale, limit - elapsed))

    def _require_api_key(self, what: str) -> None:
        if not self.has_api_key:
            raise ConfigurationError(
                f"{what} needs Kling's new-standard API, which accepts only an API key: set "
                "KLING_API_KEY (AK/SK credentials are refused there)"
            )
        if self._tasks_refused is not None:
            raise TasksStyleRefused(
                f"{what}: {self.base_url} refuses the /tasks style ({self._tasks_refused})"
            ) from self._tasks_refused

    async def _tasks_read(self, read: Callable[[], Awaitable[_T]], what: str) -> _T:
        """A ``/tasks`` read under the retry policy; a refusal of the style is remembered."""
        try:
            return await self._session.read(read, what)
        except (AuthenticationError, PermissionDenied, NotFound) as exc:
            if isinstance(exc, TokenExpired):
                raise
            if self._tasks_refused is None:
                logger.warning(
                    "%s refuses the /tasks style (%s); reading the legacy way from now on",
                    self.base_url,
                    exc,
                )
            self._tasks_refused = exc
            raise TasksStyleRefused(f"{what}: {self.base_url} refuses the /tasks style") from exc


# -- helpers ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ListedPage:
    """One legacy list page read by :meth:`KlingClient.list_page_of`."""

    #: the tasks asked for that the page held
    tasks: list[Task]
    #: how many tasks the page held in all
    size: int
    #: the creation time (ms) of every task on the page, in the page's order
    created_ms: list[int]


def _listed_product(product: str | Product, page: int, size: int) -> Product:
    """The legacy product whose list page ``page`` of ``size`` is asked for (checked)."""
    p = _product(product)
    if p.standard is not ApiStandard.LEGACY:
        raise ConfigurationError(
            f"{p.name} is a new-standard product; list its tasks with list_tasks()"
        )
    if not (1 <= page <= MAX_PAGE_NUM and 1 <= size <= MAX_PAGE_SIZE):
        raise ConfigurationError(
            f"page must be 1-{MAX_PAGE_NUM} and size 1-{MAX_PAGE_SIZE}, got {page}, {size}"
        )
    return p


def _product(product: str | Product) -> Product:
    if isinstance(product, Product):
        return product
    try:
        return get_product(product)
    except KlingwatchError:  # UnknownProduct: already the one clear line
        raise
    except KeyError as exc:
        raise ConfigurationError(str(exc.args[0]) if exc.args else str(exc)) from None


def _segment(value: str) -> str:
    """A task id or external id as one URL path segment."""
    text = str(value).strip()
    if not text:
        raise ConfigurationError("a task id or external task id must not be empty")
    return quote(text, safe="")


def _not_found(message: str) -> TaskNotFound:
    return TaskNotFound(message, status_code=200, code=None)


def _many_of(values: Iterable[Any]) -> list[Any]:
    return [values] if isinstance(values, str) else list(values)


def _families(values: Iterable[Family | str]) -> list[str]:
    out: list[str] = []
    for value in _many_of(values):
        try:
            out.append(Family(str(value).replace("-", "_")).value)
        except ValueError:
            known = ", ".join(f.value for f in Family)
            raise ConfigurationError(f"unknown product_type {value!r}; use {known}") from None
    return out


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def _call(callback: OnUpdate | None, task: Task) -> None:
    if callback is None:
        return
    result = callback(task)
    if inspect.isawaitable(result):
        await result
