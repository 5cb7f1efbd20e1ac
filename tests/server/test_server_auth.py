"""Who gets in: the API token for scripts, a cookie for browsers, open health and metrics."""

from __future__ import annotations

import pytest
from serverkit import API_TOKEN, CALLBACK_TOKEN, AppFactory, add_task, client_of, legacy_body, raw

from klingwatch.kling.errors import ConfigurationError
from klingwatch.server.auth import check_bind, is_loopback
from klingwatch.store import Ledger


async def test_the_api_needs_the_bearer_token_when_one_is_set(make_app: AppFactory) -> None:
    async with client_of(make_app(api_token=API_TOKEN)) as http:
        refused = await http.get("/api/stats")
        assert refused.status_code == 401
        assert "KLINGWATCH_API_TOKEN" in refused.json()["detail"]
        wrong = await http.get("/api/stats", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.get("/api/stats", headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert ok.status_code == 200
        assert (await http.post("/api/resume")).status_code == 401


async def test_health_metrics_and_callbacks_stay_open(make_app: AppFactory, ledger: Ledger) -> None:
    add_task(ledger, 1)
    async with client_of(make_app(api_token=API_TOKEN)) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert "klingwatch_tasks" in (await http.get("/metrics")).text
        posted = await http.post(
            f"/callbacks/kling/{CALLBACK_TOKEN}", content=raw(legacy_body(1, "processing"))
        )
        assert posted.status_code == 200


async def test_a_browser_signs_in_with_the_form_and_then_carries_a_cookie(
    make_app: AppFactory,
) -> None:
    async with client_of(make_app(api_token=API_TOKEN)) as http:
        page = await http.get("/tasks")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/tasks"
        assert "KLINGWATCH_API_TOKEN" in (await http.get("/login")).text
        bad = await http.post("/login", data={"token": "guess", "next": "/tasks"})
        assert bad.headers["location"].startswith("/login?error=1")
        assert "klingwatch_token" not in http.cookies
        good = await http.post("/login", data={"token": API_TOKEN, "next": "/tasks"})
        assert good.status_code == 303
        assert good.headers["location"] == "/tasks"
        assert "httponly" in good.headers["set-cookie"].lower()
        assert (await http.get("/tasks")).status_code == 200
        assert (await http.get("/api/stats")).status_code == 200
        # A login link never bounces a signed-in browser to another site.
        away = await http.post("/login", data={"token": API_TOKEN, "next": "//evil.test/"})
        assert away.headers["location"] == "/"


async def test_a_token_in_the_link_signs_in_once_and_leaves_the_address_bar(
    make_app: AppFactory,
) -> None:
    async with client_of(make_app(api_token=API_TOKEN)) as http:
        answer = await http.get(f"/task/3?token={API_TOKEN}")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/task/3"
        assert http.cookies.get("klingwatch_token") == API_TOKEN
        assert (await http.get("/task/3")).status_code == 200
        wrong = await http.get("/?token=nope")
        assert wrong.headers["location"].startswith("/login?error=1")


async def test_without_a_token_everything_is_open(make_app: AppFactory) -> None:
    async with client_of(make_app()) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/api/batches")).json() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5", "[::1]"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_binding_beyond_loopback_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError, match="KLINGWATCH_API_TOKEN"):
        check_bind(host, None)
    check_bind(host, "a-token")
