"""``klingwatch demo``: a whole batch, end to end, offline, in about a minute.

The demo starts the sandbox (Kling played offline) on a free loopback port with compressed time,
writes a mixed batch file, and runs it exactly as ``klingwatch submit FILE --wait --download DIR``
would: validated, committed to a ledger as ``queued``, sent as concurrency slots free up, watched
until every task is final, results downloaded with their sidecars. When the first video finishes,
a video-extend of it is queued too. Nothing here is special-cased for the demo: the sandbox's
``[sandbox:refuse]`` and ``[sandbox:fail]`` prompt markers make the content-policy refusal and the
failed task happen.

Everything lands in ``--dir`` (default ``./klingwatch-demo``): the ledger, the batch file and the
downloads, so ``klingwatch status``, ``show``, ``export`` and ``serve`` can look at it afterwards.
Each run starts that folder afresh, so the demo only uses a folder it made itself (see
:func:`prepare`): never one holding someone's own ledger or files.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from klingwatch.cli.app import app
from klingwatch.cli.common import console, run_async
from klingwatch.cli.live import Reporter, format_duration, make_reporter
from klingwatch.cli.submit import to_new_task, wait_for_batch
from klingwatch.kling.client import KlingClient
from klingwatch.kling.models import TaskStatus
from klingwatch.kling.products import Family, get_product
from klingwatch.monitor.intake import read_batch
from klingwatch.operations import Operations
from klingwatch.sandbox import SandboxConfig
from klingwatch.sandbox.media import png
from klingwatch.sandbox.server import serve_in_thread
from klingwatch.settings import Settings
from klingwatch.store import Change, Ledger, LocalStatus, NewTask, TaskRecord

__all__ = ["MARKER", "demo_batch", "prepare", "run_demo"]

BATCH = "demo"
BATCH_FILE = "demo-batch.jsonl"
#: The file that marks a folder as the demo's own (the demo only reuses folders carrying it).
MARKER = ".klingwatch-demo"
#: The line whose finished video the demo extends.
EXTEND_SOURCE = "demo-fox"


def demo_batch() -> list[dict[str, Any]]:
    """The demo's requests: one of each kind a newcomer will want to see."""
    # A real 320x320 PNG, sent as raw Base64 the way Kling takes local images.
    picture = base64.b64encode(png(320, 320, (40, 90, 160))).decode()
    return [
        {
            "external_task_id": EXTEND_SOURCE,
            "product": "text2video",
            "prompt": "a red fox trotting through fresh snow at dawn, cinematic",
            "model_name": "kling-v2-6",
            "mode": "std",
            "duration": "5",
        },
        {
            "external_task_id": "demo-lighthouse-pro",
            "product": "text2video",
            "prompt": "a lighthouse in a storm, waves crashing over the rocks",
            "model_name": "kling-v2-6",
            "mode": "pro",
            "duration": "10",
        },
        {
            "external_task_id": "demo-city-from-image",
            "product": "image2video",
            "image": picture,
            "prompt": "the city lights come on one by one as night falls",
            "model_name": "kling-v2-1-master",
            "mode": "std",
        },
        {
            "external_task_id": "demo-postcards",
            "product": "image-generation",
            "prompt": "four watercolor postcards of Kyoto in autumn",
            "n": 4,
            "aspect_ratio": "3:2",
        },
        {
            "external_task_id": "demo-paper-boat",
            "product": "text-to-video/kling-3.0-turbo",
            "prompt": "a paper boat sailing down a rainy street, close-up",
            "duration": 8,
            "resolution": "1080p",
        },
        {
            "external_task_id": "demo-refused",
            "product": "text2video",
            "prompt": "a prompt the content policy refuses [sandbox:refuse]",
        },
        {
            "external_task_id": "demo-fails",
            "product": "text2video",
            "prompt": "a cat astronaut floating past the moon [sandbox:fail]",
        },
    ]


class _ExtendWhenReady:
    """A reporter in front of the real one: queues the video-extend once its source succeeds."""

    def __init__(self, inner: Reporter, ops: Operations) -> None:
        self._inner = inner
        self._ops = ops
        self.extended = False

    async def __aenter__(self) -> _ExtendWhenReady:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def changes(self, changes: Sequence[Change]) -> None:
        await self._inner.changes(changes)
        for change in changes:
            if change.external_task_id == EXTEND_SOURCE and change.new is LocalStatus.SUCCEED:
                await self._queue_extend()

    async def tick(self) -> None:
        await self._inner.tick()

    async def _queue_extend(self) -> None:
        source = await self._ops.ledger.task(EXTEND_SOURCE)
        videos = (source.result or {}).get("videos") or [] if source else []
        if source is None or not videos or self.extended:
            return
        request = {"video_id": str(videos[0]["id"]), "prompt": "the fox stops and looks back"}
        await self._ops.queue(
            BATCH,
            [
                NewTask(
                    product="video-extend",
                    request=request,
                    external_task_id="demo-fox-extended",
                    family=get_product("video-extend").family.value,
                    source_line="(queued by the demo when demo-fox succeeded)",
                )
            ],
        )
        self.extended = True


