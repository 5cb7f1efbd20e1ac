"""Real processes for the replica tests: a ``klingwatch sandbox`` on a real socket, klingwatch
replicas on one PostgreSQL ledger, and the ground truth to judge them by."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from klingwatch.sandbox.media import sample_mp4
from klingwatch.store import Ledger, LocalStatus, TaskRecord

API_KEY = "replicas-test-key"
#: The sandbox's clock: a 10 s video takes 0.1 s.
SANDBOX_SCALE = 0.01
#: The engines' clock: a 100 s lease lasts 2 s, a 2 s look interval 40 ms.
ENGINE_SCALE = 0.02
LEASE_SECONDS = 100.0
FINAL = {LocalStatus.SUCCEED, LocalStatus.FAILED, LocalStatus.REJECTED}


def klingwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("klingwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "klingwatch.cli"]


@contextlib.contextmanager
def sandbox_process(log: Path, *, slots: int, seed: int = 7) -> Iterator[str]:
    """``klingwatch sandbox`` on a free port with ``slots`` video slots; yields its base URL."""
    durations = '{"video": {"queue_p50": 1, "queue_p95": 3, "run_p50": 10, "run_p95": 25}}'
    command = [
        *klingwatch_command(),
        "sandbox",
        "--port",
        "0",
        "--api-key",
        API_KEY,
        "--slots",
        f"video={slots}",
        "--time-scale",
        str(SANDBOX_SCALE),
        "--seed",
        str(seed),
        "--failure-rate",
        "0.05",
        "--set",
        f"durations={durations}",
        "--set",
        "straggler_rate=0",
    ]
    out = log.open("w")
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            found = re.search(r"KLING_API_BASE=(\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, log.read_text()
        wait_for(lambda: _answers(url), timeout=20, what="the sandbox to answer")
        yield url
    finally:
        terminate(proc, timeout=10)
        out.close()
        if proc.stdout is not None:
            proc.stdout.close()


def terminate(proc: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/sandbox/stats", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Replicas:
    """klingwatch processes sharing one ledger and one sandbox."""

    tmp: Path
    sandbox: str
    db: str
    #: environment every process gets on top of the common one (a slot limit, ...)
    common: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, replica: str | None = None, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "KLING_API_KEY": API_KEY,
            "KLING_API_BASE": self.sandbox,
            "KLINGWATCH_DB": self.db,
            "KLINGWATCH_TIME_SCALE": str(ENGINE_SCALE),
            "KLINGWATCH_LEASE_SECONDS": str(LEASE_SECONDS),
            "KLINGWATCH_REQUESTS_PER_SECOND": "100",
            **self.common,
            **extra,
        }
        if replica is not None:
            env["KLINGWATCH_REPLICA_ID"] = replica
        return env

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``klingwatch ARGS`` to its end, under no replica id of its own."""
        done = subprocess.run(
            [*klingwatch_command(), *args],
            cwd=self.tmp,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr
        return done

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        """A replica running ``klingwatch ARGS`` (``watch`` unless told), named ``name``."""
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [*klingwatch_command(), *(args or ("watch",))],
            cwd=self.tmp,
            env=self.env(name, **extra),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

    def stop(self, name: str) -> None:
        """SIGTERM: the current sweep finishes, then the process exits."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code in (0, 130, 143), (code, self.log(name))  # 143: 128 + SIGTERM

    def stop_all(self) -> None:
        for name in list(self.procs):
            terminate(self.procs.pop(name), timeout=15)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited {proc.returncode}: {self.log(name)}"

    def tasks(self) -> list[TaskRecord]:
        with Ledger.open(self.db) as ledger:
            return ledger.tasks()

    def done(self, count: int, folder: Path) -> bool:
        """Every task final, and every success's file in ``folder``."""
        self.alive()
        tasks = self.tasks()
        if len(tasks) < count or any(t.status not in FINAL for t in tasks):
            return False
        succeeded = sum(1 for t in tasks if t.status is LocalStatus.SUCCEED)
        return len(list(folder.rglob("*.mp4"))) >= succeeded


def batch_file(tmp: Path, lines: int) -> Path:
    path = tmp / "team.txt"
    path.write_text("".join(f"a lighthouse at dusk, take {i}\n" for i in range(lines)))
    return path


def truth(sandbox: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Every task the sandbox made, its stats and its slot record."""
    with httpx.Client(base_url=sandbox, timeout=30) as http:
        tasks: list[dict[str, Any]] = http.get("/sandbox/tasks", params={"limit": 100_000}).json()[
            "tasks"
        ]
        return tasks, http.get("/sandbox/stats").json(), http.get("/sandbox/slots").json()


def check_ground_truth(
    replicas: Replicas,
    lines: int,
    folder: Path,
    *,
    slots: int,
    refused_at_most: int = 0,
    resumed_at_most: int = 0,
) -> dict[str, int]:
    """What a team must be able to rely on, checked against the sandbox's own record:
    every line exactly one Kling task, all final and agreeing with Kling, no external id created
    twice, never more creates at once than the slots, every result on disk once and whole.

    The sandbox refuses a create over the limit with 1303 (creating nothing): with the limit
    configured there must be none; with it unknown, the replicas learn it from the first ones
    (``refused_at_most``), and only a refused create may have been sent again."""
    made, stats, slot_record = truth(replicas.sandbox)
    rows = replicas.tasks()
    by_external = {t["external_task_id"]: t for t in made}
    assert len(rows) == lines
    assert len(made) == lines, f"{len(made)} Kling tasks for {lines} lines"
    assert len(by_external) == lines  # no external id made two Kling tasks
    refused = stats["creates"]["refused"].get("1303", 0)
    assert refused <= refused_at_most, stats["creates"]
    assert set(stats["creates"]["refused"]) <= {"1303"}, stats["creates"]
    resent = {t["external_task_id"]: t["creates_seen"] for t in made if t["creates_seen"] != 1}
    assert sum(n - 1 for n in resent.values()) <= refused, _timelines(replicas, resent)
    assert slot_record["peak"]["video"] <= slots
    for row in rows:
        kling = by_external[row.external_task_id]
        assert row.status in FINAL, (row.external_task_id, row.status)
        assert row.task_id == kling["task_id"]
        assert row.status.value == kling["status"]
    succeeded = [t for t in made if t["status"] == "succeed"]
    files = sorted(folder.rglob("*.mp4"))
    assert len(files) == len(succeeded)
    assert all(f.read_bytes() == sample_mp4() for f in files)
    assert not [p for p in folder.rglob("*") if p.name.endswith((".part", ".lock"))]
    gets = [t["media_gets"] for t in succeeded]
    assert min(gets) == 1
    # A replica killed while a body was on the wire may leave a .part that another resumes
    # (a second, ranged GET of that one file); nothing else is fetched twice.
    resumed = sum(n - 1 for n in gets)
    assert resumed <= resumed_at_most, gets
    return {
        "tasks": len(made),
        "succeeded": len(succeeded),
        "resumed": resumed,
        "refused_1303": refused,
        "peak_slots": slot_record["peak"]["video"],
        "requests": stats["requests"]["total"],
    }


def _timelines(replicas: Replicas, external_ids: dict[str, int]) -> str:
    """Each task's ledger timeline, to show in a failure."""
    lines = [f"creates per external id: {external_ids}"]
    with Ledger.open(replicas.db) as ledger:
        for external_id in external_ids:
            task = ledger.task(external_id)
            assert task is not None
            lines.append(f"{external_id}: attempts {task.send_attempts}")
            lines.extend(
                f"  {e.at:.3f} {e.from_status} -> {e.to_status} {e.source} {e.detail}"
                for e in ledger.events(task.local_id)
            )
    return "\n".join(lines)
