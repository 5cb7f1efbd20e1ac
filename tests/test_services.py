"""tests/services.py, the body of ``make test``: it starts what the tests need and stops it after.

The script runs for real here, as ``make test`` runs it, on a one-test probe suite written into
tmp_path: a real throwaway PostgreSQL cluster is made, the probe connects to it, and afterwards
the cluster's port refuses connections and its folder is gone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services import PG_BIN, PG_URL, ServiceError, chromium_commands

SCRIPT = Path(__file__).with_name("services.py")
PROBE = """
import json, os
from pathlib import Path

import psycopg


def test_probe():
    url = os.environ["KLINGWATCH_TEST_PG_URL"]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT current_setting('data_directory'), current_setting('port'),"
            " current_setting('server_encoding')"
        ).fetchone()
    Path("probe.json").write_text(json.dumps(row))
    assert {passes}
"""


def run_services(
    folder: Path, probe: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python tests/services.py`` on one probe test in ``folder``, with no server given."""
    (folder / "test_probe.py").write_text(probe)
    environment = {name: value for name, value in os.environ.items() if name != PG_URL}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "-q", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=folder,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done, folder / "probe.json"


def assert_cluster_gone(probe_out: Path) -> None:
    data_directory, port, _ = json.loads(probe_out.read_text())
    assert not Path(data_directory).parent.exists(), "the cluster's folder was left behind"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", int(port))):
        pass


@pytest.mark.slow
def test_make_test_runs_pytest_against_a_throwaway_postgres_then_removes_it(
    tmp_path: Path,
) -> None:
    done, probe_out = run_services(tmp_path, PROBE.format(passes=True))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "a throwaway PostgreSQL" in done.stderr
    assert json.loads(probe_out.read_text())[2] == "UTF8"
    assert_cluster_gone(probe_out)


@pytest.mark.slow
def test_pytests_failure_is_the_exit_code_and_the_cluster_still_goes(tmp_path: Path) -> None:
    done, probe_out = run_services(tmp_path, PROBE.format(passes=False))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert_cluster_gone(probe_out)


@pytest.mark.slow
def test_a_server_the_caller_set_is_used_as_given(tmp_path: Path) -> None:
    given = "postgresql+psycopg://someone@127.0.0.1:9/theirs"
    probe = f"import os\n\ndef test_probe():\n    assert os.environ[{PG_URL!r}] == {given!r}\n"

    done, _ = run_services(tmp_path, probe, **{PG_URL: given})

    assert done.returncode == 0, done.stdout + done.stderr
    assert "set by the caller" in done.stderr
    assert "throwaway" not in done.stderr


@pytest.mark.slow
def test_missing_postgres_binaries_get_one_line_and_no_test_runs(tmp_path: Path) -> None:
    done, _ = run_services(tmp_path, PROBE.format(passes=True), **{PG_BIN: str(tmp_path / "no")})

    assert done.returncode == 3
    assert done.stdout == ""  # pytest never started
    assert done.stderr.count("\n") == 1
    assert f"{PG_BIN}={tmp_path / 'no'} holds no initdb and pg_ctl" in done.stderr


def test_present_chromium_needs_nothing() -> None:
    assert chromium_commands(present=True, root=False) == []
    assert chromium_commands(present=True, root=True) == []


def test_missing_chromium_as_root_installs_debians_package_after_an_update() -> None:
    assert chromium_commands(present=False, root=True) == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium"],
    ]


def test_missing_chromium_as_a_user_says_what_to_install() -> None:
    with pytest.raises(ServiceError, match=r"\(sudo apt-get install chromium\)"):
        chromium_commands(present=False, root=False)
