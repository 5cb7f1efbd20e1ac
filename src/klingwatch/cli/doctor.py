"""``klingwatch doctor``: is everything klingwatch needs in working order?

Each check ends in ``ok``, ``skip`` or ``FAIL`` with what to fix:

1. credentials: every one that is set (the AK/SK pair, the API key), each with one authenticated
   list call (a legacy list page of one task), so a working key cannot hide a broken pair;
2. clock skew: this machine's clock against the ``Date`` headers of Kling's answers (JWTs carry
   ``nbf``/``exp``, so a clock far off makes every request fail with 1003/1004). A ``Date`` has
   whole seconds (and is refreshed about once a second), so a difference is only reported when
   it is certain, past that resolution and the request's round trip;
3. the ledger: reachable and migrated (a SQLite file that does not exist yet is fine: it is
   created on first use);
4. the callback URL (``KLINGWATCH_PUBLIC_URL``): reachable from here (``/healthz`` answers).

Every request is made once (no retries) and given at most ``--timeout`` seconds in all.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import typer
from sqlalchemy.engine import make_url

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    load_settings,
    make_client,
    print_json,
    run_async,
)
from klingwatch.cli.exits import ExitCode
from klingwatch.clock import Clock, RealClock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import AuthenticationError, TransportError
from klingwatch.kling.retry import NO_RETRY
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LedgerError
from klingwatch.store.errors import redact

__all__ = ["Check", "run_checks"]

#: Skew past which JWTs start being refused (Kling allows little; nbf is now - 5 s).
MAX_SKEW = 30.0
#: How far behind the true time a ``Date`` header may be: its whole seconds, and a server's
#: once-a-second refresh of it.
_DATE_SLACK = 2.0
#: A skew smaller than this is not reported: a Date header has whole seconds.
_RESOLUTION = 1.0

Outcome = Literal["ok", "skip", "FAIL"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class Answer:
    """When one request left and its answer came back (our clock), and the answer's Date."""

    sent: float
    received: float
    date: str | None


class _TimedOut(Exception):
    """A check took longer than ``--timeout``."""


async def _within(seconds: float, work: Awaitable[_T]) -> _T:
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise _TimedOut from None


async def _kling_checks(settings: Settings, clock: Clock, request_timeout: float) -> list[Check]:
    ak, sk, key = settings.access_key, settings.secret_key, settings.api_key
    if ak is None and sk is None and key is None:
        return [
            Check(
                "credentials",
                "FAIL",
                "none set: export KLING_ACCESS_KEY and KLING_SECRET_KEY (an AK/SK pair from the "
                "Kling developer console), or KLING_API_KEY",
            ),
            Check("clock", "skip", "needs an answer from Kling"),
        ]
    checks: list[Check] = []
    answers: list[Answer] = []
    dates: list[str] = []

    async def keep_date(response: httpx.Response) -> None:
        if "date" in response.headers:
            dates.append(response.headers["date"])

    async with httpx.AsyncClient(
        timeout=request_timeout, event_hooks={"response": [keep_date]}
    ) as http:

        async def attempt(name: str, client: KlingClient) -> Check:
            dates.clear()
            sent = clock.time()
            check = await _credential_check(name, client, settings.api_base, request_timeout)
            answers.extend(Answer(sent, clock.time(), date) for date in dates[-1:])
            return check

        if ak is not None and sk is not None:
            # Each kind of credential is checked on its own: a client of the pair alone.
            pair = make_client(
                settings.model_copy(update={"api_key": None}),
                clock=clock,
                http_client=http,
                retry=NO_RETRY,
            )
            checks.append(await attempt("AK/SK pair", pair))
        elif ak is not None or sk is not None:
            missing = "KLING_SECRET_KEY" if sk is None else "KLING_ACCESS_KEY"
            checks.append(Check("AK/SK pair", "FAIL", f"half a pair: {missing} is not set"))
        else:
            checks.append(
                Check("AK/SK pair", "skip", "not set (KLING_ACCESS_KEY, KLING_SECRET_KEY)")
            )
        if key is not None:
            keyed = make_client(
                settings.model_copy(update={"access_key": None, "secret_key": None}),
                clock=clock,
                http_client=http,
                retry=NO_RETRY,
            )
            check = await attempt("API key", keyed)
            if check.outcome == "ok" and ak is not None and sk is not None:
                check = Check(check.name, "ok", check.detail + "; klingwatch uses it over the pair")
            checks.append(check)
        else:
            checks.append(
                Check("API key", "skip", "not set (KLING_API_KEY; the kling-3.0 models need it)")
            )
    checks.append(clock_check(answers))
    return checks


