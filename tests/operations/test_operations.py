"""The operations layer: what the CLI, the web server and the MCP server all call, against the
sandbox (in-process, on a manual clock) and a real SQLite ledger."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from ops_world import operations

from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.monitor.alerts import AlertWorker
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.gates import PauseState, learn_slots, pause, pause_state
from klingwatch.monitor.outbound import EventDelivery
from klingwatch.monitor.retries import RetryRefused
from klingwatch.monitor.submitter import Submitter
from klingwatch.operations import Operations
from klingwatch.store import LocalStatus, NewTask
from klingwatch.store.async_ledger import AsyncLedger


def _served(app: object) -> int:
    """Requests the sandbox answered (its own ground truth)."""
    return sum(app.state.sandbox.state.requests.values())  # type: ignore[attr-defined]


async def _created_elsewhere(client: KlingClient, n: int) -> list[str]:
    ids = []
    for i in range(n):
        task = await client.create("text2video", {"prompt": f"made in the console {i}"})
        ids.append(task.id)
    return ids


@pytest.mark.parametrize(("api_key", "most"), [(True, 3), (False, 1)], ids=["tasks", "legacy"])
async def test_track_reads_many_tasks_per_request(tmp_path: Path, api_key: bool, most: int) -> None:
    async with operations(tmp_path, api_key=api_key) as (ops, ledger, app):
        assert ops.client is not None
        ids = await _created_elsewhere(ops.client, 60)
        before = _served(app)
        result = await ops.track("text2video", ids, batch="mine")
        assert [r.task_id for r in result.tracked] == ids
        assert result.missing == []
        # 60 ids: 3 x GET /tasks?task_ids= (20 each), or one legacy list page (500 a page),
        # as the sandbox counted them.
        assert _served(app) - before == result.requests <= most
        assert {t.status for t in ledger.tasks(batch="mine")} == {LocalStatus.SUBMITTED}
        again = await ops.track("text2video", [*ids[:5], "866889456698785798"], batch="mine")
        assert len(again.tracked) == 5
        assert again.missing == ["866889456698785798"]  # Kling does not know it: not adopted
        assert len(ledger.tasks(batch="mine")) == 60  # nothing adopted twice


async def test_track_without_credentials_adopts_unverified(tmp_path: Path) -> None:
    async with operations(tmp_path) as (ops, ledger, _):
        offline = Operations(settings=ops.settings, ledger=ops.ledger, clock=ops.clock)
        result = await offline.track("text2video", ["123"], batch="b")
        assert [r.task_id for r in result.tracked] == ["123"]
        assert result.requests == 0
        assert ledger.task("123") is not None


async def test_the_engine_is_built_from_the_settings(tmp_path: Path) -> None:
    async with operations(
        tmp_path, slots_video=4, slots_image=9, resume_after_1102=900, download_dir="dl"
    ) as (ops, _, _):
        engine = ops.engine(callback_url="https://me.example/callbacks/kling/t")
        assert isinstance(engine.submitter, Submitter)
        assert engine.submitter.slots.configured == {"video": 4, "image": 9}
        assert engine.submitter.policy.resume_after_1102 == 900
        assert engine.submitter.callback_url == "https://me.example/callbacks/kling/t"
        [downloads] = [w for w in engine.workers if isinstance(w, DownloadWorker)]
        assert downloads.download_dir is not None
        assert downloads.download_dir.is_absolute()
        # Narrowed to one batch, the engine follows it and sends nothing.
        assert ops.engine(batch="b1").submitter is None


async def test_alerts_and_events_are_wired_only_when_configured(tmp_path: Path) -> None:
    async with operations(tmp_path) as (ops, _, _):
        engine = ops.engine()
        assert not [w for w in engine.workers if isinstance(w, AlertWorker | EventDelivery)]
    async with operations(
        tmp_path,
        notify="json://127.0.0.1:9/a, ntfy://topic",
        events_url="http://127.0.0.1:9/events",
        alert_failure_percent=35,
        alert_interval=12,
    ) as (ops, _, _):
        engine = ops.engine()
        [alerts] = [w for w in engine.workers if isinstance(w, AlertWorker)]
        [events] = [w for w in engine.workers if isinstance(w, EventDelivery)]
        assert len(alerts.notifier.targets) == 2
        assert alerts.settings.failure_percent == 35
        assert alerts.interval == 12
        assert events.url == "http://127.0.0.1:9/events"


async def test_a_batch_run_stops_when_its_batch_is_done(tmp_path: Path) -> None:
    async with operations(tmp_path) as (ops, ledger, app):
        tasks = [NewTask("text2video", {"prompt": f"fox {i}"}, f"fox-{i}") for i in range(5)]
        await ops.queue("foxes", tasks)
        await ops.engine(until_done=True, done_batch="foxes", stop_on_pause=True).run()
        counts = ledger.counts(batch="foxes")
        assert counts[LocalStatus.SUCCEED] == 5
        creates = Counter(app.state.sandbox.state.creates_seen)
        assert set(creates.values()) == {1}


async def test_a_batch_run_stops_as_soon_as_sending_pauses(tmp_path: Path) -> None:
    async with operations(tmp_path) as (ops, ledger, _):
        await ops.queue("b", [NewTask("text2video", {"prompt": "a fox"}, "fox")])
        pause(ledger, PauseState(reason="pack exhausted", at=ops.clock.time(), code=1102))
        engine = ops.engine(until_done=True, done_batch="b", stop_on_pause=True)
        await engine.run()
        assert engine.iterations == 1
        assert ledger.counts(batch="b")[LocalStatus.QUEUED] == 1  # nothing was lost


async def test_retry_queues_a_linked_task_and_refuses_to_pay_again_silently(
    tmp_path: Path,
) -> None:
    async with operations(tmp_path) as (ops, ledger, _):
        tasks = [
            NewTask("text2video", {"prompt": "ok"}, "ok"),
            NewTask("text2video", {"prompt": "bad [sandbox:fail]"}, "bad"),
        ]
        await ops.queue("b", tasks)
        await ops.engine(until_done=True).run()
        assert ledger.task("bad").status is LocalStatus.FAILED  # type: ignore[union-attr]
        result = await ops.retry(batch="b", failed=True)
        [(old, new)] = result.queued
        assert (old.external_task_id, new.external_task_id) == ("bad", "bad-r1")
        assert new.retry_of == old.local_id
        assert (await ops.retry(batch="b", failed=True)).queued == []  # not twice
        with pytest.raises(RetryRefused, match="bills again"):
            await ops.retry(ids=["ok"])
        forced = await ops.retry(ids=["ok"], force=True)
        assert forced.queued[0][1].external_task_id == "ok-r1"


async def test_resume_clears_the_pause_and_may_forget_learned_limits(tmp_path: Path) -> None:
    async with operations(tmp_path) as (ops, ledger, _):
        pause(ledger, PauseState(reason="pack exhausted", at=ops.clock.time(), code=1102))
        learn_slots(ledger, Family.VIDEO.value, 3)
        result = await ops.resume(forget_slots=True)
        assert result.was is not None
        assert result.was.code == 1102
        assert result.forgotten == {"video": 3}
        assert pause_state(ledger) is None
        assert (await ops.resume()).was is None


async def test_the_callback_token_is_made_once_and_kept(tmp_path: Path) -> None:
    async with operations(tmp_path, public_url="https://me.example/") as (ops, ledger, _):
        url = await ops.callback_url()
        assert url is not None
        assert url.startswith("https://me.example/callbacks/kling/")
        assert await ops.callback_url() == url
        again = Operations(settings=ops.settings, ledger=AsyncLedger(ledger), clock=ops.clock)
        assert await again.callback_url() == url  # another replica on this ledger agrees
