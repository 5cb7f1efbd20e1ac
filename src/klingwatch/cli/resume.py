"""``klingwatch resume``: let the submitter send again after Kling refused the account."""

from __future__ import annotations

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    console,
    format_time,
    load_settings,
    run_async,
)
from klingwatch.cli.common import print_json as _print_json
from klingwatch.operations import Operations, ResumeResult
from klingwatch.settings import Settings

__all__: list[str] = []


async def _resume(settings: Settings, forget_slots: bool) -> ResumeResult:
    async with Operations.open(settings, client=False) as ops:
        return await ops.resume(forget_slots=forget_slots)


@app.command("resume")
def resume_command(
    forget_slots: bool = typer.Option(
        False,
        "--forget-slots",
        help="Also forget the concurrency limits learned from 1303 answers (after a pack "
        "upgrade); they are learned again.",
    ),
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Clear the pause on submissions and say what was paused and why.

    Sending pauses when Kling refuses the account (1100 abnormal, 1101 arrears, 1102 resource
    pack exhausted, 1103 no permission, 1304 IP whitelist) or the credentials; nothing queued is
    lost. Fix the cause first: if it persists, the next create pauses sending again.
    """
    result = run_async(_resume(load_settings(db), forget_slots))
    was, forgotten, queued = result.was, result.forgotten, result.queued
    if as_json:
        _print_json(
            {
                "was_paused": was is not None,
                "reason": None if was is None else was.reason,
                "code": None if was is None else was.code,
                "paused_at": None if was is None else was.at,
                "forgotten_slot_limits": forgotten,
                "queued": queued,
            }
        )
        return
    out = console()
    if was is None:
        out.print("submissions were not paused; nothing to resume")
    else:
        code = f" (code {was.code})" if was.code is not None else ""
        out.print(
            f"resumed: submissions had been paused since {format_time(was.at)}{code}: {was.reason}"
        )
    if forgotten:
        limits = ", ".join(f"{family} {n}" for family, n in forgotten.items())
        out.print(f"forgot the learned slot limits ({limits}); they are learned again")
    if queued:
        out.print(f"{queued} tasks are queued; `klingwatch watch` sends them")
