"""The legacy ``/v1/...`` API: create, single get, list pages, for every legacy product.

Per product (KLING_PROTOCOL.md sections 3 and 4)::

    POST <path>                      create; body validated by the product registry
    GET  <path>/{task_id}            one task; the path slot also takes an external id
    GET  <path>?external_task_id=X   one task by external id
    GET  <path>?pageNum=1&pageSize=30  a page, newest first, ``data`` an array

plus ``GET /account/costs`` (resource packs and remaining units; at most one request a second).
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.kling.errors import RequestValidationError
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.products import PRODUCTS, Family, Product
from klingwatch.sandbox.lifecycle import SandboxTask, format_units
from klingwatch.sandbox.runtime import Sandbox, kling_endpoint, not_found, read_json
from klingwatch.sandbox.state import SandboxError
from klingwatch.sandbox.wire import envelope, epoch_ms, legacy_create_answer, legacy_task

__all__ = ["legacy_routes"]

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


async def _create(product: Product, request: Request, sandbox: Sandbox) -> Response:
    body = await read_json(request)
    external_id, callback_url = routing_fields(body)
    clean = validated(product, body)
    task = sandbox.state.create(
        product,
        clean,
        external_id=external_id,
        callback_url=callback_url,
        base_url=sandbox.base_url(request),
    )
    return envelope(legacy_create_answer(task))


def _own(product: Product, task: SandboxTask | None) -> SandboxTask | None:
    return task if task is not None and task.product.name == product.name else None


def _answer_one(sandbox: Sandbox, task: SandboxTask | None) -> Response:
    if task is None:
        raise not_found(sandbox)
    now = sandbox.state.advance()
    sandbox.state.note_reads((task,), single=True)
    return envelope(legacy_task(task, now))


async def _get(product: Product, request: Request, sandbox: Sandbox) -> Response:
    ident = request.path_params["task_id"]
    state = sandbox.state
    task = _own(product, state.find(ident))
    if task is None and sandbox.config.external_id_lookup in ("both", "path"):
        task = _own(product, state.find_external(ident))
    return _answer_one(sandbox, task)


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
        return _answer_one(sandbox, _own(product, sandbox.state.find_external(external_id)))
    page = _int_param(request, "pageNum", 1, _PAGE_NUM)
    size = _int_param(request, "pageSize", 30, _PAGE_SIZE)
    state = sandbox.state
    now = state.advance()
    with state.lock:
        tasks = state.product_page(product.name, page, size)
    state.note_reads(tasks)
    return envelope([legacy_task(t, now) for t in tasks])


async def _costs(request: Request, sandbox: Sandbox) -> Response:
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
    return envelope(
        {
            "code": 0,
            "msg": "success",
            "units_spent": format_units(spent),
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
            Route(
                f"{path}/{{task_id}}",
                kling_endpoint(f"GET {path}/{{id}}", partial(_get, product)),
                methods=["GET"],
            ),
        ]
    routes.append(
        Route("/account/costs", kling_endpoint("GET /account/costs", _costs), methods=["GET"])
    )
    return routes
