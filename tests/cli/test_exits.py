"""Every user mistake is one line on stderr and an exit code of the README's table.

Real subprocesses of the console script, as a user runs them: what they see is stderr and
``$?``, so that is what is asserted.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import klingwatch, one_line

from klingwatch.cli.exits import ExitCode, exit_table_markdown

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://kw.db", "a SQLite URL has no host: write sqlite:///kw.db (three slashes)"),
        ("kw.db", "not a SQLAlchemy URL (a SQLite file is sqlite:///kw.db)"),
        ("sqlite:///no/such/folder/kw.db", "no/such/folder of the ledger"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
    ],
)
def test_a_bad_ledger_url_is_one_line_and_exit_3(tmp_path: Path, url: str, says: str) -> None:
    done = klingwatch("status", cwd=tmp_path, env={"KLINGWATCH_DB": url})
    assert done.returncode == ExitCode.ERROR
    line = one_line(done)
    assert line.startswith("error: ")
    assert says in line
    assert list(tmp_path.iterdir()) == []  # nothing made on the way


def test_a_relative_ledger_is_the_same_file_from_anywhere(tmp_path: Path) -> None:
    config = klingwatch("config", "--json", cwd=tmp_path, env={"KLINGWATCH_DB": "sqlite:///kw.db"})
    assert config.returncode == 0, config.stderr
    assert f'"value": "sqlite:///{tmp_path / "kw.db"}"' in config.stdout


def test_a_malformed_toml_is_one_line_naming_where(tmp_path: Path) -> None:
    (tmp_path / "klingwatch.toml").write_text('slots_video = 5\napi_base = "https://x\n')
    done = klingwatch("status", cwd=tmp_path)
    assert done.returncode == ExitCode.ERROR
    line = one_line(done)
    assert line.startswith("error: klingwatch.toml is not valid TOML: ")
    assert "(at line 2, column 22)" in line


def test_unknown_toml_keys_are_warned_about_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "klingwatch.toml").write_text('slots_vidoe = 5\nfavourite_colour = "teal"\n')
    done = klingwatch("status", "--json", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "warning: klingwatch.toml: unknown setting 'slots_vidoe' (did you mean 'slots_video'?); "
        "it is ignored",
        "warning: klingwatch.toml: unknown setting 'favourite_colour'; it is ignored",
    ]
    assert '"total": 0' in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tasks", "--colour"], "error: No such option: --colour (see klingwatch tasks --help)"),
        (["tsks"], "error: No such command 'tsks'. Did you mean 'tasks'? (see klingwatch --help)"),
        (["show"], "error: Missing argument 'REF'. (see klingwatch show --help)"),
        (
            ["tasks", "--limit", "ten"],
            "error: Invalid value for '--limit' / '-n': Input should be a valid integer, unable "
            "to parse string as an integer (see klingwatch tasks --help)",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    done = klingwatch(*args, cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE
    assert one_line(done) == says
    assert done.stdout == ""


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(8)
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "sandbox"])
def test_a_port_in_use_is_one_line_and_exit_3(tmp_path: Path, busy_port: int, command: str) -> None:
    done = klingwatch(command, "--port", str(busy_port), cwd=tmp_path)
    assert done.returncode == ExitCode.ERROR
    assert one_line(done) == (
        f"error: port {busy_port} on 127.0.0.1 is already in use (another klingwatch?); stop "
        "that process or choose another port with --port"
    )
    assert done.stdout == ""  # no banner promising an address that was never served


def test_the_exit_codes_are_documented_once_for_every_command() -> None:
    table = exit_table_markdown()
    assert table in (ROOT / "README.md").read_text()
    assert table in (ROOT / "docs" / "cli.md").read_text()
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 130]
