"""``klingwatch submit``, ``retry`` and ``resume`` as a user runs them."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from klingwatch.cli import main
from klingwatch.clock import ManualClock
from klingwatch.kling.products import Family
from klingwatch.monitor import gates
from klingwatch.sandbox import SandboxConfig, TimingSpec, serve_in_thread
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

API_KEY = "submit-cli-key"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory with a ledger URL and wide output; returns the ledger path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "ledger.db"
    monkeypatch.setenv("KLINGWATCH_DB", f"sqlite:///{db}")
    return db


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``klingwatch ARGS`` through the console-script entry point."""
    monkeypatch.setattr(sys, "argv", ["klingwatch", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# -- validation and dry runs: nothing is written --------------------------------------------------
def test_bad_lines_are_all_reported_and_nothing_is_queued(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("ads.jsonl").write_text(
        '{"prompt": "a fox"}\n{"prompt": "a cat", "duration": 7}\n{oops\n{"prompt": "ok"}\n'
    )
    code, out, err = cli(monkeypatch, capsys, "submit", "ads.jsonl")
    assert code == 3
    assert out == ""
    first, bad_duration, bad_json = err.splitlines()
    assert first == (
        "error: 2 invalid lines in ads.jsonl; nothing was queued (fix them, or pass "
        "--skip-invalid to queue only the valid lines):"
    )
    assert bad_duration.startswith("ads.jsonl:2: text2video: duration: ")  # the product's words
    assert bad_duration.endswith("got 7")
    assert bad_json == (
        "ads.jsonl:3: not valid JSON (Expecting property name enclosed in double quotes at "
        'column 2); each line must be one JSON object such as {"prompt": "a red fox running"}'
    )
    assert not env.exists()


def test_dry_run_shows_the_plan_slots_and_an_estimate_and_writes_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("mix.jsonl").write_text(
        '{"prompt": "a fox", "mode": "pro", "duration": 10}\n'
        '{"product": "image-generation", "prompt": "a cat", "n": 4}\n'
    )
    code, out, _ = cli(monkeypatch, capsys, "submit", "mix.jsonl", "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["batch"] == "mix"
    assert plan["slots_needed"] == {"video": 1, "image": 4}
    # kling-v1 (Kling's default model) pro: about 3.5 units per 5 s; images about 0.25 each
    assert [t["estimated_units"] for t in plan["tasks"]] == ["7", "1"]
    assert plan["estimated_units"] == "8"
    assert "estimate" in plan["estimate_note"]
    assert not env.exists()

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(monkeypatch, capsys, "submit", "mix.jsonl", "--dry-run")
    assert code == 0
    assert "nothing sent, nothing written" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "text2video kling-v1 pro 10s" in out
    words = " ".join(out.split())
    assert "slots needed to run them all at once: video 1, image 4" in words
    assert "≈ 8 units: an estimate" in words
    assert not env.exists()
    code, out, _ = cli(monkeypatch, capsys, "submit", "mix.jsonl", "--dry-run", "--wide")
    assert code == 0
    assert [t["external_task_id"] for t in plan["tasks"]] == [
        word for line in out.splitlines() for word in line.split() if word.startswith("kw-mix-")
    ]


def test_missing_credentials_are_one_line_and_nothing_is_written(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("p.txt").write_text("a fox\n")
    code, _out, err = cli(monkeypatch, capsys, "submit", "p.txt")
    assert code == 3
    assert err.startswith("error: no Kling credentials")
    assert len(err.splitlines()) == 1
    assert not env.exists()


def test_skip_invalid_queues_the_valid_lines_and_names_the_skipped_ones(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    monkeypatch.setenv("KLING_API_BASE", "http://127.0.0.1:9")  # nothing listens: nothing sent
    Path("p.jsonl").write_text('{"prompt": "a fox"}\n{"mode": "pro"}\n')
    code, out, err = cli(monkeypatch, capsys, "submit", "p.jsonl", "--skip-invalid")
    assert code == 0, err
    assert "skipped: p.jsonl:2: text2video: prompt: " in err
    assert "batch 'p': 1 queued" in out
    with Ledger.open(f"sqlite:///{env}", clock=ManualClock()) as ledger:
        [task] = ledger.tasks()
    assert task.status is LocalStatus.QUEUED  # the connection was refused: not created
    assert task.source_line == "p.jsonl:1"


# -- against a sandbox on a real socket ----------------------------------------------------------
def _sandbox(**kw: object) -> SandboxConfig:
    return SandboxConfig(
        api_keys=(API_KEY,),
        time_scale=0.01,
        straggler_rate=0.0,
        failure_rate=0.0,
        durations={"video": TimingSpec(queue_p50=2, queue_p95=5, run_p50=20, run_p95=40)},
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_submit_sends_what_the_slots_allow_then_points_to_watch_and_a_rerun_adds_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("ten.txt").write_text("".join(f"a fox, take {i}\n" for i in range(10)))
    with serve_in_thread(_sandbox(slots={Family.VIDEO: 3})) as url:
        monkeypatch.setenv("KLING_API_KEY", API_KEY)
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.01")
        monkeypatch.setenv("KLINGWATCH_SLOTS_VIDEO", "3")
        code, out, err = cli(monkeypatch, capsys, "submit", "ten.txt", "--batch", "foxes")
        assert code == 0, err
        assert "batch 'foxes': 10 queued" in out
        assert "3 sent now; run `klingwatch watch` to send the rest" in out
        code, out, err = cli(monkeypatch, capsys, "submit", "ten.txt", "--batch", "foxes")
        assert code == 0, err
        assert "batch 'foxes': 0 queued, 10 already in the ledger (not added again)" in out
        code, out, err = cli(
            monkeypatch, capsys, "submit", "ten.txt", "--batch", "foxes", "--wait", "--json"
        )
        assert code == 0, err
    *changes, summary = [json.loads(line) for line in out.splitlines()]
    assert summary["counts"] == {"succeed": 10}
    assert {c["to"] for c in changes} >= {"submitted", "processing", "succeed"}


@pytest.mark.slow
def test_submit_wait_stops_and_says_so_when_the_pack_runs_out(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("five.txt").write_text("".join(f"a fox, take {i}\n" for i in range(5)))
    # 1.5 units a task: two fit, the third create answers 1102.
    with serve_in_thread(_sandbox(unit_budget=Decimal(3))) as url:
        monkeypatch.setenv("KLING_API_KEY", API_KEY)
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.01")
        code, out, err = cli(monkeypatch, capsys, "submit", "five.txt", "--wait")
    assert code == 3, err  # --wait could not finish the batch: scripts can tell
    assert "submissions are paused" in out
    assert "klingwatch resume" in out
    with Ledger.open(f"sqlite:///{env}", clock=ManualClock()) as ledger:
        counts = ledger.counts(batch="five")
        assert counts[LocalStatus.QUEUED] == 3
        assert gates.pause_state(ledger) is not None

    code, out, err = cli(monkeypatch, capsys, "status")
    assert code == 0, err
    assert "alert: submissions paused (code 1102)" in out
    code, out, err = cli(monkeypatch, capsys, "resume")
    assert code == 0, err
    assert "resumed: submissions had been paused since" in out
    assert "(code 1102)" in out
    assert "3 tasks are queued" in out
    code, out, _ = cli(monkeypatch, capsys, "resume")
    assert "submissions were not paused" in out
    code, out, _ = cli(monkeypatch, capsys, "status", "--json")
    assert json.loads(out)["alerts"] == []


# -- retry -----------------------------------------------------------------------------------------
def _finished_ledger(db: Path) -> None:
    clock = ManualClock()
    with Ledger.open(f"sqlite:///{db}", clock=clock) as ledger:
        ledger.ensure_batch("b1")
        ids = ledger.add_tasks(
            "b1",
            [NewTask("text2video", {"prompt": f"p{i}"}, f"kw-b1-{i}") for i in range(4)],
        ).added
        outcomes = [
            (LocalStatus.SUCCEED, None),
            (LocalStatus.FAILED, "Failure to pass the risk control system"),
            (LocalStatus.REJECTED, "content policy"),
            (LocalStatus.PROCESSING, None),
        ]
        for local_id, (status, msg) in zip(ids, outcomes, strict=True):
            source = Source.CREATE if status is LocalStatus.REJECTED else Source.GET
            ledger.apply(
                Observation(
                    status=status,
                    source=source,
                    at=clock.time(),
                    local_id=local_id,
                    task_id=None if source is Source.CREATE else f"k{local_id}",
                    status_msg=msg,
                )
            )


def test_retry_queues_new_linked_tasks_once_and_show_prints_the_lineage(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _finished_ledger(env)
    code, out, err = cli(monkeypatch, capsys, "retry", "--batch", "b1", "--failed", "--rejected")
    assert code == 0, err
    assert "2 tasks queued again" in out
    assert "kw-b1-1-r1" in out
    assert "kw-b1-2-r1" in out
    code, out, _ = cli(monkeypatch, capsys, "retry", "--batch", "b1", "--failed", "--json")
    assert json.loads(out) == {"retried": [], "skipped_already_retried": ["kw-b1-1"]}

    code, out, _ = cli(monkeypatch, capsys, "show", "kw-b1-1-r1")
    assert code == 0
    assert "retries #2 kw-b1-1 (failed: Failure to pass the risk control system)" in out
    code, out, _ = cli(monkeypatch, capsys, "show", "kw-b1-1", "--json")
    assert json.loads(out)["lineage"] == ["retried by #5 kw-b1-1-r1 (queued)"]


def test_retry_by_id_of_a_succeeded_task_and_refusals(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _finished_ledger(env)
    # A succeeded task would be paid for again: refused, nothing queued, unless --force.
    code, out, err = cli(monkeypatch, capsys, "retry", "--ids", "kw-b1-0,kw-b1-1")
    assert (code, out) == (3, "")
    assert err == (
        "error: task 'kw-b1-0' succeeded: retrying it queues a new task that Kling bills "
        "again; add --force to retry it anyway\n"
    )
    with Ledger.open(f"sqlite:///{env}", clock=ManualClock()) as ledger:
        assert len(ledger.tasks()) == 4
    code, out, err = cli(monkeypatch, capsys, "retry", "--ids", "kw-b1-0", "--force", "--json")
    assert code == 0, err
    [made] = json.loads(out)["retried"]
    assert made["external_task_id"] == "kw-b1-0-r1"
    assert made["from_status"] == "succeed"

    code, _, err = cli(monkeypatch, capsys, "retry", "--ids", "kw-b1-3")
    assert (code, err) == (
        3,
        "error: task 'kw-b1-3' is processing; only a finished task can be retried\n",
    )
    code, _, err = cli(monkeypatch, capsys, "retry", "--batch", "b1")
    assert code == 3
    assert "say what to retry: --failed, --rejected, or --ids" in err
    code, _, err = cli(monkeypatch, capsys, "retry", "--batch", "nope", "--failed")
    assert err == "error: no batch named 'nope' in the ledger (see `klingwatch status`)\n"
    code, _, err = cli(monkeypatch, capsys, "retry", "--ids", "9999")
    assert "no task '9999' in the ledger" in err


@pytest.mark.slow
def test_watch_sends_what_submit_left_queued(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("six.txt").write_text("".join(f"a fox, take {i}\n" for i in range(6)))
    with serve_in_thread(_sandbox(slots={Family.VIDEO: 2})) as url:
        monkeypatch.setenv("KLING_API_KEY", API_KEY)
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.01")
        monkeypatch.setenv("KLINGWATCH_SLOTS_VIDEO", "2")
        code, out, err = cli(monkeypatch, capsys, "submit", "six.txt")
        assert code == 0, err
        assert "2 sent now" in out
        code, out, err = cli(monkeypatch, capsys, "watch", "--until-done", "--json")
        assert code == 0, err
    with Ledger.open(f"sqlite:///{env}", clock=ManualClock()) as ledger:
        assert ledger.counts(batch="six")[LocalStatus.SUCCEED] == 6
