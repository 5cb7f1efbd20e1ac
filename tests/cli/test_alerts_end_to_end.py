"""Alerts as a user gets them: ``klingwatch submit --wait`` (a real process) against a sandbox on a
real socket whose creates answer a failure burst, then 1102 (pack exhausted), with KLINGWATCH_NOTIFY
pointed at a real receiver. After ``resume`` and a second run, the receiver holds one message per
incident: the pause, the burst, the batch's summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_process import console_script, sandbox_env

from klingwatch.kling.products import Family
from klingwatch.sandbox import Answer, SandboxConfig, ScriptConfig, TimingSpec, serve_in_thread
from receiver import receiver

pytestmark = pytest.mark.slow

SCALE = 0.01
API_KEY = "alerts-e2e-key"
PAUSED = (
    "klingwatch: Kling paused submissions (code 1102: the resource pack is exhausted or expired)"
)


def test_a_failure_burst_and_a_paused_pack_reach_the_receiver_once_each(tmp_path: Path) -> None:
    burst = Answer.served(run=10, fail="content moderation").repeated(8)
    script = ScriptConfig(
        creates={"*": [burst, Answer.served().repeated(4), Answer.error(1102, "pack exhausted")]}
    )
    config = SandboxConfig(
        api_keys=(API_KEY,),
        slots={Family.VIDEO: 20},
        time_scale=SCALE,
        failure_rate=0.0,
        straggler_rate=0.0,
        seed=9,
        durations={"video": TimingSpec(queue_p50=2, queue_p95=4, run_p50=20, run_p95=30)},
        script=script,
    )
    batch_file = tmp_path / "burst.txt"
    batch_file.write_text("".join(f"a red kite over the dunes, take {i}\n" for i in range(20)))
    with receiver() as inbox, serve_in_thread(config) as url:
        env = sandbox_env(
            url,
            tmp_path / "ledger.db",
            api_key=API_KEY,
            scale=SCALE,
            KLINGWATCH_NOTIFY=inbox.apprise_url(),
            KLINGWATCH_PUBLIC_URL="https://kw.example",
            KLINGWATCH_ALERT_FAILURE_MIN_FINISHED="5",
            KLINGWATCH_SLOTS_VIDEO="20",
        )

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*console_script(), *args],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )

        paused = run("submit", str(batch_file), "--batch", "kites", "--wait")
        assert paused.returncode == 3, paused.stderr  # stopped: Kling paused sending
        assert [m["title"] for m in inbox.messages()] == [PAUSED]
        assert run("resume").returncode == 0
        done = run("submit", str(batch_file), "--batch", "kites", "--wait")
        assert done.returncode == 0, done.stderr
        messages = inbox.messages()

    titles = [m["title"] for m in messages]
    assert len(titles) == 3, titles
    assert titles.count(PAUSED) == 1
    assert titles[-1] == "klingwatch: batch kites finished"
    [burst] = [t for t in titles if t.endswith("% of batch kites failed")]
    assert int(burst.split()[1].rstrip("%")) > 20
    summary = next(m["message"] for m in messages if m["title"].endswith("finished"))
    assert summary.startswith("Batch kites finished: 20 tasks (12 succeed, 8 failed)")
    assert "https://kw.example/batches/kites" in summary
