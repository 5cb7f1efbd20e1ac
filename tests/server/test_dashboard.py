"""The dashboard in a real headless Chromium: tasks change in the ledger, the page follows.

The app runs under uvicorn on a real loopback socket in a thread; the test changes tasks through
the ledger's one door (as the engine or a callback would) and asserts what a person sees: the
counts, the progress bar, a row appearing in the stream, the video on a task page.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect, sync_playwright
from serverkit import API_TOKEN, ThreadedServer, add_task

from klingwatch.clock import RealClock
from klingwatch.monitor import gates
from klingwatch.sandbox.media import sample_mp4
from klingwatch.server.dashboard import STATIC_DIR
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000  # how long a page may take to show a change (it usually takes well under 1 s)


@pytest.fixture
def real_ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=RealClock()) as opened:
        yield opened


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One Chromium for the module (starting it is the slow part); a fresh page per test."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            "Debian chromium is not installed: run the tests with `make test` "
            "(it installs chromium as root), or apt-get install chromium"
        )
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh tab; the test fails if the page's script threw or logged an error."""
    opened = browser.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield opened
    finally:
        opened.close()
    assert errors == []


def observe(ledger: Ledger, local_id: int, status: LocalStatus, **kw: object) -> None:
    ledger.apply(
        Observation(status=status, source=Source.GET, at=time.time(), local_id=local_id, **kw)  # type: ignore[arg-type]
    )


def card(page: Page, key: str) -> object:
    return page.locator(f"#count-{key} .n")


def test_the_overview_follows_the_ledger_live(
    real_ledger: Ledger, page: Page, tmp_path: Path
) -> None:
    ids = [
        add_task(real_ledger, n, prompt=f"a lighthouse in a storm, take {n}") for n in range(1, 5)
    ]
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/")
        expect(page.locator("#live")).to_have_class("live on", timeout=WAIT_MS)
        expect(card(page, "inflight")).to_have_text("4")  # type: ignore[arg-type]
        expect(card(page, "succeed")).to_have_text("0")  # type: ignore[arg-type]
        batch = page.locator('[data-batch="b1"]')
        expect(batch.locator(".progress-text")).to_have_text("0 / 4 done · 0%")

        observe(real_ledger, ids[0], LocalStatus.PROCESSING)
        observe(
            real_ledger,
            ids[0],
            LocalStatus.SUCCEED,
            result={"videos": [{"url": "http://media.test/v.mp4"}]},
        )
        observe(real_ledger, ids[1], LocalStatus.FAILED, status_msg="Image pixel is invalid")

        expect(card(page, "succeed")).to_have_text("1", timeout=WAIT_MS)  # type: ignore[arg-type]
        expect(card(page, "failed")).to_have_text("1", timeout=WAIT_MS)  # type: ignore[arg-type]
        expect(card(page, "inflight")).to_have_text("2", timeout=WAIT_MS)  # type: ignore[arg-type]
        expect(batch.locator(".progress-text")).to_have_text("2 / 4 done · 50%", timeout=WAIT_MS)
        expect(batch.locator(".bar")).to_have_attribute("aria-valuenow", "50")
        expect(batch.locator(".bar .succeed")).to_have_attribute("style", "width:25%")
        # The change stream shows the new status changes, newest on top, each task by name.
        newest = page.locator("#events li").first
        expect(newest.locator(".task-name")).to_have_text("b1-2", timeout=WAIT_MS)
        expect(newest.locator(".task-name")).to_have_attribute("href", f"/task/{ids[1]}")
        expect(newest).to_contain_text("failed")
        expect(page.locator("#events")).not_to_contain_text(f"#{ids[1]}")
        # The failure and its reason appear under "Needs attention".
        failed = page.locator(f'#failed li[data-task="{ids[1]}"]')
        expect(failed).to_contain_text("Image pixel is invalid", timeout=WAIT_MS)

        # A new batch appears as a new progress bar.
        add_task(real_ledger, 9, batch="second wave")
        expect(page.locator('[data-batch="second wave"] .progress-text')).to_have_text(
            "0 / 1 done · 0%", timeout=WAIT_MS
        )
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)


