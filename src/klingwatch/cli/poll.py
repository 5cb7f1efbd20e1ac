"""``klingwatch poll TASK_ID``: wait for one task, printing each status change.

Exit codes (:mod:`klingwatch.cli.exits`): 0 the task succeeded, 1 it failed (the reason is
printed), 4 the deadline passed first, 2 a bad option, 3 anything else klingwatch could explain
(credentials, server unreachable, unknown product), as one ``error: ...`` line.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import clock_from, load_settings, make_client, run_async
from klingwatch.cli.exits import ExitCode
from klingwatch.cli.options import DURATION_HELP, duration_param
from klingwatch.clock import format_duration
from klingwatch.kling.errors import WaitTimeout
from klingwatch.kling.models import Task, TaskStatus

__all__ = ["EXIT_DEADLINE", "EXIT_FAILED", "poll_command"]

EXIT_FAILED = ExitCode.FAILED
EXIT_DEADLINE = ExitCode.DEADLINE


def _task_json(task: Task) -> dict[str, Any]:
    data = task.model_dump(mode="json", exclude={"raw"})
    data["result_urls"] = task.result_urls
    return data


@app.command("poll")
def poll_command(
    task_id: str = typer.Argument(..., help="Kling's task_id (use --external for your own id)."),
    product: str = typer.Option(
        "text2video",
        "--product",
        "-p",
        help="Product the task was created with: text2video, image2video, ..., or a "
        "new-standard path such as text-to-video/kling-3.0-turbo.",
    ),
    deadline: float | None = typer.Option(
        None,
        "--deadline",
        "-d",
        parser=duration_param,
        help=f"Give up after this long: {DURATION_HELP}. Default 3h.",
    ),
    external: bool = typer.Option(
        False, "--external", help="TASK_ID is the external_task_id given at creation."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per status change, then the final task."
    ),
) -> None:
    """Wait for one task; print each status change with the elapsed time, then the result URLs.

    Exit code 0 when it succeeded, 1 when it failed, 4 when the deadline passed first.
    """
    code = run_async(_poll(task_id, product, deadline, external=external, as_json=as_json))
    raise typer.Exit(code)


async def _poll(
    task_id: str, product: str, deadline: float | None, *, external: bool, as_json: bool
) -> int:
    settings = load_settings()
    clock = clock_from(settings)
    start = clock.monotonic()

    def elapsed() -> float:
        return (clock.monotonic() - start) / clock.scale

    def show(task: Task) -> None:
        if as_json:
            line: dict[str, Any] = {
                "elapsed": round(elapsed(), 3),
                "id": task.id,
                "status": task.status.value,
            }
            if task.status_msg:
                line["status_msg"] = task.status_msg
            typer.echo(json.dumps(line))
        else:
            reason = f"  {task.status_msg}" if task.status_msg else ""
            typer.echo(
                f"{'+' + format_duration(elapsed(), precise=True):>9}  {task.status.value}{reason}"
            )

    async with make_client(settings, clock=clock) as kling:
        if external:
            task_id = (await kling.get_by_external_id(product, task_id)).id
        try:
            task = await kling.wait(product, task_id, deadline=deadline, on_update=show)
        except WaitTimeout as exc:
            last = exc.task
            if as_json:
                typer.echo(
                    json.dumps({"deadline": True, "task": _task_json(last) if last else None})
                )
            typer.echo(f"deadline: {exc}", err=True)
            return EXIT_DEADLINE
    if as_json:
        typer.echo(json.dumps(_task_json(task)))
    elif task.status is TaskStatus.SUCCEED:
        for url in task.result_urls:
            typer.echo(url)
    else:
        typer.echo(f"task {task.id} failed: {task.status_msg or 'no reason given'}", err=True)
    return 0 if task.status is TaskStatus.SUCCEED else EXIT_FAILED