async def _credential_check(
    name: str, client: KlingClient, base: str, request_timeout: float
) -> Check:
    try:
        page = await _within(request_timeout, client.list_page("text2video", page=1, size=1))
    except _TimedOut:
        return Check(
            name, "FAIL", f"no answer from {base} within {request_timeout:g} s (--timeout)"
        )
    except AuthenticationError as exc:
        return Check(name, "FAIL", f"refused by Kling: {exc}")
    except TransportError as exc:
        return Check(name, "FAIL", f"cannot reach {base}: {exc}")
    except KlingwatchError as exc:
        return Check(name, "FAIL", str(exc))
    shown = "no tasks yet" if not page else "the list answers"
    return Check(name, "ok", f"accepted by {base} ({shown})")


def clock_check(answers: list[Answer]) -> Check:
    """The clock check from Kling's answers: a skew is reported only when it is certain."""
    bounds: tuple[float, float] | None = None
    for answer in answers:
        if answer.date is None:
            continue
        try:
            server = email.utils.parsedate_to_datetime(answer.date).timestamp()
        except (TypeError, ValueError):
            continue
        # A Date has whole seconds, and servers refresh it about once a second (nginx, uvicorn):
        # Kling's clock read somewhere in [server, server + 2), at a moment between our sent
        # and received. So (ours - Kling's) lies in this range, and only a skew outside it is
        # certain.
        low, high = answer.sent - (server + _DATE_SLACK), answer.received - server
        if bounds is not None and max(bounds[0], low) <= min(bounds[1], high):
            low, high = max(bounds[0], low), min(bounds[1], high)
        bounds = (low, high)
    if bounds is None:
        return Check("clock", "skip", "Kling's answers carried no readable Date header")
    low, high = bounds
    if low < _RESOLUTION and -high < _RESOLUTION:  # no skew, or less than a Date can say
        return Check(
            "clock", "ok", "in step with Kling, as far as its Date header (whole seconds) tells"
        )
    skew = low if low > 0 else -high
    text = f"this machine is {skew:.1f} s {'ahead of' if low > 0 else 'behind'} Kling"
    if skew <= MAX_SKEW:
        return Check("clock", "ok", text)
    return Check(
        "clock",
        "FAIL",
        f"{text}: signed tokens will be refused (1003/1004); sync the clock "
        "(e.g. `timedatectl set-ntp true`)",
    )


def _ledger_check(url: str) -> Check:
    shown = redact(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError and friends
        return Check("ledger", "FAIL", f"KLINGWATCH_DB {shown!r} is not a database URL: {exc}")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.exists():
            where = path.parent if str(path.parent) else Path(".")
            if not where.is_dir():
                return Check("ledger", "FAIL", f"folder {where} does not exist; create it first")
            return Check("ledger", "ok", f"no ledger yet at {path}; it is created on first use")
    try:
        with Ledger.open(url) as ledger:
            total = sum(ledger.counts().values())
    except LedgerError as exc:
        return Check("ledger", "FAIL", str(exc))
    return Check("ledger", "ok", f"{shown}: reachable and migrated, {total} tasks")


async def _callback_check(settings: Settings, request_timeout: float) -> Check:
    if not settings.public_url:
        return Check(
            "callbacks",
            "skip",
            "KLINGWATCH_PUBLIC_URL not set: no callbacks, polling only (set it to the URL where "
            "`klingwatch serve` is reachable from Kling)",
        )
    url = settings.public_url.rstrip("/") + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=request_timeout) as http:
            response = await _within(request_timeout, http.get(url))
    except _TimedOut:
        return Check(
            "callbacks", "FAIL", f"no answer from {url} within {request_timeout:g} s (--timeout)"
        )
    except httpx.HTTPError as exc:
        return Check(
            "callbacks",
            "FAIL",
            f"cannot reach {url} ({type(exc).__name__}): is `klingwatch serve` running there, "
            "and is KLINGWATCH_PUBLIC_URL the address Kling can reach?",
        )
    if response.status_code != 200:
        return Check(
            "callbacks",
            "FAIL",
            f"{url} answered HTTP {response.status_code}; expected 200 from `klingwatch serve`",
        )
    return Check("callbacks", "ok", f"{url} answers")


async def run_checks(
    settings: Settings, *, clock: Clock | None = None, request_timeout: float = 10.0
) -> list[Check]:
    """Every check, in order."""
    clock = clock or RealClock()
    checks = await _kling_checks(settings, clock, request_timeout)
    checks.append(_ledger_check(settings.db))
    checks.append(await _callback_check(settings, request_timeout))
    return checks


@app.command("doctor")
def doctor_command(
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, help="Seconds each check may take, all in (no retries)."
    ),
) -> None:
    """Check every credential that is set, clock skew, the ledger and the callback URL; say
    what to fix.

    Exits 0 when nothing failed, 1 otherwise.
    """
    settings = load_settings(db)
    checks = run_async(run_checks(settings, request_timeout=timeout))
    if as_json:
        print_json([asdict(check) for check in checks])
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            mark = {"ok": "ok  ", "skip": "skip", "FAIL": "FAIL"}[check.outcome]
            typer.echo(f"{mark}  {check.name:<{width}}  {check.detail}")
    if any(check.outcome == "FAIL" for check in checks):
        raise typer.Exit(ExitCode.FAILED)
