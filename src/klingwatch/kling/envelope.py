"""Kling's answer envelope: from an HTTP response to ``data``, tasks, or the right error.

Every answer is ``{"code", "message", "request_id", "data"}`` (KLING_PROTOCOL.md section 2). A
body that is not that (an HTML error page from a proxy, a truncated body, JSON without a code) is
a :class:`~klingwatch.kling.errors.BadResponse` saying what arrived, never a bare
``JSONDecodeError`` or ``KeyError``. A non-zero code, or a non-2xx status, goes through
:func:`~klingwatch.kling.errors.error_for`, the one place that picks the error class.
"""

from __future__ import annotations

import email.utils
import json
from typing import Any

import httpx

from klingwatch.kling.errors import BadResponse, UnknownTaskStatus, error_for
from klingwatch.kling.models import Task

__all__ = ["parse_task", "parse_tasks", "peek", "retry_after", "unwrap"]


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
