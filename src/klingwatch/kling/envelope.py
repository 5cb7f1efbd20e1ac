"""Kling's answer envelope, read and written: ``data``, list pages, callbacks, errors.

Every answer is ``{"code", "message", "request_id", "data"}`` (KLING_PROTOCOL.md section 2);
an error answer carries no ``data`` and the HTTP status of its code (:data:`HTTP_STATUS`).

Reading (the client): a body that is not an envelope (an HTML error page from a proxy, a
truncated body, JSON without a code) is a :class:`~klingwatch.kling.errors.BadResponse` saying
what arrived, never a bare ``JSONDecodeError`` or ``KeyError``. A non-zero code, or a non-2xx
status, goes through :func:`~klingwatch.kling.errors.error_for`, the one place that picks the
error class.

Writing (the sandbox, and anyone playing Kling): :func:`success` and :func:`failure` are the two
envelopes, :func:`legacy_page` and :func:`tasks_page` the ``data`` of list answers,
:func:`callback_payload` a callback body in each form, and :func:`dumps` the bytes. The task
objects inside come from :meth:`klingwatch.kling.models.Task.to_payload`.
"""

from __future__ import annotations

import email.utils
import json
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from klingwatch.kling.errors import BadResponse, UnknownTaskStatus, error_for
from klingwatch.kling.models import ApiStandard, Task

__all__ = [
    "HTTP_STATUS",
    "callback_payload",
    "dumps",
    "failure",
    "legacy_page",
    "parse_task",
    "parse_tasks",
    "peek",
    "retry_after",
    "success",
    "tasks_page",
    "unwrap",
]

#: The HTTP status Kling answers each error code with (KLING_PROTOCOL.md section 6).
HTTP_STATUS: dict[int, int] = {
    **dict.fromkeys((1000, 1001, 1002, 1003, 1004), 401),
    **dict.fromkeys((1100, 1101, 1102, 1302, 1303, 1304), 429),
    1103: 403,
    **dict.fromkeys((1200, 1201, 1300, 1301), 400),
    **dict.fromkeys((1202, 1203), 404),
    5000: 500,
    5001: 503,
    5002: 504,
}


def peek(content: bytes) -> dict[str, Any] | None:
    """Kling's envelope with its code as an ``int``, or ``None`` if ``content`` is not one."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or "code" not in body:
        return None
    code = body["code"]
    if isinstance(code, bool):
        return None
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        code = int(code)
    if not isinstance(code, int):
        return None
    return {**body, "code": code}


def unwrap(response: httpx.Response, what: str, *, lookup: bool, now: float) -> Any:
    """The ``data`` of a success envelope; else raise the matching :class:`KlingError`.

    ``what`` names the request in messages (``"GET /v1/videos/text2video/123"``); ``lookup``
    marks a single-task read (so "not found" becomes ``TaskNotFound``); ``now`` (Unix seconds)
    turns a ``Retry-After`` date into seconds.
    """
    status = response.status_code
    envelope = peek(response.content)
    if envelope is None:
        kind = response.headers.get("content-type", "no content type")
        text = (
            f"{what}: HTTP {status} answer is not Kling's JSON envelope ({kind}, "
            f"{len(response.content)} bytes): {_snippet(response.content)}"
        )
        if status in (401, 403):
            # Refused at the door (Kling's gateway, a proxy, a firewall): whatever the body,
            # nothing was created. As a bare BadResponse a create would count as "may exist".
            raise error_for(status, None, text, body=response.content)
        raise BadResponse(text, status_code=status, body=response.content)
    code = envelope["code"]
    if code != 0 or not 200 <= status < 300:
        request_id = envelope.get("request_id")
        raise error_for(
            status,
            code,
            envelope.get("message"),
            request_id=None if request_id in (None, "") else str(request_id),
            body=envelope,
            retry_after=retry_after(response.headers.get("retry-after"), now=now),
            lookup=lookup,
        )
    if "data" not in envelope:
        raise BadResponse(
            f"{what}: success envelope without data: {_snippet(response.content)}",
            status_code=status,
            body=response.content,
        )
    return envelope["data"]


def parse_task(data: Any, what: str) -> Task:
    """A task object of either standard; a malformed one is a BadResponse naming the request."""
    try:
        return Task.from_payload(data)
    except UnknownTaskStatus:
        raise
    except BadResponse as exc:
        raise BadResponse(f"{what}: {exc}", body=data) from exc


def parse_tasks(data: Any, what: str) -> list[Task]:
    """A list of task objects (or ``{result: [...]}``), each parsed by :func:`parse_task`."""
    if isinstance(data, dict) and isinstance(data.get("result"), list):
        data = data["result"]
    if not isinstance(data, list):
        raise BadResponse(
            f"{what}: expected a list of tasks, got {type(data).__name__}: {data!r:.200}"
        )
    return [parse_task(item, what) for item in data]


def raw_created_ms(item: Any) -> int | None:
    """A raw task object's creation time (ms, either standard), without parsing the task."""
    if not isinstance(item, dict):
        return None
    value: Any = item.get("created_at", item.get("create_time"))
    if isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def raw_task_id(item: Any) -> str | None:
    """A raw task object's id (either standard), without parsing the task."""
    if not isinstance(item, dict):
        return None
    value = item.get("task_id", item.get("id"))
    return None if value in (None, "") else str(value)


def retry_after(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` in seconds, from a number of seconds or an HTTP date (``None`` if absent)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content[:limit].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(content) > limit else "")


# -- writing ---------------------------------------------------------------------------------
def success(data: Any, *, request_id: str | None = None) -> dict[str, Any]:
    """A success envelope: code 0, "SUCCEED", a request id (a fresh UUID unless given)."""
    return {
        "code": 0,
        "message": "SUCCEED",
        "request_id": request_id or _request_id(),
        "data": data,
    }


def failure(code: int, message: str, *, request_id: str | None = None) -> dict[str, Any]:
    """An error envelope: ``{code, message, request_id}`` and no ``data``."""
    return {"code": code, "message": message, "request_id": request_id or _request_id()}


def legacy_page(tasks: Iterable[Task]) -> list[dict[str, Any]]:
    """``data`` of a legacy list answer (and of a single get by external id): an array."""
    return [task.to_legacy_dict() for task in tasks]


def tasks_page(
    tasks: Iterable[Task], *, next_cursor: str | None = None, has_more: bool = False
) -> dict[str, Any]:
    """``data`` of a ``POST /tasks`` answer: ``{result, count, next_cursor, has_more}``."""
    result = [task.to_tasks_dict() for task in tasks]
    return {
        "result": result,
        "count": len(result),
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


def callback_payload(task: Task, *, enveloped: bool = False) -> dict[str, Any]:
    """The body of a callback about ``task``, in the shape of its standard: the legacy flat
    task object (wrapped in the success envelope if ``enveloped``, as some proxies do), or the
    new standard's bare task object (never wrapped)."""
    if task.standard is ApiStandard.TASKS:
        return task.to_tasks_dict()
    payload = task.to_legacy_dict()
    return success(payload) if enveloped else payload


def dumps(payload: Any) -> bytes:
    """``payload`` as the compact UTF-8 JSON Kling sends."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _request_id() -> str:
    return str(uuid.uuid4())
