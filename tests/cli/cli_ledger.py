"""A small ledger with tasks in every interesting state, for the read commands' tests."""

from __future__ import annotations

from pathlib import Path

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

T0 = 1_767_225_600.0
REQUEST = {"prompt": "a cat surfing", "model_name": "kling-v2-6", "mode": "std"}


def make_ledger(path: Path) -> str:
    """Create the ledger file; returns its URL."""
    url = f"sqlite:///{path}"
    clock = ManualClock(start=T0)
    with Ledger.open(url, clock=clock) as ledger:
        ledger.ensure_batch("b1")
        ledger.ensure_batch("b2")
        names = ["done", "failed", "running", "waiting"]
        ids = ledger.add_tasks(
            "b1",
            [
                NewTask("text2video", REQUEST, f"ext-{n}", model="kling-v2-6", mode="std")
                for n in names
            ],
        ).added
        ledger.add_tasks("b2", [NewTask("text2video", REQUEST, "ext-other")])
        done, failed, running, _ = ids
        for i, local_id in enumerate((done, failed, running)):
            ledger.mark_sending(local_id, T0 + 1)
            created = int((T0 + 1) * 1000)
            see = [
                (LocalStatus.SUBMITTED, Source.CREATE, created),
                (LocalStatus.PROCESSING, Source.LIST, created + 10_000),
            ]
            if local_id == done:
                see.append((LocalStatus.SUCCEED, Source.GET, created + 90_000))
            if local_id == failed:
                see.append((LocalStatus.FAILED, Source.LIST, created + 30_000))
            for status, source, updated in see:
                ledger.apply(
                    Observation(
                        status,
                        source,
                        updated / 1000 + 2,
                        local_id=local_id,
                        task_id=f"80000000000000000{i}",
                        kling_created_ms=created,
                        kling_updated_ms=updated,
                        status_msg="Image pixel is invalid" if local_id == failed else None,
                        result={"videos": [{"id": "v", "url": "https://cdn/x.mp4"}]}
                        if status is LocalStatus.SUCCEED
                        else None,
                        units="1.5" if status is LocalStatus.SUCCEED else None,
                    )
                )
        ledger.set_stuck(running, True, "processing for 20m00s, past its p99", T0 + 1300)
        ledger.record_download(
            done,
            0,
            url="https://cdn/x.mp4",
            path="/data/b1/ext-done.mp4",
            size=10,
            sha256="00",
            state="complete",
            error=None,
            at=T0 + 100,
        )
    return url
