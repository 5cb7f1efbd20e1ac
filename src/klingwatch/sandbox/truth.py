"""The ground truth, as JSON under ``/sandbox/`` (no auth, never touched by chaos).

================================  ================================================================
``GET /sandbox/stats``            requests served by route and answer, creates, tasks by status,
                                  units, callbacks, injected faults
``GET /sandbox/tasks``            every task's true timeline (``?status=``, ``?product=``,
                                  ``?external_task_id=`` filter; ``?offset=&limit=`` page)
``GET /sandbox/config``           the configuration (secrets left out)
``GET /sandbox/tasks/{id}``       one task (by task id or external id), with its request
``GET /sandbox/external/{id}``    how many creates carried an external id, how many reads looked
                                  it up, and what task it names
``GET /sandbox/slots``            limits, slots in use now, peak, and usage over time
``GET /sandbox/callbacks``        delivery counters and the most recent deliveries
``GET /sandbox/script``           scripted answers still waiting, and how many were given
``POST /sandbox/script``          add scripted answers (a ``ScriptConfig`` as JSON)
``DELETE /sandbox/script``        forget every waiting scripted answer
``POST /sandbox/reset``           forget everything; the seed and the configured script start over
================================  ================================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klingwatch.kling.products import Family
from klingwatch.kling.results import format_amount
from klingwatch.sandbox.delivery import FAULT_KEY
from klingwatch.sandbox.lifecycle import SandboxTask
from klingwatch.sandbox.outputs import epoch_ms
from klingwatch.sandbox.runtime import CODE_KEY, ROUTE_KEY, Sandbox, json_response, sandbox_of
from klingwatch.sandbox.script import ScriptConfig

__all__ = ["RequestRecorder", "task_truth", "truth_routes"]


def task_truth(sandbox: Sandbox, task: SandboxTask, now: float) -> dict[str, Any]:
    """One task's true timeline and counters (``started_at``/``finished_at`` are ``None`` until
    the clock reaches them)."""
    status = task.status_at(now)
    return {
        "task_id": task.task_id,
        "product": task.product.name,
        "standard": task.standard.value,
        "family": task.family.value,
        "model": task.model,
        "mode": task.mode,
        "external_task_id": task.external_id,
        "status": status.value,
        "outcome": task.outcome.value,
        "task_status_msg": task.fail_reason,
        "created_at": epoch_ms(task.created),
        "started_at": epoch_ms(task.started) if now >= task.started else None,
        "finished_at": epoch_ms(task.finished) if now >= task.finished else None,
        "planned_started_at": epoch_ms(task.started),
        "planned_finished_at": epoch_ms(task.finished),
        "slot_cost": task.slot_cost,
        "units": format_amount(task.units),
        "creates_seen": sandbox.state.creates_seen.get(task.external_id, 0)
        if task.external_id is not None
        else 1,
        "reads": task.reads,
        "media_gets": sandbox.state.media_served.get(task.task_id, 0),
        "single_reads": task.single_reads,
        "callback_url": task.callback_url,
        "callbacks": dict(task.callbacks),
        "video_id": task.video_id,
    }


async def _stats(request: Request) -> Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    now = state.advance()
    with state.lock:
        by_route: dict[str, dict[str, int]] = {}
        by_code: Counter[str] = Counter()
        total = 0
        for (route, status, code), n in state.requests.items():
            key = f"{status if status is not None else '-'} {code if code is not None else '-'}"
            by_route.setdefault(route, {})[key] = by_route.get(route, {}).get(key, 0) + n
            by_code[str(code)] += n
            total += n
        by_status = Counter(t.status_at(now).value for t in state.order)
        body = {
            "now": epoch_ms(now),
            "requests": {"total": total, "by_route": by_route, "by_code": dict(by_code)},
            "creates": {
                "created": len(state.order),
                "refused": {str(c): n for c, n in state.create_refusals.items()},
                "external_ids_seen": len(state.creates_seen),
                "external_ids_sent_more_than_once": sum(
                    1 for n in state.creates_seen.values() if n > 1
                ),
            },
            "tasks": {"total": len(state.order), "by_status": dict(by_status)},
            "units_spent": format_amount(state.units_spent),
            "callbacks": {**sandbox.callbacks.counts, "pending": sandbox.callbacks.pending()},
            "chaos": dict(sandbox.chaos.counts) if sandbox.chaos is not None else {},
            "script": dict(sandbox.script.counts),
        }
    return json_response(body)


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    try:
        return max(0, int(raw)) if raw is not None else default
    except ValueError:
        return default


async def _tasks(request: Request) -> Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    now = state.advance()
    params = request.query_params
    status, product, ext = (
        params.get("status"),
        params.get("product"),
        params.get("external_task_id"),
    )
    offset = _int_query(request, "offset", 0)
    limit = _int_query(request, "limit", len(state.order))
    with state.lock:
        matching = [
            t
            for t in state.order
            if (product is None or t.product.name == product)
            and (ext is None or t.external_id == ext)
            and (status is None or t.status_at(now).value == status)
        ]
        tasks = [task_truth(sandbox, t, now) for t in matching[offset : offset + limit]]
    return json_response({"count": len(matching), "offset": offset, "tasks": tasks})


async def _config(request: Request) -> Response:
    config = sandbox_of(request).config
    # The script is shown by GET /sandbox/script (a raw answer's body need not be text).
    hidden = {"access_keys", "api_keys", "webhook_secret", "script"}
    shown = config.model_dump(mode="json", exclude=hidden)
    shown["access_keys"] = sorted(config.access_keys)  # the public halves only
    shown["api_keys"] = len(config.api_keys)
    shown["webhook_secret"] = bool(config.webhook_secret)
    return json_response(shown)


async def _task(request: Request) -> Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    now = state.advance()
    ident = request.path_params["task_id"]
    with state.lock:
        task = state.find(ident) or state.find_external(ident)
        if task is None:
            return json_response({"error": f"no task {ident!r}"}, status=404)
        return json_response({**task_truth(sandbox, task, now), "request": task.request})


async def _external(request: Request) -> Response:
    state = sandbox_of(request).state
    ident = request.path_params["external_id"]
    with state.lock:
        task = state.find_external(ident)
        return json_response(
            {
                "external_task_id": ident,
                "creates_seen": state.creates_seen.get(ident, 0),
                "lookups_seen": state.lookups_seen.get(ident, 0),
                "task_id": task.task_id if task is not None else None,
            }
        )


def slot_timeline(sandbox: Sandbox, now: float) -> dict[str, list[list[int]]]:
    """Per family: ``[time ms, slots in use]`` at every change up to ``now``."""
    events: dict[Family, list[tuple[float, int]]] = {f: [] for f in Family}
    for t in sandbox.state.order:
        events[t.family].append((t.created, t.slot_cost))
        if t.finished <= now:
            events[t.family].append((t.finished, -t.slot_cost))
    out: dict[str, list[list[int]]] = {}
    for family, items in events.items():
        items.sort(key=lambda e: (e[0], e[1]))  # frees before takes at the same instant
        level, series = 0, []
        for when, delta in items:
            level += delta
            series.append([epoch_ms(when), level])
        out[family.value] = series
    return out


async def _slots(request: Request) -> Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    now = state.advance()
    with state.lock:
        body = {
            "now": epoch_ms(now),
            "limits": {f.value: n for f, n in sandbox.config.slots.items()},
            "in_use": {f.value: n for f, n in state.in_use.items()},
            "peak": {f.value: n for f, n in state.peak.items()},
            "timeline": slot_timeline(sandbox, now),
        }
    return json_response(body)


async def _callbacks(request: Request) -> Response:
    deliverer = sandbox_of(request).callbacks
    limit = int(request.query_params.get("limit", "1000"))
    log = list(deliverer.log)[-limit:] if limit > 0 else []
    return json_response(
        {"counts": dict(deliverer.counts), "pending": deliverer.pending(), "log": log}
    )


async def _reset(request: Request) -> Response:
    sandbox_of(request).reset()
    return json_response({"reset": True})


def _script_view(sandbox: Sandbox) -> Response:
    return json_response({**sandbox.script.pending(), "given": dict(sandbox.script.counts)})


async def _script(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "DELETE":
        sandbox.script.clear()
    elif request.method == "POST":
        try:
            sandbox.script.load(ScriptConfig.model_validate_json(await request.body()))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return json_response({"error": f"not a script: {problems}"}, status=400)
    return _script_view(sandbox)


def truth_routes() -> list[Route]:
    return [
        Route("/sandbox/stats", _stats, methods=["GET"]),
        Route("/sandbox/config", _config, methods=["GET"]),
        Route("/sandbox/tasks", _tasks, methods=["GET"]),
        Route("/sandbox/tasks/{task_id}", _task, methods=["GET"]),
        Route("/sandbox/external/{external_id}", _external, methods=["GET"]),
        Route("/sandbox/slots", _slots, methods=["GET"]),
        Route("/sandbox/callbacks", _callbacks, methods=["GET"]),
        Route("/sandbox/script", _script, methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/reset", _reset, methods=["POST"]),
    ]


class RequestRecorder:
    """Outermost middleware: counts every Kling API answer as it was finally sent.

    The route handler names its route and code in the scope; chaos overrides the code when it
    replaces, drops or cuts the answer. A request chaos answered before any route ran is named by
    matching ``routes``. The sandbox's own ``/sandbox/...`` routes are not counted.
    """

    def __init__(self, app: ASGIApp, sandbox: Sandbox, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.sandbox = sandbox
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get(ROUTE_KEY) or self._route_of(scope)
            code = scope.get(CODE_KEY)
            answered: int | None = status
            if scope.get(FAULT_KEY) == "timeout":
                answered = None  # left unanswered on purpose
            elif status == 0:  # the handler failed: the app's error handler answers 500/5000
                answered, code = 500, 5000
            self.sandbox.state.record(route, answered, code)

    def _route_of(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "name", None) or scope["path"])
        return f"{scope['method']} (unknown route)"
