"""The JSON sidecar written beside every downloaded file: how the file was made and fetched.

``clip_0.mp4`` gets ``clip_0.mp4.json`` holding the task's request, Kling's result, the task's
timeline from the ledger, and the download facts (URL, size, sha256, when). The sidecar is
written atomically after the file itself, so a sidecar never describes a file that is not whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klingwatch.monitor.layout import ResultFile
from klingwatch.store.records import EventRecord, TaskRecord

__all__ = ["SIDECAR_VERSION", "read_sidecar", "sidecar_document", "sidecar_path", "write_sidecar"]

#: Bumped when the sidecar's layout changes incompatibly.
SIDECAR_VERSION = 1


def sidecar_path(dest: Path) -> Path:
    """The sidecar of ``dest``: ``<file>.json`` beside it."""
    return dest.with_name(f"{dest.name}.json")


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else _iso(ms / 1000.0)


def sidecar_document(
    dest: Path,
    *,
    task: TaskRecord,
    file: ResultFile,
    events: Sequence[EventRecord],
    size: int,
    sha256: str,
    downloaded_at: float,
    content_type: str | None = None,
) -> dict[str, Any]:
    """The sidecar's content (a JSON-ready dict)."""
    return {
        "klingwatch_sidecar": SIDECAR_VERSION,
        "file": {
            "name": dest.name,
            "kind": file.kind,
            "index": file.index,
            "variant": file.variant or None,
            "url": file.url,
            "size": size,
            "sha256": sha256,
            "content_type": content_type,
            "downloaded_at": _iso(downloaded_at),
            "downloaded_at_unix": downloaded_at,
        },
        "task": {
            "local_id": task.local_id,
            "batch": task.batch,
            "external_task_id": task.external_task_id,
            "task_id": task.task_id,
            "product": task.product,
            "family": task.family,
            "model": task.model,
            "mode": task.mode,
            "duration": task.duration,
            "status": str(task.status),
            "units": task.units,
            "source_line": task.source_line,
            "kling_created_at": _iso_ms(task.kling_created_ms),
            "kling_updated_at": _iso_ms(task.kling_updated_ms),
        },
        "request": task.request,
        "result": task.result,
        "timeline": [
            {
                "at": _iso(ev.at),
                "from": None if ev.from_status is None else str(ev.from_status),
                "to": str(ev.to_status),
                "source": str(ev.source),
                "detail": ev.detail,
            }
            for ev in events
        ],
    }


def write_sidecar(dest: Path, **facts: Any) -> Path:
    """Write ``dest``'s sidecar atomically (temporary file, then rename); returns its path.

    ``facts`` are :func:`sidecar_document`'s keyword arguments. Raises ``OSError`` when the
    folder cannot take it.
    """
    path = sidecar_path(dest)
    tmp = path.with_name(f".{path.name}.part")
    text = json.dumps(sidecar_document(dest, **facts), indent=2, ensure_ascii=False, default=str)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_sidecar(dest: Path) -> dict[str, Any]:
    """The sidecar of ``dest`` as a dict."""
    data: dict[str, Any] = json.loads(sidecar_path(dest).read_text(encoding="utf-8"))
    return data
