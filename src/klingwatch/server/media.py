"""Result files: what the dashboard plays, and the route that serves downloaded files.

Kling's result URLs expire (the files are deleted 30 days after the task ends). Once klingwatch has
downloaded a file, the dashboard plays that copy instead, served by
``GET /api/tasks/{ref}/files/{index}``. The route takes a task and a file *index*, never a path: it
serves only the path the ledger's downloads table recorded for that file, complete and still a
regular file on disk, so no request can name any other file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from klingwatch.monitor.layout import result_files
from klingwatch.server.auth import require_token
from klingwatch.server.deps import ERRORS, MAX_ID, NOT_FOUND, State, TaskRef, find_task
from klingwatch.store import DownloadRecord, TaskRecord

__all__ = ["MediaOut", "file_url", "local_file", "media_of", "router"]

router = APIRouter(
    prefix="/api", tags=["api"], dependencies=[Depends(require_token)], responses=ERRORS
)


class MediaOut(BaseModel):
    """One result file: a video plays in the dashboard, an image is shown."""

    kind: Literal["video", "image", "audio"]
    index: int = Field(description="the file's index among the task's results and downloads")
    url: str = Field(description="what to play: the downloaded copy when there is one")
    kling_url: str = Field(description="Kling's URL (Kling deletes the file 30 days after)")
    local: bool = Field(description="whether url is klingwatch's downloaded copy")
    duration: float | None = Field(default=None, description="seconds, for a video")


def file_url(local_id: int, index: int) -> str:
    """Where ``serve`` serves a task's downloaded file."""
    return f"/api/tasks/{local_id}/files/{index}"


def local_file(record: DownloadRecord) -> Path | None:
    """The recorded file of a complete download, if it is still a regular file on disk."""
    if record.state != "complete" or not record.path:
        return None
    path = Path(record.path)
    return path if path.is_file() else None


def media_of(task: TaskRecord, downloads: Iterable[DownloadRecord] = ()) -> list[MediaOut]:
    """Every playable result of ``task``, in order; each points at its downloaded copy when
    ``downloads`` holds a complete one that is still on disk."""
    on_disk = {d.index for d in downloads if local_file(d) is not None}
    durations = _durations(task.result)
    return [
        MediaOut(
            kind=f.kind,
            index=f.index,
            url=file_url(task.local_id, f.ledger_index) if f.ledger_index in on_disk else f.url,
            kling_url=f.url,
            local=f.ledger_index in on_disk,
            duration=durations.get(f.url),
        )
        for f in result_files(task.result)
    ]


def _durations(result: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (result or {}).get("videos") or ():
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        duration = item.get("duration")  # Kling sends "5.1" or 5.1
        if isinstance(duration, int | float | str):
            try:
                seconds = float(duration)
            except ValueError:
                continue
            if math.isfinite(seconds):  # JSON has no NaN
                out[item["url"]] = seconds
    return out


@router.get(
    "/tasks/{ref}/files/{index}",
    response_class=FileResponse,
    responses={
        **NOT_FOUND,
        200: {"description": "the file as downloaded", "content": {"*/*": {}}},
    },
)
async def task_file(
    ref: TaskRef, index: Annotated[int, PathParam(ge=0, le=MAX_ID)], state: State
) -> FileResponse:
    """A result file klingwatch downloaded (with Range requests, so a video can seek)."""
    task = await find_task(state, ref)
    downloads = await state.ledger.downloads(task.local_id)
    record = next((d for d in downloads if d.index == index), None)
    if record is None or record.state != "complete":
        raise HTTPException(
            status_code=404, detail=f"file {index} of task {ref!r} is not downloaded"
        )
    path = local_file(record)
    if path is None:
        raise HTTPException(
            status_code=404,
            detail=f"file {index} of task {ref!r} is no longer at {record.path} "
            "(`klingwatch download` fetches it again)",
        )
    return FileResponse(path)