def test_a_task_page_plays_the_result_and_follows_its_timeline(
    real_ledger: Ledger, page: Page
) -> None:
    local = add_task(real_ledger, 1, prompt="a paper boat on a puddle")
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/task/{local}")
        expect(page.locator(".task-head .badge").first).to_have_text("submitted", timeout=WAIT_MS)
        expect(page.locator(".prompt-text")).to_have_text("a paper boat on a puddle")
        expect(page.locator("#live")).to_have_class("live on", timeout=WAIT_MS)

        observe(real_ledger, local, LocalStatus.PROCESSING)
        expect(page.locator(".task-head .badge").first).to_have_text("processing", timeout=WAIT_MS)
        observe(
            real_ledger,
            local,
            LocalStatus.SUCCEED,
            result={"videos": [{"url": f"{base}/static/favicon.svg", "duration": 5.0}]},
        )
        expect(page.locator(".task-head .badge").first).to_have_text("succeeded", timeout=WAIT_MS)
        expect(page.locator(".media video")).to_have_attribute("src", f"{base}/static/favicon.svg")
        expect(page.locator("#timeline li")).to_have_count(4)
        expect(page.locator("#timeline li").last).to_contain_text("succeeded")


def test_the_tasks_page_filters_by_prompt_text(real_ledger: Ledger, page: Page) -> None:
    add_task(real_ledger, 1, prompt="a red fox in the snow")
    add_task(real_ledger, 2, prompt="a blue whale at dawn")
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/tasks")
        expect(page.locator("#task-rows tr")).to_have_count(2, timeout=WAIT_MS)
        page.fill("input[name=q]", "whale")
        page.click("#filters button[type=submit]")
        expect(page.locator("#task-rows tr")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#task-rows tr")).to_contain_text("a blue whale at dawn")
        expect(page).to_have_url(f"{base}/tasks?q=whale")


def test_with_a_token_the_browser_signs_in_once(real_ledger: Ledger, page: Page) -> None:
    add_task(real_ledger, 1)
    with ThreadedServer(real_ledger, api_token=API_TOKEN) as base:
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/login?next=/")
        page.fill("input[name=token]", API_TOKEN)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base}/")
        expect(card(page, "total")).to_have_text("1", timeout=WAIT_MS)  # type: ignore[arg-type]
        page.goto("about:blank")  # leave before the server stops: no request is cut off


def test_the_dashboard_fits_a_phone(real_ledger: Ledger, page: Page, tmp_path: Path) -> None:
    for n in range(1, 4):
        add_task(
            real_ledger, n, prompt=f"a very long prompt about mountains and rivers, number {n} " * 3
        )
    with ThreadedServer(real_ledger) as base:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/")
        expect(card(page, "total")).to_have_text("3", timeout=WAIT_MS)  # type: ignore[arg-type]
        # Nothing wider than the screen: no sideways scrolling on a phone.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_a_paused_account_shows_a_banner_that_resume_clears(
    real_ledger: Ledger, page: Page
) -> None:
    add_task(real_ledger, 1)
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/")
        expect(card(page, "total")).to_have_text("1", timeout=WAIT_MS)  # type: ignore[arg-type]
        expect(page.locator("#alert-paused")).to_have_count(0)
        gates.pause(
            real_ledger,
            gates.PauseState(reason="Account balance not enough", at=time.time(), code=1102),
        )
        # A pause writes no task event, so the page learns it on its next regular refresh.
        page.reload()
        banner = page.locator("#alert-paused")
        expect(banner).to_contain_text("Resource pack exhausted", timeout=WAIT_MS)
        expect(banner).to_contain_text("Account balance not enough")
        banner.locator("button").click()
        expect(page.locator("#alert-paused")).to_have_count(0, timeout=WAIT_MS)
    assert gates.pause_state(real_ledger) is None


