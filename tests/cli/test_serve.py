"""``klingwatch serve`` as a person runs it: a real process, a real sandbox, callbacks, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from klingwatch.clock import RealClock
from klingwatch.sandbox import SandboxConfig, TimingSpec, serve_in_thread
from klingwatch.store import Ledger, NewTask

CLI = [sys.executable, "-c", "from klingwatch.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout: float = 60.0) -> None:
    """Poll ``check()`` until true (readiness of another process, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_serve(
    port: int, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``klingwatch serve --port PORT ARGS`` in its own process, once it answers /healthz."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, "the server")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    return proc


@pytest.mark.slow
def test_serve_runs_the_engine_takes_callbacks_and_stops_cleanly(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(db, clock=RealClock()) as ledger:
        ledger.add_tasks(
            "demo",
            [
                NewTask(
                    product="text2video",
                    request={
                        "prompt": f"a kite over the sea, take {n}",
                        "model_name": "kling-v2-6",
                    },
                    external_task_id=f"demo-{n}",
                    model="kling-v2-6",
                )
                for n in range(1, 7)
            ],
        )
    config = SandboxConfig(
        time_scale=0.02,
        failure_rate=0.0,
        straggler_rate=0.0,
        durations={"text2video": TimingSpec(queue_p50=5, queue_p95=10, run_p50=40, run_p95=60)},
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_in_thread(config) as kling:
        env = {
            **os.environ,
            "KLING_ACCESS_KEY": "ak",
            "KLING_SECRET_KEY": "sk",
            "KLING_API_BASE": kling,
            "KLINGWATCH_TIME_SCALE": "0.02",
        }
        proc = start_serve(port, tmp_path, "--public-url", base, "--db", db, env=env)
        try:

            def all_succeeded() -> bool:
                stats = httpx.get(f"{base}/api/stats").json()
                return bool(stats["counts"]["succeed"] == 6)

            wait_for(all_succeeded, "every task to succeed")
            metrics = httpx.get(f"{base}/metrics").text
            truth = httpx.get(f"{kling}/sandbox/callbacks").json()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "klingwatch: stopped" in out
    assert f"callbacks at {base}/callbacks/kling/" in out
    # The tasks carried the callback URL and Kling's callbacks were taken.
    assert 'klingwatch_callback_deliveries_total{outcome="applied"}' in metrics
    sent_to = {entry["url"] for entry in truth["log"]}
    assert len(sent_to) == 1
    assert sent_to.pop().startswith(f"{base}/callbacks/kling/")
    assert truth["counts"]["delivered"] >= 6


def test_serve_refuses_an_open_api_beyond_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLINGWATCH_API_TOKEN")}
    done = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path / 'l.db'}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert done.stderr.startswith("error: refusing to serve on 0.0.0.0 without an API token")
    assert "KLINGWATCH_API_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_answers_only_its_own_host_names(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = f"sqlite:///{tmp_path / 'l.db'}"
    proc = start_serve(port, tmp_path, "--allow-host", "kw.lan", "--db", db)
    try:
        named = httpx.get(f"{base}/api/batches", headers={"Host": "kw.lan:8000"})
        rebound = httpx.get(f"{base}/api/batches", headers={"Host": "evil.example"})
        cross_site = httpx.post(
            f"{base}/api/resume", headers={"Origin": "https://evil.example"}, json={}
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert named.status_code == 200
    assert rebound.status_code == 400
    assert rebound.json()["detail"] == (
        "unknown Host header 'evil.example': this server answers to 127.0.0.1, ::1, kw.lan, "
        "localhost (serve --allow-host NAME adds a name)"
    )
    assert cross_site.status_code == 403
