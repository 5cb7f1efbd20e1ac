"""The contestants, each run against its own fresh sandbox on one workload.

* ``recipe-per-task`` / ``recipe-sweep``: bench/recipe.py, the loop people copy (two cadences).
* ``kw-polling``: ``klingwatch submit FILE --wait`` with a fresh SQLite ledger, no callbacks.
* ``kw-apikey``: the same with an API key (the ``/tasks`` reading style) instead of AK/SK.
* ``kw-callbacks``: ``klingwatch serve --public-url`` taking the sandbox's callbacks, fed by
  ``klingwatch submit FILE --callback-url`` into the same ledger.

Each returns a :class:`Run`: the final tasks' (Kling updated_at, detected) pairs, the wall time
until all were final, and what the measured process cost. Requests, slots and 1303 answers are
read afterwards from the sandbox's ground truth, the same way for everyone.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from procs import (
    ACCESS_KEY,
    API_KEY,
    KLINGWATCH,
    ROOT,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Usage,
    free_port,
    start,
    wait_measured,
)

log = logging.getLogger(__name__)

CONTESTANTS = ("recipe-per-task", "recipe-sweep", "kw-polling", "kw-apikey", "kw-callbacks")
FINAL = ("succeed", "failed")
CALLBACK_TOKEN = "bench-callback-token-5b1e"


@dataclass(frozen=True, slots=True)
class Workload:
    """One benchmark setting: tasks, sandbox latency (nominal ms: scaled with the clock), video
    slots, time scale, seed."""

    tasks: int
    latency_ms: int
    slots: int
    scale: float
    seed: int = 1
    timeout: float = 600.0  # real seconds any one contestant may take

    @property
    def label(self) -> str:
        return f"{self.tasks} tasks, {self.latency_ms} ms, {self.slots} slots"


@dataclass(slots=True)
class Run:
    """What a contestant saw: final tasks, wall seconds, and the measured process's cost."""

    pairs: list[tuple[float | None, float | None]]
    wall_seconds: float
    finished: int
    usage: Usage | None = None
    extra: dict[str, float] = field(default_factory=dict)


def _prompts(workload: Workload, workdir: Path) -> Path:
    path = workdir / "prompts.txt"
    path.write_text("".join(f"bench prompt {i}\n" for i in range(workload.tasks)))
    return path


def _env(base_url: str, workload: Workload, db: Path) -> dict[str, str]:
    return {
        "KLING_API_BASE": base_url,
        "KLING_ACCESS_KEY": ACCESS_KEY,
        "KLING_SECRET_KEY": SECRET_KEY,
        "KLINGWATCH_TIME_SCALE": str(workload.scale),
        "KLINGWATCH_DB": f"sqlite:///{db}",
        "KLINGWATCH_CALLBACK_TOKEN": CALLBACK_TOKEN,
    }


def run_recipe(cadence: str, base_url: str, workload: Workload, workdir: Path) -> Run:
    """bench/recipe.py with ``cadence`` (``per-task`` or ``sweep``) as a subprocess."""
    argv = [
        sys.executable,
        str(ROOT / "bench" / "recipe.py"),
        "--base-url",
        base_url,
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
        "--tasks",
        str(workload.tasks),
        "--time-scale",
        str(workload.scale),
        "--cadence",
        cadence,
        "--timeout",
        str(workload.timeout),
    ]
    out_path = workdir / f"recipe-{cadence}.json"
    started = time.monotonic()
    with out_path.open("wb") as out, (workdir / f"recipe-{cadence}.err").open("wb") as err:
        usage = wait_measured(start(argv, env={}, stdout=out, stderr=err), workload.timeout + 120)
    wall = time.monotonic() - started
    report = json.loads(out_path.read_text() or "{}")
    finals = [t for t in report.get("final", {}).values() if t.get("status") in FINAL]
    return Run(
        pairs=[(t["updated_ms"], t["detected_ms"]) for t in finals],
        wall_seconds=float(report.get("wall_seconds", wall)),
        finished=len(finals),
        usage=usage,
        extra={
            "busy_seconds": float(report.get("busy_seconds", 0.0)),
            "unfinished": float(report.get("unfinished", workload.tasks)),
        },
    )


