"""``klingwatch resume``: let the submitter send again after Kling refused the account, or
after a batch reached its budget cap (``--raise-cap``)."""

from __future__ import annotations

from decimal import Decimal

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
from klingwatch.cli.options import cap_option
from klingwatch.operations import BudgetResult, Operations, ResumeResult
from klingwatch.settings import Settings
from klingwatch.store.budget import format_units

__all__: list[str] = []


async def _resume(
    settings: Settings, forget_slots: bool, cap: tuple[str, Decimal] | None
) -> tuple[ResumeResult, BudgetResult | None, BudgetResult | None]:
    async with Operations.open(settings, client=False) as ops:
        before = after = None
        if cap is not None:
            before = await ops.budget(cap[0])
            after = await ops.set_cap(*cap)
        return await ops.resume(forget_slots=forget_slots), before, after


def _print_cap(before: BudgetResult, after: BudgetResult) -> None:
    out = console()
    old = "none" if before.max_units is None else f"{format_units(before.max_units)} units"
    new = format_units(after.max_units or Decimal(0))
    out.print(
        f"batch {after.batch!r}: budget cap {old} -> {new} units "
        f"({format_units(after.sent_estimate)} sent so far); {after.freed} held tasks freed"
    )
    if after.hold_reason:
        out.print(f"{after.held} tasks still {after.hold_reason}")
    if after.freed:
        out.print("a running engine sends them now; otherwise `klingwatch watch` does")


@app.command("resume")
def resume_command(
    forget_slots: bool = typer.Option(
        False,
        "--forget-slots",
        help="Also forget the concurrency limits learned from 1303 answers (after a pack "
        "upgrade); they are learned again.",
    ),
    raise_cap: str | None = typer.Option(
        None,
        "--raise-cap",
        help="Set the budget cap of --batch to N units; the tasks it held that now fit are sent.",
    ),
    batch: str | None = typer.Option(None, "--batch", "-b", help="The batch of --raise-cap."),
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Clear the pause on submissions and say what was paused and why.

    Sending pauses when Kling refuses the account (1100 abnormal, 1101 arrears, 1102 resource
    pack exhausted, 1103 no permission, 1304 IP whitelist) or the credentials; nothing queued is
    lost. Fix the cause first: if it persists, the next create pauses sending again.

    A batch that reached its budget cap (`submit --max-units`) holds its other tasks queued;
    `--raise-cap N --batch B` sets a new cap and lets those that fit go.
    """
    cap = cap_option(raise_cap, hint="--raise-cap")
    if cap is not None and not batch:
        raise typer.BadParameter(
            "say which batch: --raise-cap N --batch NAME", param_hint="--batch"
        )
    result, before, after = run_async(
        _resume(load_settings(db), forget_slots, None if cap is None else (batch or "", cap))
    )
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
                "budget": None if after is None else after.to_dict(),
            }
        )
        return
    out = console()
    if before is not None and after is not None:
        _print_cap(before, after)
    elif was is None:
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