def test_an_image_result_is_shown_as_an_image(real_ledger: Ledger, page: Page) -> None:
    local = add_task(real_ledger, 1, product="image-generation", model="kling-v2")
    with ThreadedServer(real_ledger) as base:
        observe(
            real_ledger,
            local,
            LocalStatus.SUCCEED,
            result={"images": [{"index": 0, "url": f"{base}/static/favicon.svg"}]},
        )
        page.goto(f"{base}/task/{local}")
        image = page.locator(".media img")
        expect(image).to_have_attribute("src", f"{base}/static/favicon.svg", timeout=WAIT_MS)
        expect(page.locator(".media video")).to_have_count(0)
        # The image really loaded (the browser decoded it), not just an <img> tag.
        page.wait_for_function(
            "document.querySelector('.media img').naturalWidth > 0", timeout=WAIT_MS
        )


def test_retrying_a_failed_task_from_its_page_opens_the_new_task(
    real_ledger: Ledger, page: Page
) -> None:
    local = add_task(real_ledger, 1, prompt="a glass of water on a wobbly table")
    observe(
        real_ledger, local, LocalStatus.FAILED, status_msg="Task failed due to an internal error"
    )
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/task/{local}")
        expect(page.locator(".reason-box")).to_have_text(
            "Task failed due to an internal error", timeout=WAIT_MS
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Retry").click()
        expect(page.locator(".task-head .badge").first).to_have_text("queued", timeout=WAIT_MS)
        expect(page.locator(".prompt-text")).to_have_text("a glass of water on a wobbly table")
        expect(page.locator("#task .facts")).to_contain_text(f"Retry of#{local}")
    retries = [t for t in real_ledger.tasks() if t.retry_of == local]
    assert [t.status for t in retries] == [LocalStatus.QUEUED]
    assert page.url.endswith(f"/task/{retries[0].local_id}")


def downloaded(ledger: Ledger, local: int, path: Path, kling_url: str) -> None:
    """Record ``path`` as the complete download of the task's first result file."""
    ledger.record_download(
        local,
        0,
        url=kling_url,
        path=str(path),
        size=path.stat().st_size,
        sha256=None,
        state="complete",
        error=None,
        at=time.time(),
    )


def test_a_downloaded_result_plays_from_the_local_copy_not_klings_expired_url(
    real_ledger: Ledger, page: Page, tmp_path: Path
) -> None:
    expired = "http://127.0.0.1:9/expired"  # nothing listens there: Kling deleted the files
    image_task = add_task(real_ledger, 1, product="image-generation", model="kling-v2")
    video_task = add_task(real_ledger, 2, prompt="a paper boat on a puddle")
    picture = tmp_path / "downloads" / "b1-1_0.svg"
    picture.parent.mkdir()
    picture.write_bytes((STATIC_DIR / "favicon.svg").read_bytes())
    clip = tmp_path / "downloads" / "b1-2_0.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(512))
    observe(real_ledger, image_task, LocalStatus.SUCCEED, result={"images": [{"url": expired}]})
    observe(real_ledger, video_task, LocalStatus.SUCCEED, result={"videos": [{"url": expired}]})
    downloaded(real_ledger, image_task, picture, expired)
    downloaded(real_ledger, video_task, clip, expired)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/task/{image_task}")
        image = page.locator(".media img")
        expect(image).to_have_attribute("src", f"/api/tasks/{image_task}/files/0", timeout=WAIT_MS)
        # The browser really decoded the file klingwatch serves from its downloads.
        page.wait_for_function(
            "document.querySelector('.media img').naturalWidth > 0", timeout=WAIT_MS
        )
        expect(page.locator(".media figcaption")).to_contain_text("downloaded copy")
        expect(page.locator(".media figcaption a")).to_have_attribute("href", expired)

        page.goto(f"{base}/task/{video_task}")
        video = page.locator(".media video")
        expect(video).to_have_attribute("src", f"/api/tasks/{video_task}/files/0", timeout=WAIT_MS)
        expect(page.locator("#task")).to_contain_text(str(clip))
    assert f"{base}/api/tasks/{image_task}/files/0" in asked
    assert f"{base}/api/tasks/{video_task}/files/0" in asked
    assert not [url for url in asked if url.startswith(expired)]


def test_the_api_docs_work_without_a_network(real_ledger: Ledger, page: Page) -> None:
    blocked: list[str] = []
    with ThreadedServer(real_ledger) as base:

        def only_this_server(route: Route) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:  # what a machine without internet would do to a CDN request
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.goto(f"{base}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "klingwatch", timeout=WAIT_MS
        )
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        expect(page.locator(".swagger-ui")).to_contain_text("/api/tasks/{ref}/retry")
        # The operations open and show their parameters, all from files served here.
        page.locator(".opblock-summary-path", has_text="/api/tasks/{ref}/retry").click()
        expect(page.locator(".opblock.is-open")).to_contain_text("force", timeout=WAIT_MS)
        page.wait_for_load_state("networkidle")
    assert blocked == []


def test_failed_and_rejected_shows_the_true_count_and_links_to_all(
    real_ledger: Ledger, page: Page
) -> None:
    for n in range(1, 15):
        refused = n % 5 == 0  # Kling refused the create: rejected, never submitted
        local = add_task(real_ledger, n, prompt=f"a storm at sea, take {n}", submitted=not refused)
        if refused:
            real_ledger.apply(
                Observation(
                    status=LocalStatus.REJECTED,
                    source=Source.CREATE,
                    at=time.time(),
                    local_id=local,
                    status_msg="content policy",
                )
            )
        else:
            observe(real_ledger, local, LocalStatus.FAILED, status_msg=f"reason {n}")
    add_task(real_ledger, 99, prompt="still going")
    with ThreadedServer(real_ledger) as base:
        page.goto(f"{base}/")
        expect(page.locator("#failed-count")).to_have_text("14", timeout=WAIT_MS)
        expect(page.locator("#failed li")).to_have_count(10)
        more = page.locator("#failed-all")
        expect(more).to_have_text("All 14 failed and rejected tasks →")
        more.click()
        expect(page).to_have_url(f"{base}/tasks?status=failed%2Crejected", timeout=WAIT_MS)
        expect(page.locator("#task-rows tr")).to_have_count(14, timeout=WAIT_MS)
        expect(page.locator("#tasks-summary")).to_have_text("1–14 of 14")
        expect(page.locator("#task-rows")).to_contain_text("rejected")
        expect(page.locator("#task-rows")).not_to_contain_text("still going")
        expect(page.locator("select[name=status]")).to_have_value("failed,rejected")


@contextlib.contextmanager
def video_server() -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 answering every GET with the sandbox's sample video (as
    Kling's CDN would); its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = sample_mp4()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _capped_batch(ledger: Ledger, media: str) -> list[int]:
    """Batch "capped", cap 3 units, six 1-unit tasks: three sent (one succeeded with 1.5 units,
    two failed for the same reason), three held by the cap."""
    ledger.ensure_batch("capped")
    ledger.set_cap("capped", Decimal(3))
    ids = ledger.add_tasks(
        "capped",
        [
            NewTask(
                "text2video",
                {"prompt": f"a red balloon over a city, take {i}"},
                f"capped-{i}",
                model="kling-v1",
                mode="std",
                units_estimated="1",
            )
            for i in range(6)
        ],
    ).added
    assert ledger.mark_sending(ids, time.time()).held == ids[3:]
    observe(
        ledger,
        ids[0],
        LocalStatus.SUCCEED,
        units="1.5",
        result={"videos": [{"id": "v1", "url": f"{media}/v1.mp4"}]},
    )
    for local in ids[1:3]:
        observe(ledger, local, LocalStatus.FAILED, status_msg="Image pixel is invalid")
    return ids


def test_the_batch_page_shows_spend_cap_failures_and_sorts_its_tasks(
    real_ledger: Ledger, page: Page, tmp_path: Path
) -> None:
    with (
        video_server() as media,
        ThreadedServer(real_ledger, download_dir=str(tmp_path / "dl")) as base,
    ):
        ids = _capped_batch(real_ledger, media)
        page.goto(f"{base}/")
        overview = page.locator('[data-batch="capped"]')
        expect(overview.locator(".cap")).to_have_text("cap 3 · 3 held", timeout=WAIT_MS)
        expect(page.locator("#spend-table")).to_contain_text("1.5", timeout=WAIT_MS)
        overview.locator(".batch-name").click()

        expect(page).to_have_url(f"{base}/batches/capped")
        head = page.locator("#batch-head")
        fact = lambda name: head.locator(f'[data-fact="{name}"] dd')  # noqa: E731
        expect(fact("progress")).to_have_text("3 / 6 done · 50%", timeout=WAIT_MS)
        expect(fact("estimated")).to_have_text("≈6")
        expect(fact("spent")).to_have_text("1.5")
        expect(fact("cap")).to_have_text("3 units (3 sent)")
        expect(page.locator("#hold-reason")).to_contain_text(
            "3 task(s) held: budget cap 3 units, 3 sent"
        )
        reason = page.locator('#failure-reasons [data-reason="Image pixel is invalid"]')
        expect(reason.locator("b")).to_have_text("2")

        # Sorting is the page's own: by id both ways, then by status.
        rows = page.locator("#batch-tasks tbody tr")
        expect(rows).to_have_count(6)
        expect(rows.first).to_have_attribute("data-task", str(ids[0]))
        page.locator('#batch-tasks th[data-sort="id"]').click()
        expect(rows.first).to_have_attribute("data-task", str(ids[5]))
        expect(page.locator('#batch-tasks th[data-sort="id"]')).to_have_attribute(
            "aria-sort", "descending"
        )
        page.locator('#batch-tasks th[data-sort="status"]').click()
        expect(rows.first.locator(".badge")).to_have_text("queued")
        expect(rows.first).to_contain_text("held: budget cap 3 units, 3 sent")
        expect(rows.last.locator(".badge")).to_have_text("failed")

        # The page follows the ledger live.
        observe(real_ledger, ids[3], LocalStatus.REJECTED, status_msg="content policy")
        expect(fact("progress")).to_have_text("4 / 6 done · 67%", timeout=WAIT_MS)

        # Retry all failed asks first (it spends units), then queues them again.
        messages: list[str] = []
        page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
        page.locator("#retry-failed").click()
        expect(page.locator("#batch-note")).to_have_text("3 task(s) queued again", timeout=WAIT_MS)
        assert "Kling bills them again" in messages[0]
        expect(rows).to_have_count(9)  # the three new tasks are listed at once
        # The rejected task is final now, so it no longer counts as held.
        expect(page.locator("#hold-reason")).to_contain_text("2 task(s) held")
        retried = [t for t in real_ledger.tasks(batch="capped") if t.retry_of is not None]
        assert sorted(t.retry_of for t in retried if t.retry_of) == sorted([*ids[1:4]])

        # Download all collects the results into the batch's folder, in the background.
        page.locator("#download-all").click()
        expect(page.locator("#batch-note")).to_contain_text(
            f"downloading 1 succeeded task(s) into {tmp_path / 'dl'}", timeout=WAIT_MS
        )
        deadline = time.monotonic() + 20
        while not real_ledger.downloads(ids[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        [record] = real_ledger.downloads(ids[0])
        assert record.state == "complete", record.error
        assert record.path is not None
        assert Path(record.path).read_bytes() == sample_mp4()
        assert Path(record.path).is_relative_to(tmp_path / "dl")
        page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)
        page.goto("about:blank")  # leave before the servers stop, so nothing reconnects
