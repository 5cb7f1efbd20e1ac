"""``klingwatch doctor``: is everything klingwatch needs in working order?

Four checks, each ending in ``ok``, ``skip`` or ``FAIL`` with what to fix:

1. credentials: one authenticated list call (a legacy list page of one task);
2. clock skew: this machine's clock against the ``Date`` header of Kling's answer (JWTs carry
   ``nbf``/``exp``, so a clock far off makes every request fail with 1003/1004);
3. the ledger: reachable and migrated (a SQLite file that does not exist yet is fine: it is
   created on first use);
4. the callback URL (``KLINGWATCH_PUBLIC_URL``): reachable from here (``/healthz`` answers).
"""

from __future__ import annotations

import email.utils
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import httpx
import typer
from sqlalchemy.engine import make_url

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, JSON_OPTION, load_settings, print_json, run_async
from klingwatch.clock import Clock, RealClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import AuthenticationError, KlingError, TransportError
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LedgerError
from klingwatch.store.errors import redact

__all__ = ["Check", "run_checks"]

#: Skew past which JWTs start being refused (Kling allows little; nbf is now - 5 s).
MAX_SKEW = 30.0

Outcome = Literal["ok", "skip", "FAIL"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


async def _kling_checks(settings: Settings, clock: Clock, request_timeout: float) -> list[Check]:
    if not settings.has_credentials:
        return [
            Check(
                "credentials",
                "FAIL",
                "none set: export KLING_ACCESS_KEY and KLING_SECRET_KEY (an AK/SK pair from the "
                "Kling developer console), or KLING_API_KEY",
            ),
            Check("clock", "skip", "needs an answer from Kling"),
        ]
    server_dates: list[str] = []

    async def keep_date(response: httpx.Response) -> None:
        if "date" in response.headers:
            server_dates.append(response.headers["date"])

    kind = "API key" if settings.api_key is not None else "AK/SK pair"
    async with httpx.AsyncClient(
        timeout=request_timeout, event_hooks={"response": [keep_date]}
    ) as http:
        client = KlingClient(settings=settings, clock=clock, http_client=http)
        sent_at = clock.time()
        try:
            page = await client.list_page("text2video", page=1, size=1)
        except AuthenticationError as exc:
            credentials = Check("credentials", "FAIL", f"{kind} refused by Kling: {exc}")
        except TransportError as exc:
            credentials = Check("credentials", "FAIL", f"cannot reach {settings.api_base}: {exc}")
        except KlingError as exc:
            credentials = Check("credentials", "FAIL", str(exc))
        else:
            shown = "no tasks yet" if not page else "the list answers"
            credentials = Check(
                "credentials", "ok", f"{kind} accepted by {settings.api_base} ({shown})"
            )
        received_at = clock.time()
        await client.aclose()
    return [credentials, _clock_check(server_dates, (sent_at + received_at) / 2)]


def _clock_check(server_dates: list[str], local: float) -> Check:
    if not server_dates:
        return Check("clock", "skip", "Kling's answer carried no Date header to compare with")
    try:
        server = email.utils.parsedate_to_datetime(server_dates[-1]).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "skip", f"unreadable Date header {server_dates[-1]!r}")
    skew = local - server
    # The Date header has one-second resolution: half a second either way is no skew at all.
    text = f"this machine is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} Kling"
    if abs(skew) <= MAX_SKEW:
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
            response = await http.get(url)
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
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for each answer."),
) -> None:
    """Check credentials, clock skew, the ledger and the callback URL; say what to fix.

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
        raise typer.Exit(1)