def export_lags(env: dict[str, str], workdir: Path) -> list[tuple[float | None, float | None]]:
    path = workdir / "export.json"
    subprocess.run(
        [KLINGWATCH, "export", "--format", "json", "--output", str(path)],
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    records = json.loads(path.read_text())
    return [
        (r["kling_updated_at_ms"], r["detected_at_ms"]) for r in records if r["status"] in FINAL
    ]


def run_polling(base_url: str, workload: Workload, workdir: Path, *, api_key: bool = False) -> Run:
    """``klingwatch submit FILE --wait`` in its own process; lags from ``klingwatch export``.
    ``api_key``: with an API key instead of AK/SK (the ``/tasks`` reading style)."""
    env = _env(base_url, workload, workdir / "polling.db")
    if api_key:
        env = {k: v for k, v in env.items() if not k.startswith("KLING_") or k == "KLING_API_BASE"}
        env["KLING_API_KEY"] = API_KEY
    argv = [KLINGWATCH, "submit", str(_prompts(workload, workdir)), "--wait", "--json"]
    started = time.monotonic()
    with (workdir / "submit.out").open("wb") as out, (workdir / "submit.err").open("wb") as err:
        usage = wait_measured(start(argv, env=env, stdout=out, stderr=err), workload.timeout)
    wall = time.monotonic() - started
    pairs = export_lags(env, workdir)
    return Run(pairs=pairs, wall_seconds=wall, finished=len(pairs), usage=usage)


def _finished(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(
                "SELECT count(*) FROM tasks WHERE status IN ('succeed', 'failed')"
            ).fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0


def run_callbacks(base_url: str, workload: Workload, workdir: Path) -> Run:
    """``klingwatch serve --public-url`` plus ``submit --callback-url``; both processes measured.

    The sandbox signs its callbacks (Standard Webhooks, as Kling does since 2026 when a secret is
    set) and klingwatch holds the secret; unsigned, each final status costs one confirming read.

    The CPU seconds are the two processes' sum, the peak RSS the larger of the two (serve's).
    """
    db = workdir / "callbacks.db"
    env = {**_env(base_url, workload, db), "KLINGWATCH_WEBHOOK_SECRET": WEBHOOK_SECRET}
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    serve_argv = [
        KLINGWATCH,
        "serve",
        "--port",
        str(port),
        "--public-url",
        public,
        "--log-level",
        "warning",
    ]
    started = time.monotonic()
    with (workdir / "serve.log").open("wb") as log_out:
        serve = start(serve_argv, env=env, stdout=log_out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"{public}/metrics", serve)
        submit_argv = [
            KLINGWATCH,
            "submit",
            str(_prompts(workload, workdir)),
            "--callback-url",
            f"{public}/callbacks/kling/{CALLBACK_TOKEN}",
            "--json",
        ]
        with (workdir / "submit.out").open("wb") as out, (workdir / "submit.err").open("wb") as err:
            submit = wait_measured(
                start(submit_argv, env=env, stdout=out, stderr=err), workload.timeout
            )
        deadline = started + workload.timeout
        while _finished(db) < workload.tasks and time.monotonic() < deadline:
            time.sleep(0.25)
        wall = time.monotonic() - started
    finally:
        served = wait_measured(serve, 60, stop=True)
    pairs = export_lags(env, workdir)
    usage = Usage(
        returncode=submit.returncode or served.returncode,
        cpu_seconds=submit.cpu_seconds + served.cpu_seconds,
        peak_rss_mb=max(submit.peak_rss_mb, served.peak_rss_mb),
        timed_out=len(pairs) < workload.tasks,
    )
    return Run(pairs=pairs, wall_seconds=wall, finished=len(pairs), usage=usage)


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"klingwatch serve exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within 60 s")


def run_contestant(name: str, base_url: str, workload: Workload, workdir: Path) -> Run:
    """Run contestant ``name`` (one of :data:`CONTESTANTS`) in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "recipe-per-task":
        return run_recipe("per-task", base_url, workload, workdir)
    if name == "recipe-sweep":
        return run_recipe("sweep", base_url, workload, workdir)
    if name == "kw-polling":
        return run_polling(base_url, workload, workdir)
    if name == "kw-apikey":
        return run_polling(base_url, workload, workdir, api_key=True)
    if name == "kw-callbacks":
        return run_callbacks(base_url, workload, workdir)
    raise ValueError(f"unknown contestant {name!r}; one of {', '.join(CONTESTANTS)}")
