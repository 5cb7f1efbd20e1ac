"""The JSON API under schemathesis: generated requests, valid and invalid, against a real server.

Every operation in ``/openapi.json`` gets a bounded, deterministic run (``MAX_EXAMPLES`` per
operation and generation mode, the same examples every time) against the app under uvicorn on a
loopback socket, with a ledger (a SQLite file, and PostgreSQL, which refuses NUL characters)
holding a few tasks in different states. Every default check
applies: no 5xx, every status code and body as the schema declares, invalid input refused with a
4xx, valid input accepted. The event stream never ends by design, so it is left to its own test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from serverkit import ThreadedServer, add_task, app_for, end_task
from serverkit import settings as app_settings

from klingwatch.clock import RealClock
from klingwatch.store import Ledger, LocalStatus

#: Examples per operation and generation mode: enough to find what the fuzzer found before
#: (huge ids and offsets, odd digits in paths, undeclared error bodies), small enough for CI.
MAX_EXAMPLES = 30

CONFIG = schemathesis.Config.from_dict(
    {"generation": {"max-examples": MAX_EXAMPLES, "deterministic": True}}
)


def seeded(ledger: Ledger) -> None:
    """Tasks a request may name: one running, one failed, one succeeded."""
    add_task(ledger, 1)
    for n, status in ((2, LocalStatus.FAILED), (3, LocalStatus.SUCCEED)):
        end_task(
            ledger,
            add_task(ledger, n),
            status,
            msg="internal error" if status is LocalStatus.FAILED else None,
            result={"videos": [{"url": "https://cdn.example/v.mp4", "duration": "5"}]}
            if status is LocalStatus.SUCCEED
            else None,
        )


def openapi() -> dict[str, Any]:
    """The app's schema, as ``/openapi.json`` serves it (schemathesis needs it at collection)."""
    with Ledger.open("sqlite://", clock=RealClock()) as ledger:
        return app_for(ledger, settings=app_settings()).openapi()


# Loaded at import and called over a real socket: schemathesis's fixture-based loader
# (``schemathesis.pytest.from_fixture``) relies on a pytest attribute pytest 9 no longer has.
schema = schemathesis.openapi.from_dict(openapi(), config=CONFIG).exclude(path="/api/events/stream")


@pytest.fixture
def live(ledger_url: str) -> Iterator[str]:
    """The app under uvicorn on a seeded ledger (SQLite, then PostgreSQL); its base URL."""
    with (
        Ledger.open(ledger_url, clock=RealClock()) as ledger,
        ThreadedServer(ledger) as base,
    ):
        seeded(ledger)
        assert httpx.get(f"{base}/openapi.json").json() == schema.raw_schema
        yield base


@schema.parametrize()
# One server per operation, kept across its examples on purpose: state they change (retries,
# adopted tasks) is state later examples should cope with.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_answers_every_request_as_its_schema_says(
    case: schemathesis.Case, live: str
) -> None:
    case.call_and_validate(base_url=live)


def numbers_in(node: Any, where: str, found: list[tuple[str, dict[str, Any]]]) -> None:
    """Every integer or number schema under ``node`` (refs are resolved by the caller)."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            found.append((where, node))
        for key, value in node.items():
            numbers_in(value, f"{where}.{key}", found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            numbers_in(value, f"{where}[{i}]", found)


def test_every_number_a_request_may_carry_is_bounded() -> None:
    # Random examples seldom reach 2**63, where SQLite gives up; a bound in the schema is the
    # fix, so every number a client sends must have one.
    raw = schema.raw_schema
    found: list[tuple[str, dict[str, Any]]] = []
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                numbers_in(parameter["schema"], f"{method} {path} {parameter['name']}", found)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                ref = body["schema"].get("$ref") or body["schema"]["anyOf"][0]["$ref"]
                model = raw["components"]["schemas"][ref.rsplit("/", 1)[1]]
                numbers_in(model, f"{method} {path} body", found)
    assert found  # ids, offsets, limits, epoch ms
    unbounded = [where for where, node in found if "maximum" not in node or "minimum" not in node]
    assert unbounded == []
