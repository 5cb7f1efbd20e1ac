"""Processes the benchmark starts: the sandbox, and any command whose CPU and peak RSS we want.

Each contestant runs as its own OS process; :func:`wait_measured` reaps it with ``os.wait4`` so
the CPU seconds and peak RSS are that process's alone (not the sandbox's, not the driver's).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
KLINGWATCH = str(Path(sys.executable).with_name("klingwatch"))
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"  # >= 32 bytes for HS256
#: Standard Webhooks secret the sandbox signs callbacks with (klingwatch then trusts them unread).
API_KEY = "bench-api-key-0123456789"
WEBHOOK_SECRET = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OWFi"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Usage:
    """What one finished process cost: exit code, CPU seconds (user + system), peak RSS in MB."""

    returncode: int
    cpu_seconds: float
    peak_rss_mb: float
    timed_out: bool = False


def start(
    argv: Sequence[str], *, env: Mapping[str, str], stdout: IO[Any], stderr: IO[Any] | int
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group with ``env`` added to this process's environment."""
    log.info("start: %s", " ".join(argv))
    return subprocess.Popen(
        list(argv),
        env={**os.environ, **env},
        stdout=stdout,
        stderr=stderr,
        cwd=ROOT,
        start_new_session=True,
    )


def wait_measured(proc: subprocess.Popen[bytes], timeout: float, *, stop: bool = False) -> Usage:
    """Wait for ``proc`` (at most ``timeout`` s; then SIGTERM, then SIGKILL) and measure it.

    With ``stop`` the process is sent SIGTERM at once (a server told to shut down).
    """
    if stop:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + (30 if stop else timeout)
    signalled, killed, timed_out = stop, False, False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            if not signalled:
                log.warning("timed out after %.0f s: %s", timeout, proc.args)
                timed_out = signalled = True
                proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 30
            elif not killed:
                killed = True
                proc.kill()
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Usage(
        returncode=proc.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mb=usage.ru_maxrss / 1024.0,
        timed_out=timed_out,
    )


class Sandbox:
    """``klingwatch sandbox`` as its own process, with the workload's scale, slots and latency."""

    def __init__(
        self,
        *,
        scale: float,
        seed: int,
        slots: int,
        latency_ms: int,
        logfile: Path,
        signed_callbacks: bool = False,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.argv = [
            KLINGWATCH,
            "sandbox",
            "--port",
            str(self.port),
            "--time-scale",
            str(scale),
            "--seed",
            str(seed),
            "--slots",
            f"video={slots}",
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--api-key",
            API_KEY,
        ]
        if latency_ms:
            # Nominal latency, scaled with the clock like Kling's durations: at scale 0.05 a
            # real 200 ms would last 4 nominal seconds and throttle every sequential client.
            self.argv += ["--chaos", f"nominal:{latency_ms}"]
        if signed_callbacks:
            self.argv += ["--webhook-secret", WEBHOOK_SECRET]
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.base_url, timeout=120)

    def __enter__(self) -> Sandbox:
        with self.logfile.open("ab") as out:
            self.proc = start(self.argv, env={}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get("/sandbox/stats").raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"sandbox did not start; see {self.logfile}") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def truth(self, route: str) -> Any:
        """The JSON of ``/sandbox/<route>``."""
        answer = self.http.get(f"/sandbox/{route}")
        answer.raise_for_status()
        return answer.json()
