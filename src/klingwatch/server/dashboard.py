"""The dashboard's pages and login.

The dashboard is one page (``static/index.html`` + ``app.js`` + ``batch.js`` + ``app.css``,
shipped in the package, no CDN) that reads the JSON API and listens to ``/api/events/stream``.
Its paths (``/``, ``/tasks``, ``/task/{ref}``, ``/batches/{name}``) all serve that page; the
script shows the right view.

With ``KLINGWATCH_API_TOKEN`` set, a browser logs in once: through the form at ``/login`` or by
opening any page with ``?token=...`` (handy in a shared link); either sets an HTTP-only,
same-site cookie the API then accepts, and the token is dropped from the address bar.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from klingwatch.server.auth import COOKIE_NAME, request_token, token_matches

__all__ = ["STATIC_DIR", "router", "static_files"]

STATIC_DIR = Path(__file__).parent / "static"
_COOKIE_AGE = 30 * 86400

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


def _set_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=_COOKIE_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never let a link bounce a logged-in browser to another site.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _page(request: Request) -> Response:
    expected: str | None = request.app.state.klingwatch.api_token
    if expected is None:
        return FileResponse(STATIC_DIR / "index.html")
    given = request.query_params.get("token")
    if given is not None:
        query = {k: v for k, v in request.query_params.items() if k != "token"}
        clean = request.url.path + (f"?{urlencode(query)}" if query else "")
        if not token_matches(given, expected):
            return RedirectResponse(f"/login?error=1&next={clean}", status_code=303)
        response: Response = RedirectResponse(clean, status_code=303)
        _set_cookie(response, given, request)
        return response
    if token_matches(request_token(request), expected):
        return FileResponse(STATIC_DIR / "index.html")
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@router.get("/")
def overview_page(request: Request) -> Response:
    return _page(request)


@router.get("/tasks")
def tasks_page(request: Request) -> Response:
    return _page(request)


@router.get("/task/{ref}")
def task_page(request: Request, ref: str) -> Response:
    return _page(request)


@router.get("/batches/{name}")
def batch_page(request: Request, name: str) -> Response:
    return _page(request)


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>klingwatch · sign in</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css"></head>
<body class="login"><form method="post" action="/login" class="card login-card">
<h1><span class="logo">◉</span> klingwatch</h1>
<p>This dashboard needs the API token (<code>KLINGWATCH_API_TOKEN</code>).</p>
{error}
<input type="hidden" name="next" value="{next}">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus
required></label>
<button type="submit">Sign in</button></form></body></html>
"""


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    error = (
        '<p class="error">That token is not right.</p>' if request.query_params.get("error") else ""
    )
    target = html.escape(_safe_next(request.query_params.get("next")), quote=True)
    return HTMLResponse(_LOGIN.format(error=error, next=target))


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    expected: str | None = request.app.state.klingwatch.api_token
    if expected is not None and not token_matches(given, expected):
        return RedirectResponse(f"/login?error=1&next={target}", status_code=303)
    response: Response = RedirectResponse(target, status_code=303)
    if expected is not None:
        _set_cookie(response, given, request)
    return response


@router.get("/logout")
def logout() -> Response:
    response: Response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response
