"""The new-standard API (KLING_PROTOCOL.md section 10). API keys only.

::

    POST /{product}/{model}                 create (text-to-video, image-to-video, omni-video,
                                            motion-control); routing fields in ``options``,
                                            an empty string meaning none
    GET  /tasks?task_ids=a,b                up to 20 tasks by id; unknown ids are absent
    GET  /tasks?external_task_ids=x,y       the same by external id (not both)
    POST /tasks                             list: time range, cursor, limit <= 500, filters on
                                            status and product_type; legacy-created tasks too
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.kling.envelope import tasks_page
from klingwatch.kling.models import ApiStandard, TaskStatus
from klingwatch.kling.products import PRODUCTS, Family, get_product
from klingwatch.sandbox.lifecycle import SandboxTask
from klingwatch.sandbox.outputs import epoch_ms, task_at
from klingwatch.sandbox.routes_v1 import serve_create
from klingwatch.sandbox.runtime import Sandbox, kling_endpoint, ok, read_json
from klingwatch.sandbox.state import SandboxError

__all__ = ["MAX_IDS", "tasks_routes"]

#: At most this many ids per ``GET /tasks`` (21 answers 400/1201, seen live).
MAX_IDS = 20
_LIMIT_DEFAULT, _LIMIT_MAX = 100, 500
_DAY = 86_400.0
_STATUSES = {s.to_tasks_api(): s for s in TaskStatus}
_FAMILIES = {f.value: f for f in Family}
#: new-standard product kinds (``text-to-video``, ...), from the registry
_KINDS = frozenset(
    p.name.partition("/")[0] for p in PRODUCTS.values() if p.standard is ApiStandard.TASKS
)


async def _create(request: Request, sandbox: Sandbox) -> Response:
    kind, model = request.path_params["kind"], request.path_params["model"]
    if kind not in _KINDS:
        raise SandboxError(1202, f"Invalid request path: /{kind}/{model}", status=404)
    try:
        product = get_product(f"{kind}/{model}")
    except KeyError:
        raise SandboxError(1201, f"model {model!r} is not offered for {kind}") from None
    body = await read_json(request)
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise SandboxError(1201, "options must be an object")
    return serve_create(request, sandbox, product, body, dict(options or {}))


def _ids(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


async def _get_many(request: Request, sandbox: Sandbox) -> Response:
    params = request.query_params
    by_id, by_ext = params.get("task_ids"), params.get("external_task_ids")
    if by_id is not None and by_ext is not None:
        raise SandboxError(1201, "give task_ids or external_task_ids, not both")
    if by_id is None and by_ext is None:
        raise SandboxError(1201, "task_ids or external_task_ids is required")
    ids = _ids(by_id if by_id is not None else by_ext or "")
    if not ids:
        raise SandboxError(1201, "no id given")
    if len(ids) > MAX_IDS:
        raise SandboxError(1201, f"at most {MAX_IDS} ids per request, got {len(ids)}")
    state = sandbox.state
    find = state.find if by_id is not None else state.find_external
    found: dict[str, SandboxTask] = {}
    for ident in ids:
        task = find(ident)
        if task is not None:
            found[task.task_id] = task
    names = [*ids, *(i for t in found.values() for i in (t.task_id, t.external_id) if i)]
    sandbox.read_scripted(request, names, looked_up=ids if by_id is None else ())
    now = state.advance()
    tasks = list(found.values())
    if sandbox.config.many_order == "shuffled":
        with state.lock:
            state.order_rng.shuffle(tasks)
    state.note_reads(tasks, single=True)
    return ok([task_at(t, now).to_tasks_dict() for t in tasks])


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> int | None:
    if cursor in (None, ""):
        return None
    try:
        text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode()
        prefix, _, seq = text.partition(":")
        if prefix != "seq":
            raise ValueError(text)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SandboxError(1201, f"cursor {cursor!r} is not one this API returned") from None


def _ms_param(body: dict[str, Any], key: str, default: int) -> int:
    """Epoch milliseconds, as an integer or a string of digits: the pages show both
    (``"start_time": 1781193600000`` in kling-3.0-turbo-t2v.md, ``"1781193600000"`` and the type
    ``string`` in kling-omni-3.0-ovg.md and kling-2.6-t2v.md)."""
    value = body.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SandboxError(
            1201, f"{key} must be epoch milliseconds (an integer or digits), got {value!r}"
        )
    return int(value)


def _filters(body: dict[str, Any]) -> tuple[set[TaskStatus] | None, set[Family] | None]:
    raw = body.get("filters") or []
    if not isinstance(raw, list):
        raise SandboxError(1201, "filters must be a list of {key, values}")
    statuses: set[TaskStatus] | None = None
    families: set[Family] | None = None
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise SandboxError(1201, "each filter must be {key, values: [...]}")
        key, values = item.get("key"), [str(v) for v in item["values"]]
        if key == "status":
            bad = [v for v in values if v not in _STATUSES]
            if bad:
                raise SandboxError(
                    1201, f"unknown status {bad[0]!r}; use submitted, processing, succeeded, failed"
                )
            statuses = {_STATUSES[v] for v in values}
        elif key == "product_type":
            bad = [v for v in values if v not in _FAMILIES]
            if bad:
                raise SandboxError(
                    1201, f"unknown product_type {bad[0]!r}; use video, image, try_on"
                )
            families = {_FAMILIES[v] for v in values}
        else:
            raise SandboxError(1201, f"unknown filter key {key!r}; use status or product_type")
    return statuses, families


async def _list(request: Request, sandbox: Sandbox) -> Response:
    raw = await request.body()
    body = await read_json(request) if raw.strip() else {}
    state = sandbox.state
    now = state.advance()
    end_ms = _ms_param(body, "end_time", epoch_ms(now))
    start_ms = _ms_param(body, "start_time", epoch_ms(now - sandbox.clock.scaled(30 * _DAY)))
    if start_ms > end_ms:
        raise SandboxError(1201, "start_time is after end_time")
    # Both bounds are inclusive in milliseconds, i.e. [start, end + 1 ms) in clock seconds.
    start, end = start_ms / 1000, (end_ms + 1) / 1000
    limit = body.get("limit", _LIMIT_DEFAULT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _LIMIT_MAX:
        raise SandboxError(1201, f"limit must be an integer within 1-{_LIMIT_MAX}, got {limit!r}")
    cursor = _decode_cursor(body.get("cursor"))
    statuses, families = _filters(body)
    sandbox.read_scripted(request)
    with state.lock:
        candidates = _candidates(sandbox, start, end, cursor, statuses)
        page: list[SandboxTask] = []
        has_more = False
        for task in candidates:
            if families is not None and task.family not in families:
                continue
            if statuses is not None and task.status_at(now) not in statuses:
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(task)
    state.note_reads(page)
    cursor_out = _encode_cursor(page[-1].seq) if has_more else None
    return ok(
        tasks_page((task_at(t, now) for t in page), next_cursor=cursor_out, has_more=has_more)
    )


def _candidates(
    sandbox: Sandbox,
    start: float,
    end: float,
    cursor: int | None,
    statuses: set[TaskStatus] | None,
) -> Iterable[SandboxTask]:
    """Tasks to filter, in list order. Asking for active tasks only walks the active set, which
    the slots keep small, instead of the whole history."""
    state = sandbox.state
    if statuses is not None and not any(s.is_terminal for s in statuses):
        newest = sandbox.config.list_order == "newest"
        active = state.active_tasks()
        if newest:
            active.reverse()
        return (
            t
            for t in active
            if start <= t.created < end
            and (cursor is None or (t.seq < cursor if newest else t.seq > cursor))
        )
    return state.in_range(start, end, cursor)


def tasks_routes() -> list[Route]:
    """``/tasks`` and the new-standard create route (register after every other route)."""
    return [
        Route("/tasks", kling_endpoint("GET /tasks", _get_many, tasks_api=True), methods=["GET"]),
        Route("/tasks", kling_endpoint("POST /tasks", _list, tasks_api=True), methods=["POST"]),
        Route(
            "/{kind}/{model}",
            kling_endpoint("POST /{product}/{model}", _create, tasks_api=True),
            methods=["POST"],
        ),
    ]
