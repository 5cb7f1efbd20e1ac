"""Downloads inside the engine: the sandbox's real media, a real ledger, the real Monitor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from engine_world import World, world
from media_server import read_only_dir

from klingwatch.monitor.download_worker import DOWNLOAD_ALERT, EXPIRY_ALERT, DownloadWorker
from klingwatch.monitor.sidecar import read_sidecar
from klingwatch.sandbox.media import sample_mp4
from klingwatch.store import LocalStatus, Observation, Source

DAY = 86_400.0


def worker_for(w: World, **kw: object) -> DownloadWorker:
    return DownloadWorker(
        w.aledger,
        clock=w.clock,
        transport=httpx.ASGITransport(app=w.app),
        **kw,  # type: ignore[arg-type]
    )


async def test_the_engine_collects_an_opted_in_batch_while_it_watches(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        folder = tmp_path / "dl"
        w.ledger.ensure_batch("b1", download_dir=str(folder))
        await w.submit(8)
        worker = worker_for(w)
        await w.monitor(until_done=True, workers=[worker]).run()
        succeeded = w.ledger.tasks(status=LocalStatus.SUCCEED)
        assert succeeded  # the sandbox fails about one task in ten
        assert not worker.busy()
        for task in succeeded:
            video = folder / "b1" / f"{task.external_task_id}_0.mp4"
            assert video.read_bytes() == sample_mp4()
            side = read_sidecar(video)["file"]
            assert side["sha256"] == hashlib.sha256(sample_mp4()).hexdigest()
            [record] = w.ledger.downloads(task.local_id)
            assert (record.state, record.path) == ("complete", str(video))
        downloaded = {p.name for p in (folder / "b1").glob("*.mp4")}
        assert len(downloaded) == len(succeeded)
        assert worker.downloaded == len(succeeded)
        assert "downloaded=" in repr(worker)


async def test_a_batch_without_a_download_folder_is_left_alone(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(3)
        worker = worker_for(w)
        await w.monitor(until_done=True, workers=[worker]).run()
        assert w.ledger.tasks(status=LocalStatus.SUCCEED)
        assert w.ledger.downloads() == []
        assert worker.rounds == 0


async def test_a_global_download_folder_collects_every_batch(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(3, batch="x")
        await w.submit(3, batch="y", prefix="u")
        worker = worker_for(w, download_dir=tmp_path / "all")
        await w.monitor(until_done=True, workers=[worker]).run()
        expected = {
            f"{t.batch}/{t.external_task_id}_0.mp4"
            for t in w.ledger.tasks(status=LocalStatus.SUCCEED)
        }
        got = {str(p.relative_to(tmp_path / "all")) for p in (tmp_path / "all").rglob("*.mp4")}
        assert got == expected


async def test_an_unwritable_folder_stops_downloads_with_an_alert(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        with read_only_dir(tmp_path) as folder:
            w.ledger.ensure_batch("b1", download_dir=str(folder / "b"))
            await w.submit(3)
            worker = worker_for(w)
            await w.monitor(until_done=True, workers=[worker]).run()
            await worker.wait()
        assert worker.stopped is not None
        [alert] = [a for a in w.ledger.alerts() if a.kind == DOWNLOAD_ALERT]
        assert "downloads stopped: cannot write" in alert.message


async def test_uncollected_results_near_deletion_raise_the_expiry_alert(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        [local_id] = await w.submit(1)
        ended = w.clock.time() + 60
        w.clock.advance(27 * DAY)
        w.ledger.apply(
            Observation(
                status=LocalStatus.SUCCEED,
                source=Source.GET,
                at=w.clock.time(),
                local_id=local_id,
                kling_updated_ms=round(ended * 1000),
                result={"videos": [{"id": "v", "url": "http://sandbox.test/gone.mp4"}]},
            )
        )
        worker = worker_for(w, warn_days=5)
        await worker.run_once()
        await worker.wait()
        [alert] = [a for a in w.ledger.alerts() if a.kind == EXPIRY_ALERT]
        assert "1 succeeded task(s) are not downloaded" in alert.message
        assert "t0 on 2026-01-31 00:01 UTC" in alert.message


async def test_a_template_that_collides_stops_downloads_with_an_alert(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.ledger.ensure_batch("b1", download_dir=str(tmp_path / "dl"))
        await w.submit(4)
        await w.monitor(until_done=True).run()
        assert len(w.ledger.tasks(status=LocalStatus.SUCCEED)) >= 2
        worker = worker_for(w, template="{batch}.{ext}")
        await worker.run_once()
        await worker.wait()
        [alert] = [a for a in w.ledger.alerts() if a.kind == DOWNLOAD_ALERT]
        assert "the same path" in alert.message
        assert not (tmp_path / "dl").exists()
