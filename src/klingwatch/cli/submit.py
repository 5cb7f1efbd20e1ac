"""``klingwatch submit FILE``: validate a batch file, queue it in the ledger, send it.

What happens, in order:

1. The whole file is read and validated (:mod:`klingwatch.monitor.intake`). Any bad line: every
   one is printed as ``FILE:LINE: ...`` and nothing is queued (unless ``--skip-invalid``).
2. ``--dry-run`` stops here: it shows what would be sent, the slots it needs and a unit estimate,
   and writes nothing.
3. Every line is committed to the ledger as ``queued`` with its ``external_task_id`` before any
   request leaves. Running the same command again adds nothing.
4. Without ``--wait``: one pass of the submitter sends what the free concurrency slots allow
   now; the rest stays queued for ``klingwatch watch`` (or ``serve``), which sends it as slots
   free up and follows every task to its end. With ``--wait``: the engine runs until every task of
   the batch is final (or sending is paused).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Column

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    WIDE_OPTION,
    console,
    load_settings,
    print_json,
    print_table,
    run_async,
    run_engine,
)
from klingwatch.cli.exits import CARRIES_ON
from klingwatch.cli.live import Reporter, make_reporter
from klingwatch.cli.options import cap_option
from klingwatch.monitor.estimate import ESTIMATE_NOTE, estimate_total, estimate_units
from klingwatch.monitor.intake import (
    BatchFile,
    IntakeError,
    IntakeLine,
    parse_assignments,
    read_batch,
    to_new_task,
)
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.submitter import Submitter, slot_limits
from klingwatch.operations import Operations
from klingwatch.settings import Settings
from klingwatch.store import LocalStatus
from klingwatch.store.budget import format_units

__all__ = ["to_new_task", "wait_for_batch"]

logger = logging.getLogger(__name__)

#: Exit code of ``submit --wait`` when Kling paused sending before the batch was done (the code
#: ``klingwatch`` uses for every error it can explain).
_EXIT_PAUSED = 3


# -- dry run ---------------------------------------------------------------------------------
def _short(text: Any, limit: int = 60) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _what(request: Mapping[str, Any]) -> str:
    for key in ("prompt", "video_id", "effect_scene", "human_image"):
        if request.get(key):
            return _short(request[key])
    return _short(request)


def _under_cap(found: BatchFile, cap: Decimal) -> tuple[int, Decimal]:
    """How many lines a fresh batch capped at ``cap`` would send, and their estimate: each in
    order if it still fits, as the submitter's claim decides (``klingwatch.store.budget``)."""
    sent, units = 0, Decimal(0)
    for line in found.lines:
        cost = estimate_units(line.product, line.request)
        if units + cost <= cap:
            sent, units = sent + 1, units + cost
    return sent, units


def _plan(found: BatchFile, settings: Settings, cap: Decimal | None = None) -> dict[str, Any]:
    slots = found.slots_needed()
    configured = slot_limits(settings)
    fit = _under_cap(found, cap) if cap is not None else None
    return {
        "batch": found.batch,
        "file": found.file,
        "format": found.format.value,
        "tasks": [
            {
                "line": line.line,
                "product": line.product,
                "external_task_id": line.external_task_id,
                "family": line.family,
                "slot_cost": line.slot_cost,
                "estimated_units": format_units(estimate_units(line.product, line.request)),
                "request": line.request,
            }
            for line in found.lines
        ],
        "slots_needed": slots,
        "slots_configured": configured,
        "estimated_units": format_units(
            estimate_total((line.product, line.request) for line in found.lines)
        ),
        "estimate_note": ESTIMATE_NOTE,
        "max_units": None if cap is None else format_units(cap),
        "sent_under_cap": None if fit is None else {"tasks": fit[0], "units": format_units(fit[1])},
        "invalid_lines": [str(p) for p in found.problems],
        "warnings": [str(w) for w in found.warnings],
    }


def _kind(line: IntakeLine) -> str:
    # A new-standard product names its model already: text-to-video/kling-3.0-turbo.
    model = None if line.model and line.product.endswith("/" + line.model) else line.model
    duration = f"{line.duration}s" if line.duration else None
    return " ".join(str(p) for p in (line.product, model, line.mode, duration) if p)


