"""``klingwatch notify``: check where alerts and outbound events go, and how events are signed."""

from __future__ import annotations

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, JSON_OPTION, console, load_settings, run_async
from klingwatch.cli.common import print_json as _print_json
from klingwatch.cli.exits import ExitCode
from klingwatch.errors import ConfigurationError
from klingwatch.monitor.notify import NOTIFY_HELP, parse_targets
from klingwatch.operations import NotifyResult, Operations
from klingwatch.settings import Settings

__all__: list[str] = []


async def _test(settings: Settings) -> list[NotifyResult]:
    async with Operations.open(settings, client=False) as ops:
        return await ops.notify_test()


async def _secret(settings: Settings) -> str:
    async with Operations.open(settings, client=False) as ops:
        return await ops.events_secret()


@app.command("notify")
def notify_command(
    test: bool = typer.Option(
        False,
        "--test",
        help="Send one test message to every KLINGWATCH_NOTIFY URL (and one signed test event "
        "to KLINGWATCH_EVENTS_URL) and say whether each went.",
    ),
    show_secret: bool = typer.Option(
        False,
        "--show-secret",
        help="Print the secret outbound events are signed with (KLINGWATCH_EVENTS_SECRET, else "
        "the one generated for this ledger), for the receiver's verification.",
    ),
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Where alerts and events go: without options, what is configured; `--test` sends one.

    Alerts (a task stuck, a batch failing, submissions paused, callbacks silent, results about
    to expire, a batch finished) go to the apprise URLs of KLINGWATCH_NOTIFY; every status
    change goes to KLINGWATCH_EVENTS_URL as a signed JSON event. Both are sent by the engine
    (`watch`, `serve`, `submit --wait`).
    """
    settings = load_settings(db)
    if show_secret:
        secret = run_async(_secret(settings))
        if as_json:
            _print_json({"events_secret": secret})
        else:
            typer.echo(secret)
        return
    if test:
        results = run_async(_test(settings))
        if as_json:
            _print_json(
                [
                    {"kind": r.kind, "target": r.target, "ok": r.ok, "error": r.error}
                    for r in results
                ]
            )
        else:
            out = console()
            for r in results:
                verdict = "sent" if r.ok else f"NOT sent: {r.error}"
                out.print(f"{r.kind}: {r.target}: {verdict}", markup=False, highlight=False)
        if not all(r.ok for r in results):
            raise typer.Exit(ExitCode.FAILED)
        return
    _describe(settings, as_json)


def _describe(settings: Settings, as_json: bool) -> None:
    targets = parse_targets(settings.notify)
    if as_json:
        _print_json(
            {"alerts": [t.label for t in targets], "events_url": settings.events_url or None}
        )
        return
    if not targets and not settings.events_url:
        raise ConfigurationError(
            f"no alerts are configured: {NOTIFY_HELP}; KLINGWATCH_EVENTS_URL receives every "
            "status change"
        )
    out = console()
    for t in targets:
        out.print(f"alerts: {t.label}", markup=False, highlight=False)
    if not targets:
        out.print(f"alerts: none ({NOTIFY_HELP})", markup=False, highlight=False)
    events = settings.events_url or "none (set KLINGWATCH_EVENTS_URL)"
    out.print(f"events: {events}", markup=False, highlight=False)
    out.print("`klingwatch notify --test` sends one to each", markup=False, highlight=False)
