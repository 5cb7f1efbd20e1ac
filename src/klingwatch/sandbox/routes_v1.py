"""The legacy ``/v1/...`` API: create, single get, list pages, for every legacy product.

Per product (KLING_PROTOCOL.md sections 3 and 4)::

    POST <path>                      create; body validated by the product registry
    GET  <path>/{task_id}            one task; the path slot also takes an external id
    GET  <path>?external_task_id=X   one task by external id
    GET  <path>?pageNum=1&pageSize=30  a page, newest first, ``data`` an array

plus ``GET /account/costs`` (resource packs and remaining units; at most one request a second).
:func:`serve_create` is the create of either standard, scripted answers included.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.kling.envelope import legacy_page
from klingwatch.kling.errors import RequestValidationError
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.products import PRODUCTS, Family, Product
from klingwatch.kling.results import format_amount
from klingwatch.sandbox.lifecycle import SandboxTask
from klingwatch.sandbox.outputs import created_answer, epoch_ms, task_at
from klingwatch.sandbox.runtime import ROUTE_KEY, Sandbox, kling_endpoint, not_found, ok, read_json
from klingwatch.sandbox.script import ScriptedAnswer
from klingwatch.sandbox.state import SandboxError

__all__ = ["legacy_routes", "serve_create"]

_PAGE_NUM = (1, 1000)
_PAGE_SIZE = (1, 500)


def routing_fields(where: dict[str, Any]) -> tuple[str | None, str | None]:
    """Take ``external_task_id`` and ``callback_url`` out of ``where`` (checked to be strings).

    An empty string is no value: every example on Kling's pages sends ``"external_task_id": ""``
    (kling-3.0-turbo-t2v.md) or ``"callback_url": ""`` (kling-avatar.md), and the product
    registry reads them the same way, so the client and the sandbox agree.
    """
    out: list[str | None] = []
    for key in ("external_task_id", "callback_url"):
        value = where.pop(key, None)
        if value is not None and not isinstance(value, str):
            raise SandboxError(1201, f"{key} must be a string, got {type(value).__name__}")
        out.append(value or None)
    return out[0], out[1]


def validated(product: Product, body: dict[str, Any]) -> dict[str, Any]:
    """The product registry's verdict on a body, as Kling's 400/1201 when it refuses."""
    try:
        return product.validate(body)
    except RequestValidationError as exc:
        raise SandboxError(1201, exc.message) from None


def serve_create(
    request: Request,
    sandbox: Sandbox,
    product: Product,
    body: dict[str, Any],
    routing: dict[str, Any],
) -> Response:
    """A create of ``product`` in either standard: ``routing`` holds its ``external_task_id``
    and ``callback_url`` (the body itself, or its ``options``). The script may answer instead
    (counted as a create all the same), or after the task was made."""
    external_id, callback_url = routing_fields(routing)
    answer = sandbox.script.for_create(external_id, request.scope[ROUTE_KEY])
    if answer is not None and not answer.makes_task:
        refused = answer.code if answer.reply == "error" else None
        sandbox.state.note_create(external_id, refused=refused)
        raise ScriptedAnswer(answer)
    task = sandbox.state.create(
        product,
        validated(product, body),
        external_id=external_id,
        callback_url=callback_url,
        base_url=sandbox.base_url(request),
        plan=answer.plan() if answer is not None else None,
    )
    served = ok(created_answer(task).to_payload(create_answer=True))
    if answer is not None and answer.reply != "serve":
        raise ScriptedAnswer(answer, served)  # made, then answered otherwise
    return served


async def _create(product: Product, request: Request, sandbox: Sandbox) -> Response:
    body = await read_json(request)
    return serve_create(request, sandbox, product, body, body)


def _own(product: Product, task: SandboxTask | None) -> SandboxTask | None:
    return task if task is not None and task.product.name == product.name else None


def _answer_one(
    request: Request, sandbox: Sandbox, ident: str, task: SandboxTask | None, *, by_external: bool
) -> Response:
    names = [ident] if task is None else [ident, task.task_id, task.external_id or ident]
    sandbox.read_scripted(request, names, looked_up=[ident] if by_external else ())
    if task is None:
        raise not_found(sandbox)
    now = sandbox.state.advance()
    sandbox.state.note_reads((task,), single=True)
    return ok(task_at(task, now).to_legacy_dict())


async def _get(product: Product, request: Request, sandbox: Sandbox) -> Response:
    ident = request.path_params["task_id"]
    state = sandbox.state
    task = _own(product, state.find(ident))
    by_external = task is None
    if task is None and sandbox.config.external_id_lookup in ("both", "path"):
        task = _own(product, state.find_external(ident))
    return _answer_one(request, sandbox, ident, task, by_external=by_external)


def _int_param(request: Request, name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lo, hi = bounds
    try:
        value = int(raw)
    except ValueError:
        raise SandboxError(
            1201, f"{name} must be an integer within {lo}-{hi}, got {raw!r}"
        ) from None
    if not lo <= value <= hi:
        raise SandboxError(1201, f"{name} must be within {lo}-{hi}, got {value}")
    return value


async def _list(product: Product, request: Request, sandbox: Sandbox) -> Response:
    external_id = request.query_params.get("external_task_id")
    if external_id and sandbox.config.external_id_lookup in ("both", "query"):
        task = _own(product, sandbox.state.find_external(external_id))
        return _answer_one(request, sandbox, external_id, task, by_external=True)
    page = _int_param(request, "pageNum", 1, _PAGE_NUM)
    size = _int_param(request, "pageSize", 30, _PAGE_SIZE)
    # A server that ignores ?external_task_id= was still asked for it.
    sandbox.read_scripted(request, looked_up=[external_id] if external_id else ())
    state = sandbox.state
    now = state.advance()
    with state.lock:
        tasks = state.product_page(product.name, page, size)
    state.note_reads(tasks)
    return ok(legacy_page(task_at(t, now) for t in tasks))


async def _costs(request: Request, sandbox: Sandbox) -> Response:
    sandbox.read_scripted(request)
    state = sandbox.state
    now = state.advance()
    with state.lock:
        last = state.last_costs_read
        if last is not None and now - last < sandbox.clock.scaled(1.0):
            raise SandboxError(1302, "Account costs may be read at most once per second")
        state.last_costs_read = now
        spent = state.units_spent
    budget = sandbox.config.unit_budget
    total = budget if budget is not None else Decimal(1_000_000)
    start_ms = epoch_ms(state.started_at)
    end_ms = epoch_ms(state.started_at + sandbox.clock.scaled(365 * 86_400.0))
    packs = [
        {
            "resource_pack_name": f"Sandbox {family.value} pack",
            "resource_pack_id": f"sandbox-{family.value}",
            "resource_pack_type": "decreasing_total",
            "total_quantity": float(total) if family is Family.VIDEO else 0.0,
            "remaining_quantity": float(total - spent) if family is Family.VIDEO else 0.0,
            "purchase_time": start_ms,
            "effective_time": start_ms,
            "invalid_time": end_ms,
            "status": "online",
            "concurrency": sandbox.config.slots[family],
        }
        for family in Family
    ]
    return ok(
        {
            "code": 0,
            "msg": "success",
            "units_spent": format_amount(spent),
            "resource_pack_subscribe_infos": packs,
        }
    )


def legacy_routes() -> list[Route]:
    """Create, get and list routes for every legacy product, and ``/account/costs``."""
    routes: list[Route] = []
    for product in PRODUCTS.values():
        if product.standard is not ApiStandard.LEGACY:
            continue
        path = product.path
        routes += [
            Route(
                path,
                kling_endpoint(f"POST {path}", partial(_create, product)),
                methods=["POST"],
            ),
            Route(path, kling_endpoint(f"GET {path}", partial(_list, product)), methods=["GET"]),
            # ":path": an id with an encoded "/" in it is still one id (then not found).
            Route(
                f"{path}/{{task_id:path}}",
                kling_endpoint(f"GET {path}/{{id}}", partial(_get, product)),
                methods=["GET"],
            ),
        ]
    routes.append(
        Route("/account/costs", kling_endpoint("GET /account/costs", _costs), methods=["GET"])
    )
    return routes