def _print_plan(plan: dict[str, Any], found: BatchFile, *, wide: bool) -> None:
    title = f"dry run of batch {found.batch!r}: nothing sent, nothing written"
    if wide:
        print_table(
            (
                "line",
                "product",
                "model",
                "mode",
                "duration",
                "slots",
                "≈units",
                "external_task_id",
                "what",
            ),
            [
                (
                    line.line,
                    line.product,
                    line.model,
                    line.mode or "-",
                    line.duration,
                    line.slot_cost,
                    format_units(estimate_units(line.product, line.request)),
                    line.external_task_id,
                    _what(line.request),
                )
                for line in found.lines
            ],
            title=title,
            wide=True,
        )
    else:
        print_table(
            (
                Column("line", justify="right", no_wrap=True),
                Column("kind", min_width=14, max_width=30),
                Column("slots", justify="right", no_wrap=True),
                Column("≈units", justify="right", no_wrap=True),
                Column("what", ratio=1, min_width=16),
            ),
            [
                (
                    line.line,
                    _kind(line),
                    line.slot_cost,
                    format_units(estimate_units(line.product, line.request)),
                    _what(line.request),
                )
                for line in found.lines
            ],
            title=f"{title} (--wide: external ids)",
        )
    needed = ", ".join(f"{family} {n}" for family, n in plan["slots_needed"].items())
    configured = plan["slots_configured"]
    out = console()
    out.print(
        f"{len(found.lines)} tasks; concurrency slots needed to run them all at once: {needed}"
    )
    if configured:
        limits = ", ".join(f"{family} {n}" for family, n in configured.items())
        out.print(f"configured slot limits: {limits} (the rest waits in the queue)")
    out.print(f"≈ {plan['estimated_units']} units: {ESTIMATE_NOTE}")
    fit = plan["sent_under_cap"]
    if fit is not None:
        out.print(
            f"with --max-units {plan['max_units']}: {fit['tasks']} of {len(found.lines)} tasks "
            f"would be sent (≈{fit['units']} units); the rest would wait, held"
        )


# -- the real thing ----------------------------------------------------------------------------
async def wait_for_batch(
    ops: Operations, batch: str, reporter: Reporter, *, interrupted: str = CARRIES_ON
) -> Monitor:
    """Run the engine with the submitter until ``batch`` is done or Kling pauses sending
    (``submit --wait``, the demo); every batch's tasks are followed meanwhile, so slots that
    other batches free are seen and refilled."""
    engine = ops.engine(
        until_done=True,
        done_batch=batch,
        stop_on_pause=True,
        on_change=reporter.changes,
        on_sweep=lambda _: reporter.tick(),
    )
    await run_engine(engine, interrupted=interrupted)
    return engine


async def _submit(
    settings: Settings,
    found: BatchFile,
    *,
    callback_url: str | None,
    download: Path | None,
    wait: bool,
    as_json: bool,
    max_units: Decimal | None = None,
) -> dict[str, Any]:
    tasks = [to_new_task(line, callback_url=callback_url) for line in found.lines]
    # Missing credentials are reported before anything is written.
    async with Operations.open(settings, need_client=True) as ops:
        added = await ops.queue(found.batch, tasks, download_dir=download, max_units=max_units)
        if wait:
            async with make_reporter(
                ops.ledger,
                json_lines=as_json,
                batch=found.batch,
                console=console(),
                clock=ops.clock,
            ) as reporter:
                engine = await wait_for_batch(ops, found.batch, reporter)
            assert isinstance(engine.submitter, Submitter)
            submitter = engine.submitter
        else:
            submitter = await ops.send_once()
        counts = await ops.ledger.counts(batch=found.batch)
        paused = await ops.pause_state()
        limit = await submitter.slot_limit("video")
        budget = await ops.budget(found.batch)
    return {
        "batch": found.batch,
        "added": len(added.added),
        "already_queued": len(added.existing),
        "sent_now": submitter.stats.created + submitter.stats.ambiguous,
        "counts": {status.value: n for status, n in counts.items() if n},
        "paused": None if paused is None else paused.reason,
        "video_slot_limit": limit,
        "waited": wait,
        "budget": budget.to_dict(),
    }


def _report(summary: dict[str, Any], *, wait: bool) -> None:
    out = console()
    batch = summary["batch"]
    line = f"batch {batch!r}: {summary['added']} queued"
    if summary["already_queued"]:
        line += f", {summary['already_queued']} already in the ledger (not added again)"
    out.print(line)
    counts = "  ".join(f"{status} {n}" for status, n in summary["counts"].items())
    out.print(f"now: {counts}")
    if summary["paused"]:
        out.print(
            f"[bold red]submissions are paused:[/bold red] {summary['paused']}\n"
            "fix it, then run `klingwatch resume` and `klingwatch watch`"
        )
        return
    budget = summary["budget"]
    if budget["hold_reason"]:
        out.print(
            f"[bold yellow]{budget['held']} tasks {budget['hold_reason']}[/bold yellow]\n"
            f"raise the cap with `klingwatch resume --raise-cap N --batch {batch}`"
        )
    waiting = sum(n for status, n in summary["counts"].items() if not LocalStatus(status).is_final)
    waiting -= budget["held"]
    if not wait and waiting > 0:
        out.print(
            f"{summary['sent_now']} sent now; run `klingwatch watch` to send the rest as slots "
            "free up and follow every task to its end"
        )