def prepare(directory: Path) -> Path:
    """A demo folder holding the batch file, afresh; returns the batch file's path.

    The demo deletes and rewrites what it made before (ledger, batch file, downloads), so it
    only ever uses a folder that is new or empty (it then leaves its :data:`MARKER` there), or
    one with that marker whose ledger holds nothing but the demo's batch. Any other folder is
    refused with one line, and nothing in it is touched.
    """
    directory = directory.expanduser().absolute()
    if directory.exists() and not directory.is_dir():
        raise _refuse(f"{directory} is a file, not a folder")
    if not directory.exists() or not any(directory.iterdir()):
        directory.mkdir(parents=True, exist_ok=True)
    elif (directory / MARKER).exists() or _made_by_an_older_demo(directory):
        _check_ledger_is_the_demos(directory)
        for name in ("klingwatch.db", "klingwatch.db-wal", "klingwatch.db-shm"):
            (directory / name).unlink(missing_ok=True)
        shutil.rmtree(directory / "downloads", ignore_errors=True)
    else:
        held = sorted(p.name for p in directory.iterdir())
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        raise _refuse(
            f"{directory} holds {shown}, which the demo did not make (it has no {MARKER})"
        )
    (directory / MARKER).write_text(
        "This folder was made by `klingwatch demo`, which deletes and rewrites its ledger, batch "
        "file and downloads on every run.\n"
    )
    batch_file = directory / BATCH_FILE
    batch_file.write_text("".join(json.dumps(line) + "\n" for line in demo_batch()))
    return batch_file


def _refuse(why: str) -> typer.BadParameter:
    return typer.BadParameter(
        f"{why}; the demo starts afresh in a folder of its own each run, so give a new or empty "
        "one (the default is ./klingwatch-demo)",
        param_hint="--dir",
    )


def _made_by_an_older_demo(directory: Path) -> bool:
    """A demo folder from before the marker: the demo's batch file, every line the demo's."""
    try:
        lines = (directory / BATCH_FILE).read_text().splitlines()
        ids = [json.loads(line).get("external_task_id", "") for line in lines if line.strip()]
    except (OSError, ValueError, AttributeError):
        return False
    return bool(ids) and all(str(i).startswith("demo-") for i in ids)


def _check_ledger_is_the_demos(directory: Path) -> None:
    """Refuse a demo folder whose ledger has batches of someone's own (added after the demo)."""
    if not (directory / "klingwatch.db").exists():
        return
    with Ledger.open(f"sqlite:///{directory / 'klingwatch.db'}") as ledger:
        others = sorted(b.name for b in ledger.batches() if b.name != BATCH)
    if others:
        raise _refuse(
            f"the ledger in {directory} also holds batches the demo did not make "
            f"({', '.join(others)}), so the demo leaves it alone"
        )


async def run_demo(
    directory: Path, *, time_scale: float, seed: int, as_json: bool
) -> dict[str, Any]:
    """Run the whole demo in a folder made by :func:`prepare` (absolute); return its summary."""
    batch_file = directory / BATCH_FILE
    downloads = directory / "downloads"

    api_key = "demo-" + secrets.token_urlsafe(16)
    config = SandboxConfig(
        api_keys=(api_key,),
        time_scale=time_scale,
        seed=seed,
        failure_rate=0.0,
        straggler_rate=0.0,
        # Three video slots for seven videos: the submitter has to queue, as on a real account.
        slots={Family.VIDEO: 3, Family.IMAGE: 10, Family.TRY_ON: 2},
    )
    with serve_in_thread(config) as base_url:
        settings = Settings.load(
            api_base=base_url,
            api_key=api_key,
            db=f"sqlite:///{(directory / 'klingwatch.db').resolve()}",
            time_scale=time_scale,
        )
        found = read_batch(str(batch_file), batch=BATCH)
        found.raise_for_problems()
        async with Operations.open(settings) as ops:
            await ops.queue(
                BATCH, [to_new_task(line) for line in found.lines], download_dir=downloads
            )
            async with make_reporter(
                ops.ledger, json_lines=as_json, batch=BATCH, console=console(), clock=ops.clock
            ) as inner:
                # The sandbox goes with the demo: nothing would carry on from here.
                await wait_for_batch(
                    ops, BATCH, _ExtendWhenReady(inner, ops), interrupted="interrupted"
                )
            return await ops.ledger.read(
                _summary, directory, downloads, batch_file, time_scale, ops.kling()
            )


def _nominal(ms_from: int | None, ms_to: int | None, scale: float) -> float | None:
    """Seconds between two Kling timestamps, as they would be on a real account."""
    if ms_from is None or ms_to is None:
        return None
    return max(0.0, (ms_to - ms_from) / 1000.0 / scale)


