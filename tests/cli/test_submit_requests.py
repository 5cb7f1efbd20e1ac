"""``klingwatch submit`` and the request rules: warnings with FILE:LINE, ``--strict``, local images.

Real batch files in a temporary folder, the console-script entry point, and for the local image a
sandbox on a real loopback socket that receives the request.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from test_submit import API_KEY, _sandbox, cli, env  # noqa: F401  (env is a fixture)

from klingwatch.clock import ManualClock
from klingwatch.sandbox import create_app, serve_in_thread
from klingwatch.sandbox.media import png
from klingwatch.store import Ledger

TYPOS = (
    '{"prompt": "a fox", "durration": 5}\n'
    '{"prompt": "a cat", "negative_promt": "blur", "model_name": "kling-v2-6-pro"}\n'
    '{"prompt": "an owl"}\n'
)


def test_dry_run_shows_each_warning_with_its_line_and_still_plans_every_line(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("ads.jsonl").write_text(TYPOS)

    code, out, err = cli(monkeypatch, capsys, "submit", "ads.jsonl", "--dry-run")

    assert code == 0, err
    assert err.splitlines() == [
        "ads.jsonl:1: warning: text2video: durration: is not a field Kling documents here; did "
        "you mean 'duration'? (sent as given)",
        "ads.jsonl:2: warning: text2video: negative_promt: is not a field Kling documents here; "
        "did you mean 'negative_prompt'? (sent as given)",
        "ads.jsonl:2: warning: text2video: model_name: 'kling-v2-6-pro' is not a text2video "
        "model klingwatch knows; did you mean 'kling-v2-6'? sent as given (Kling refuses a model "
        "it does not have)",
    ]
    assert "3 tasks" in out
    code, out, err = cli(monkeypatch, capsys, "submit", "ads.jsonl", "--dry-run", "--json")
    plan = json.loads(out)
    assert len(plan["tasks"]) == 3
    assert [w.split(": warning: ")[0] for w in plan["warnings"]] == ["ads.jsonl:1"] + [
        "ads.jsonl:2"
    ] * 2
    assert not env.exists()


def test_strict_refuses_a_file_with_warnings_and_queues_nothing(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("ads.jsonl").write_text(TYPOS)
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    monkeypatch.setenv("KLING_API_BASE", "http://127.0.0.1:9")  # nothing listens

    code, out, err = cli(monkeypatch, capsys, "submit", "ads.jsonl", "--strict")

    assert code == 3
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == (
        "error: 3 warnings in ads.jsonl and --strict is set; nothing was queued (fix them, or "
        "drop --strict to send as written):"
    )
    assert [line.split(": warning: ")[0] for line in lines[1:]] == ["ads.jsonl:1"] + [
        "ads.jsonl:2"
    ] * 2
    assert not env.exists()

    code, out, err = cli(monkeypatch, capsys, "submit", "ads.jsonl", "--strict", "--dry-run")
    assert code == 3
    assert "nothing was queued" in err


def test_strict_lets_a_clean_file_through(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("ok.jsonl").write_text('{"prompt": "a fox", "duration": 5}\n')

    code, out, err = cli(monkeypatch, capsys, "submit", "ok.jsonl", "--strict", "--dry-run")

    assert (code, err) == (0, "")
    assert "1 tasks" in out


def test_a_missing_local_image_is_one_line_and_nothing_is_queued(
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("pics.jsonl").write_text('{"product": "image2video", "image": "./cat.png"}\n')

    code, _out, err = cli(monkeypatch, capsys, "submit", "pics.jsonl", "--dry-run")

    assert code == 3
    assert err.splitlines()[1] == (
        f"pics.jsonl:1: image2video: image: ./cat.png: no such file; check the path (paths "
        f"are read from {Path.cwd()})"
    )


@pytest.mark.slow
def test_image_to_video_from_a_local_image_sends_its_raw_base64(
    env: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    picture = png(320, 320, (200, 120, 40))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "city.png").write_bytes(picture)
    (tmp_path / "in" / "b.jsonl").write_text(
        '{"product": "image2video", "image": "city.png", "prompt": "the lights come on"}\n'
        '{"product": "image-to-video/kling-2.6", "contents": [{"type": "prompt", "text": "x"}, '
        '{"type": "first_frame", "url": "city.png"}], "settings": {"duration": 5}}\n'
    )
    app = create_app(_sandbox())
    with serve_in_thread(app=app) as url:
        monkeypatch.setenv("KLING_API_KEY", API_KEY)
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.01")
        code, out, err = cli(monkeypatch, capsys, "submit", "in/b.jsonl", "--wait", "--json")
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["counts"] == {"succeed": 2}

    raw = base64.b64encode(picture).decode()
    sent = {t.product.name: t.request for t in app.state.sandbox.state.tasks.values()}
    assert sent["image2video"]["image"] == raw
    assert sent["image-to-video/kling-2.6"]["contents"][1] == {"type": "first_frame", "url": raw}
    with Ledger.open(f"sqlite:///{env}", clock=ManualClock()) as ledger:
        assert {t.request.get("image") for t in ledger.tasks()} == {raw, None}
