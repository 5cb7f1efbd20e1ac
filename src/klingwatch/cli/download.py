"""``klingwatch download``: every result file of every succeeded task, safely, onto disk."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    JSON_OPTION,
    clock_from,
    load_settings,
    open_ledger,
    print_json,
    run_async,
)
from klingwatch.cli.exits import ExitCode
from klingwatch.clock import Clock
from klingwatch.monitor.downloads import Downloader, FileOutcome, Summary
from klingwatch.monitor.expiry import expires_at, expiring, format_when
from klingwatch.monitor.layout import TEMPLATE_FIELDS, PathTemplate, TemplateError
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["download_command"]

#: Exit codes: 1 when some file failed or went missing, 3 when downloads had to stop (disk full,
#: unwritable).
EXIT_FAILED = ExitCode.FAILED
EXIT_STOPPED = ExitCode.ERROR

_FIELDS = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)


DIR_OPTION: Any = typer.Option(
    None,
    "--dir",
    "-d",
    help="Folder to download into. Default: the batch's folder (submit --download), else "
    "KLINGWATCH_DOWNLOAD_DIR, else the current folder.",
    show_default=False,
)
TEMPLATE_OPTION: Any = typer.Option(
    None,
    "--template",
    help=f"File names under the folder, with the fields {_FIELDS}. Default: "
    "KLINGWATCH_DOWNLOAD_TEMPLATE, else '{batch}/{external_task_id}_{index}.{ext}'.",
    show_default=False,
)
WATERMARK_OPTION: Any = typer.Option(
    False, "--watermark", help="Also download the watermarked variants."
)
CONCURRENCY_OPTION: Any = typer.Option(
    4, "--concurrency", "-c", min=1, max=64, help="Files downloaded at the same time."
)


@app.command("download")
def download_command(
    batch: str | None = BATCH_OPTION,
    directory: Path | None = DIR_OPTION,
    template: str | None = TEMPLATE_OPTION,
    watermark: bool = WATERMARK_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Download the results of succeeded tasks, each with a JSON sidecar.

    Each file is written whole or not at all; a dropped transfer resumes where it stopped.
    Files already complete are skipped, so running it again is always safe.
    """
    settings = load_settings(db)
    try:
        layout = PathTemplate(template or settings.download_template)
    except TemplateError as exc:
        raise typer.BadParameter(str(exc), param_hint="--template") from None
    with open_ledger(db, settings=settings) as ledger:
        if batch is not None and batch not in {b.name for b in ledger.batches()}:
            raise typer.BadParameter(
                f"no batch named {batch!r} in the ledger", param_hint="--batch"
            )
        plan = _folders(ledger, settings, batch, directory)
        if not plan:
            _say_nothing(batch, as_json)
            return
        clock = clock_from(settings)
        summary = run_async(
            _download(
                ledger,
                plan,
                clock,
                layout,
                watermark=watermark,
                concurrency=concurrency,
                as_json=as_json,
            )
        )
        soon = expiring(ledger, clock.time(), settings.expiry_warn_days, batch=batch)
    if as_json:
        print_json(_json(summary, soon))
    else:
        _print_summary(summary, soon, settings.expiry_warn_days)
    if summary.stopped is not None:
        typer.echo(f"error: {summary.stopped}", err=True)
        raise typer.Exit(EXIT_STOPPED)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED)


def _folders(
    ledger: Ledger, settings: Settings, batch: str | None, directory: Path | None
) -> dict[Path, list[TaskRecord]]:
    """Succeeded tasks grouped by the folder they go to."""
    folder_of = {b.name: b.download_dir for b in ledger.batches()}
    fallback = Path(settings.download_dir) if settings.download_dir else Path.cwd()
    plan: dict[Path, list[TaskRecord]] = defaultdict(list)
    for task in ledger.tasks(status=LocalStatus.SUCCEED, batch=batch):
        own = folder_of.get(task.batch)
        root = directory or (Path(own) if own else fallback)
        plan[root].append(task)
    return dict(plan)


async def _download(
    ledger: Ledger,
    plan: dict[Path, list[TaskRecord]],
    clock: Clock,
    layout: PathTemplate,
    *,
    watermark: bool,
    concurrency: int,
    as_json: bool,
) -> Summary:
    total = Summary()

    def line(outcome: FileOutcome) -> None:
        if not as_json:
            typer.echo(_describe(outcome))

    async with (
        AsyncLedger(ledger) as aledger,
        Downloader(
            aledger,
            template=layout,
            watermark=watermark,
            concurrency=concurrency,
            clock=clock,
            on_file=line,
        ) as downloader,
    ):
        for root, tasks in plan.items():
            summary = await downloader.download(tasks, root)
            total.files.extend(summary.files)
            if summary.stopped is not None:
                total.stopped = summary.stopped
                break
    return total


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _describe(f: FileOutcome) -> str:
    what = f"{f.outcome:<10} {_shown(f.path)}"
    if f.outcome == "downloaded":
        return f"{what}  {_size(f.size or 0)}{'  (resumed)' if f.resumed else ''}"
    if f.outcome == "skipped":
        return f"{what}  {f.message or 'already complete'}"
    return f"{what}  {f.message}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def _print_summary(summary: Summary, soon: list[TaskRecord], warn_days: float) -> None:
    typer.echo(
        f"{summary.count('downloaded')} downloaded ({_size(summary.bytes_downloaded)}), "
        f"{summary.count('skipped')} skipped, {summary.count('expired')} expired, "
        f"{summary.count('failed')} failed"
        + (f", {summary.count('missing')} missing" if summary.count("missing") else "")
        + (f", {summary.count('busy')} busy in another process" if summary.count("busy") else "")
    )
    if soon:
        first = soon[0]
        deadline = expires_at(first)
        when = f" on {format_when(deadline)}" if deadline is not None else ""
        typer.echo(
            f"warning: {len(soon)} task(s) still not collected are deleted by Kling within "
            f"{warn_days:g} days (first: {first.external_task_id}{when})",
            err=True,
        )


def _json(summary: Summary, soon: list[TaskRecord]) -> dict[str, Any]:
    return {
        "files": [
            {
                "local_id": f.task.local_id,
                "external_task_id": f.task.external_task_id,
                "batch": f.task.batch,
                "kind": f.file.kind,
                "index": f.file.index,
                "variant": f.file.variant or None,
                "url": f.file.url,
                "path": str(f.path),
                "outcome": f.outcome,
                "size": f.size,
                "sha256": f.sha256,
                "resumed": f.resumed,
                "message": f.message,
            }
            for f in sorted(summary.files, key=lambda f: (f.task.local_id, f.file.ledger_index))
        ],
        "downloaded": summary.count("downloaded"),
        "skipped": summary.count("skipped"),
        "expired": summary.count("expired"),
        "failed": summary.count("failed"),
        "missing": summary.count("missing"),
        "busy": summary.count("busy"),
        "bytes": summary.bytes_downloaded,
        "stopped": None if summary.stopped is None else str(summary.stopped),
        "expiring": [t.external_task_id for t in soon],
        "ok": summary.ok,
    }


def _say_nothing(batch: str | None, as_json: bool) -> None:
    if as_json:
        print_json(_json(Summary(), []))
        return
    where = f" in batch {batch!r}" if batch else ""
    sys.stdout.write(f"nothing to download: no succeeded tasks{where}\n")