def _task_row(task: TaskRecord, scale: float) -> dict[str, Any]:
    final = task.kling_updated_ms if task.status.is_final else None
    return {
        "external_task_id": task.external_task_id,
        "product": task.product,
        "model": task.model,
        "mode": task.mode,
        "status": str(task.status),
        "reason": task.status_msg or None,
        "queued_s": _nominal(task.kling_created_ms, task.kling_processing_ms, scale),
        "ran_s": _nominal(task.kling_processing_ms, final, scale),
        "polls": task.polls,
    }


def _summary(
    ledger: Ledger,
    directory: Path,
    downloads: Path,
    batch_file: Path,
    scale: float,
    client: KlingClient,
) -> dict[str, Any]:
    tasks = ledger.tasks(batch=BATCH)
    files = [d for d in ledger.downloads() if d.state == "complete" and d.path]
    counts = {str(s): n for s, n in ledger.counts(batch=BATCH).items() if n}
    db = f"sqlite:///{(directory / 'klingwatch.db').resolve()}"
    return {
        "batch": BATCH,
        "time_scale": scale,
        "counts": counts,
        "tasks": [_task_row(task, scale) for task in tasks],
        "files": len(files),
        "bytes": sum(d.size or 0 for d in files),
        "downloads": str(downloads.resolve()),
        "batch_file": str(batch_file.resolve()),
        "ledger": db,
        "requests": client.stats.requests,
        "requests_by_route": client.stats.snapshot()["by_route"],
        "next": [
            f"klingwatch status --db {db}",
            f"klingwatch show {EXTEND_SOURCE} --db {db}",
            f"klingwatch export --db {db} --format csv",
            f"KLINGWATCH_DB={db} klingwatch serve   # then open http://127.0.0.1:8000/",
        ],
    }


def _print_summary(summary: dict[str, Any]) -> None:
    out = console()
    out.print()
    counts = "  ".join(f"{status} {n}" for status, n in summary["counts"].items())
    out.print(f"[bold]demo finished:[/bold] {counts}")
    table = Table(
        title=f"times as on a real account (the sandbox ran {1 / summary['time_scale']:g}x faster)"
    )
    table.add_column("task", no_wrap=True)
    table.add_column("kind", max_width=30, overflow="fold")  # wraps: readable at 80 columns
    for column in ("status", "queued", "ran"):
        table.add_column(column, no_wrap=True)
    for row in summary["tasks"]:
        model = (
            None if row["model"] and row["product"].endswith("/" + row["model"]) else row["model"]
        )
        table.add_row(
            row["external_task_id"],
            " ".join(part for part in (row["product"], model, row["mode"]) if part),
            row["status"],
            format_duration(row["queued_s"]),
            format_duration(row["ran_s"]),
        )
    out.print(table)
    for row in summary["tasks"]:
        if row["reason"]:
            out.print(f"[bold]{row['external_task_id']}[/bold] {row['status']}: {row['reason']}")
    out.print(
        f"{summary['files']} files ({summary['bytes'] / 1e6:.1f} MB) with JSON sidecars in "
        f"{summary['downloads']}"
    )
    routes = ", ".join(f"{n} {route}" for route, n in summary["requests_by_route"].items())
    out.print(f"Kling requests made: {summary['requests']} ({routes})")
    out.print(f"the batch file: {summary['batch_file']}")
    out.print("next:")
    for line in summary["next"]:
        out.print(f"  {line}", soft_wrap=True)


DIR_OPTION: Any = typer.Option(
    "klingwatch-demo",
    "--dir",
    help="Where the demo's ledger, batch file and files go: a new or empty folder, or one an "
    "earlier demo made (each run starts it afresh).",
)


@app.command("demo")
def demo_command(
    directory: Path = DIR_OPTION,
    time_scale: float = typer.Option(
        0.1, "--time-scale", min=0.001, max=1.0, help="0.1 runs Kling's minutes 10x faster."
    ),
    seed: int = typer.Option(7, "--seed", help="The sandbox's random seed (repeatable runs)."),
    as_json: bool = typer.Option(
        False, "--json", help="JSON lines for each change, then a JSON summary."
    ),
) -> None:
    """Submit, watch and collect a mixed batch against the offline sandbox: no account needed.

    Text-to-video in std and pro, image-to-video, a video-extend of a finished video, an image
    generation with n=4, a new-standard kling-3.0-turbo video, one prompt the content policy
    refuses and one task that fails. About a minute at the default time scale.
    """
    directory = prepare(directory).parent
    summary = run_async(run_demo(directory, time_scale=time_scale, seed=seed, as_json=as_json))
    if as_json:
        typer.echo(json.dumps({"summary": summary}))
    else:
        _print_summary(summary)
    if summary["counts"].get(str(TaskStatus.SUCCEED), 0) == 0:
        raise typer.Exit(1)
