"""``klingwatch notify``: a test message to every target, per-target verdicts, clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import klingwatch, one_line
from standardwebhooks import Webhook

from receiver import Receiver, receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {"KLINGWATCH_DB": f"sqlite:///{tmp_path / 'k.db'}", **settings}


def test_notify_test_sends_to_every_target_and_says_per_target_whether_it_went(
    tmp_path: Path, inbox: Receiver
) -> None:
    urls = f"{inbox.apprise_url('/one')}, {inbox.apprise_url('/two')}"
    done = klingwatch(
        "notify",
        "--test",
        cwd=tmp_path,
        env=env(
            tmp_path,
            KLINGWATCH_NOTIFY=urls,
            KLINGWATCH_EVENTS_URL=f"{inbox.base}/events",
            KLINGWATCH_EVENTS_SECRET=SECRET,
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"alerts: json://127.0.0.1:{inbox.port}/one: sent",
        f"alerts: json://127.0.0.1:{inbox.port}/two: sent",
        f"events: {inbox.base}/events: sent",
    ]
    assert [m["title"] for m in inbox.messages("/one")] == ["klingwatch: test message"]
    assert [m["title"] for m in inbox.messages("/two")] == ["klingwatch: test message"]
    [event] = inbox.got("/events")
    assert Webhook(SECRET).verify(event.body, event.headers)["type"] == "klingwatch.test"


def test_a_target_that_is_down_is_named_and_the_exit_code_says_so(
    tmp_path: Path, inbox: Receiver
) -> None:
    urls = f"{inbox.apprise_url('/up')},json://127.0.0.1:9/down"
    done = klingwatch("notify", "--test", cwd=tmp_path, env=env(tmp_path, KLINGWATCH_NOTIFY=urls))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"alerts: json://127.0.0.1:{inbox.port}/up: sent",
        "alerts: json://127.0.0.1:9/down: NOT sent: not delivered",
    ]
    assert len(inbox.messages("/up")) == 1


def test_without_targets_it_says_what_to_set(tmp_path: Path) -> None:
    done = klingwatch("notify", "--test", cwd=tmp_path, env=env(tmp_path))
    assert done.returncode == 3
    line = one_line(done)
    assert line.startswith("error: nothing to notify: set KLINGWATCH_NOTIFY")
    assert "KLINGWATCH_EVENTS_URL" in line


def test_a_url_apprise_does_not_know_is_one_line(tmp_path: Path) -> None:
    done = klingwatch(
        "notify", "--test", cwd=tmp_path, env=env(tmp_path, KLINGWATCH_NOTIFY="slak://typo")
    )
    assert done.returncode == 3
    assert one_line(done).startswith("error: KLINGWATCH_NOTIFY: 'slak' is not an apprise URL")


def test_an_events_url_that_is_no_http_url_is_one_line(tmp_path: Path) -> None:
    done = klingwatch(
        "notify", "--test", cwd=tmp_path, env=env(tmp_path, KLINGWATCH_EVENTS_URL="ftp://x/y")
    )
    assert done.returncode == 3
    assert one_line(done).startswith("error: KLINGWATCH_EVENTS_URL 'ftp://x/y' must be an http")


def test_the_generated_events_secret_is_kept_and_shown(tmp_path: Path) -> None:
    first = klingwatch("notify", "--show-secret", cwd=tmp_path, env=env(tmp_path))
    again = klingwatch("notify", "--show-secret", cwd=tmp_path, env=env(tmp_path))
    assert first.returncode == 0, first.stderr
    secret = first.stdout.strip()
    assert secret.startswith("whsec_")
    assert again.stdout.strip() == secret
    Webhook(secret)  # a secret the library takes


def test_without_options_it_shows_what_is_configured(tmp_path: Path, inbox: Receiver) -> None:
    done = klingwatch(
        "notify", cwd=tmp_path, env=env(tmp_path, KLINGWATCH_NOTIFY=inbox.apprise_url())
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"alerts: json://127.0.0.1:{inbox.port}/alerts",
        "events: none (set KLINGWATCH_EVENTS_URL)",
    ]
    assert inbox.got() == []  # nothing sent without --test
