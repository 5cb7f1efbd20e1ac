"""What every JSON API route shares: the app's state, finding a task, the bounds of numbers and
text in requests, and the one shape of every error answer.

Every error the API gives is ``{"detail": "<one line saying what to fix>"}`` (:class:`ErrorOut`),
request validation included, and every route declares the errors it can give (:data:`ERRORS`), so
the OpenAPI schema at ``/openapi.json`` says exactly what a client can get back.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from klingwatch.server.state import AppState
from klingwatch.store import TaskRecord
from klingwatch.timestamps import MAX_EPOCH_MS

__all__ = [
    "ERRORS",
    "MAX_ID",
    "MAX_TEXT",
    "NOT_FOUND",
    "NO_NUL",
    "EpochMs",
    "ErrorOut",
    "FilterText",
    "State",
    "TaskRef",
    "find_task",
    "get_state",
    "validation_error",
]

#: The largest id, offset or index a request may name (the ledger's ids are 32-bit integers).
MAX_ID = 2**31 - 1
#: The longest text a filter or id may be.
MAX_TEXT = 1000
#: Text with no NUL character (PostgreSQL cannot store one, so no task can hold it).
NO_NUL = r"^[^\x00]*$"


class ErrorOut(BaseModel):
    """Every error the API answers: one line saying what is wrong and what to do."""

    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: The errors every ``/api`` route may answer (routes add their own 404/409).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("unknown Host header (see docs/web.md, 'Who may call')"),
    401: _error("missing or wrong API token"),
    403: _error("a write from another site's page"),
    415: _error("a write whose body is not JSON"),
    422: _error("a parameter or body field that is not valid, and why"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("no such task (or file)")}

#: An instant in a query: epoch milliseconds, as the answers give them.
EpochMs = Annotated[int, Query(ge=0, le=MAX_EPOCH_MS)]
#: A text filter in a query.
FilterText = Annotated[str, Query(max_length=MAX_TEXT, pattern=NO_NUL)]
#: A task in a path: its local id, external id or Kling id.
TaskRef = Annotated[
    str,
    Path(max_length=MAX_TEXT, pattern=NO_NUL, description="local id, external id or Kling id"),
]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.klingwatch
    return state


State = Annotated[AppState, Depends(get_state)]


async def find_task(state: AppState, ref: str) -> TaskRecord:
    """A task by local id, external id or Kling id; 404 when there is none."""
    record = await state.ledger.task(ref)
    if record is None:
        raise HTTPException(status_code=404, detail=f"no task {ref!r} in the ledger")
    return record


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A request that does not fit the schema: 422 with every problem on one line."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)
