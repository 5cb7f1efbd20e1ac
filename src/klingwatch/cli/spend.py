"""``klingwatch spend``: units estimated and spent, and cash charged, per batch, product, model,
mode or day."""

from __future__ import annotations

import csv
import sys

import typer
from rich.table import Column

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    load_settings,
    print_json,
    print_table,
    run_async,
    wall_time,
)
from klingwatch.cli.options import DURATION_HELP, duration_param
from klingwatch.operations import Operations, SpendReport, SpendRow
from klingwatch.operations.results import SPEND_KEYS
from klingwatch.settings import Settings

__all__: list[str] = []


async def _spend(
    settings: Settings, by: list[str], batch: str | None, since_ms: int | None
) -> SpendReport:
    async with Operations.open(settings, client=False) as ops:
        return await ops.spend(by=by, batch=batch, since_ms=since_ms)


def _cash(row: SpendRow) -> str | None:
    if not row.cash:
        return None
    return ", ".join(f"{amount} {currency or 'cash'}" for currency, amount in row.cash)


def _cells(row: SpendRow, by: tuple[str, ...]) -> list[object]:
    d = row.to_dict()
    return [
        *(row.keys.get(k) for k in by),
        row.tasks,
        d["units_estimated"],
        d["units_spent"],
        _cash(row),
    ]


def _print_csv(report: SpendReport) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([*report.by, "tasks", "charged", "units_estimated", "units_spent", "cash"])
    for row in report.rows:
        d = row.to_dict()
        cash = ";".join(f"{c['amount']} {c['currency'] or ''}".strip() for c in d["cash"])
        writer.writerow(
            [
                *(row.keys.get(k) or "" for k in report.by),
                row.tasks,
                row.charged,
                d["units_estimated"],
                d["units_spent"],
                cash,
            ]
        )


@app.command("spend")
def spend_command(
    by: str = typer.Option(
        "batch",
        "--by",
        metavar="KEYS",
        help=f"Group by these, comma-separated: {', '.join(SPEND_KEYS)} (e.g. batch,day).",
    ),
    batch: str | None = typer.Option(None, "--batch", "-b", help="Only tasks of this batch."),
    since: float | None = typer.Option(
        None,
        "--since",
        parser=duration_param,
        metavar="DURATION",
        help=f"Only tasks that spent within this long ago ({DURATION_HELP}; 7d: a week).",
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """What was spent: units estimated when queued, units Kling deducted, cash charged.

    Units spent are Kling's own figures (final_unit_deduction, billing[]), known once a task
    has ended; the estimate is klingwatch's rough table, made when each task was queued. A
    task's day (UTC) is when it finished, else when it was sent, else queued.
    """
    keys = [k for k in by.split(",") if k.strip()]
    since_ms = None if since is None else int((wall_time() - since) * 1000)
    report = run_async(_spend(load_settings(db), keys, batch, since_ms))
    if as_json:
        print_json(report.to_dict())
        return
    if as_csv:
        _print_csv(report)
        return
    columns = [
        *(Column(k, overflow="fold") for k in report.by),
        Column("tasks", justify="right", no_wrap=True),
        Column("≈units", justify="right", no_wrap=True),
        Column("units spent", justify="right", no_wrap=True),
        Column("cash", no_wrap=True),
    ]
    rows = [_cells(row, report.by) for row in report.rows]
    total = _cells(report.total, ())
    if report.rows:
        rows.append(["total", *([""] * (len(report.by) - 1)), *total])
    print_table(columns, rows, title="spend (≈units: estimated when queued)")