SET_OPTION: Any = typer.Option(
    None,
    "--set",
    help="Default for every line, KEY=VALUE (JSON values; dotted keys nest): "
    "--set mode=pro --set duration=10. A line's own value wins.",
)
DOWNLOAD_OPTION: Any = typer.Option(
    None, "--download", help="Download results of this batch into this folder."
)
MAX_UNITS_OPTION: Any = typer.Option(
    None,
    "--max-units",
    help="Budget cap of the batch in units: no create whose estimate would take the batch's "
    "sent estimates past it is sent; the rest stay queued, held.",
)


@app.command("submit")
def submit_command(
    file: str = typer.Argument(
        ...,
        help="Requests: .jsonl (one object per line), .csv (header row) or text (one "
        "prompt per line); - reads stdin.",
    ),
    batch: str | None = typer.Option(
        None, "--batch", "-b", help="Batch name (default: the file's name without extension)."
    ),
    product: str | None = typer.Option(
        None, "--product", "-p", help="Product of lines that name none (default: text2video)."
    ),
    assignments: list[str] | None = SET_OPTION,
    callback_url: str | None = typer.Option(
        None, "--callback-url", help="Kling calls this URL when a task changes."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be sent, slots and a unit estimate; send nothing."
    ),
    wide: bool = WIDE_OPTION,
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Queue the valid lines even if some are invalid."
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Treat warnings (a misspelled field, an unknown model, a combination Kling's docs "
        "call unsupported) as errors: nothing is queued.",
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Run the engine until every task of the batch is final."
    ),
    download: Path | None = DOWNLOAD_OPTION,
    max_units: str | None = MAX_UNITS_OPTION,
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate FILE, queue every line in the ledger, and send.

    Nothing is queued while any line is invalid: each is reported as FILE:LINE: what to fix.
    Warnings (FILE:LINE: warning: ...) do not stop it unless --strict. A local image file named
    in an image field is read (relative to FILE's folder) and sent as raw Base64.

    Each line gets an external_task_id (its own, or derived from batch and content):
    running the same command again adds nothing, and nothing is paid twice.

    Without --wait: sends what the free concurrency slots allow now and leaves the rest queued;
    `klingwatch watch` sends it as slots free up and follows every task to its end.

    With --wait: runs that engine itself until every task of the batch is final, or until
    Kling pauses sending (exit code 3; fix the cause, then `klingwatch resume`). Ctrl-C stops
    it (exit code 130) with everything in the ledger: `klingwatch watch` carries on.

    With --max-units N the batch never sends a create whose estimated units would take its
    sent estimates past N; the rest stay queued, held, until `klingwatch resume --raise-cap`.
    """
    cap = cap_option(max_units)
    found = read_batch(
        file, batch=batch, product=product, defaults=parse_assignments(assignments or [])
    )
    if strict and found.warnings:
        found.raise_for_problems(strict=True)
    for warning in found.warnings:
        typer.echo(str(warning), err=True)
    if found.problems and not skip_invalid:
        found.raise_for_problems()
    for problem in found.problems:
        typer.echo(f"skipped: {problem}", err=True)
    if not found.lines:
        raise IntakeError(f"{found.file}: no valid lines to queue")
    settings = load_settings(db)
    if dry_run:
        plan = _plan(found, settings, cap)
        if as_json:
            print_json(plan)
        else:
            _print_plan(plan, found, wide=wide)
        return
    summary = run_async(
        _submit(
            settings,
            found,
            callback_url=callback_url,
            download=download.resolve() if download else None,
            wait=wait,
            as_json=as_json,
            max_units=cap,
        )
    )
    summary["estimated_units"] = format_units(_estimate(found))
    if as_json and wait:
        typer.echo(json.dumps(summary))  # the last of the JSON lines the engine printed
    elif as_json:
        print_json(summary)
    else:
        _report(summary, wait=wait)
    if wait and summary["paused"]:
        # --wait promised a finished batch; a script must be able to tell it did not get one.
        raise typer.Exit(code=_EXIT_PAUSED)


def _estimate(found: BatchFile) -> Decimal:
    return estimate_total((line.product, line.request) for line in found.lines)
