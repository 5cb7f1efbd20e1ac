"""1, 2 and 4 ``klingwatch watch`` replicas on one PostgreSQL ledger, sharing one account's slots.

    .venv/bin/python bench/replicas.py                      # make bench-replicas: 10000 tasks
    .venv/bin/python bench/replicas.py --tasks 2000 --replicas 1 --replicas 2

Each run gets a fresh database on the PostgreSQL server in ``KLINGWATCH_TEST_PG_URL`` (or on a
throwaway cluster started the way ``make test`` starts one, tests/services.py, when that is unset)
and a fresh ``klingwatch sandbox`` process with a slot limit. The replicas are started first, then
``klingwatch submit FILE`` (no ``--wait``) queues the tasks into the running team, and the run
ends when every task in the ledger is final.

Figures, every one from a ground truth rather than from klingwatch's own counters:

* slot use while work was queued, requests and reads per task, 1303 answers, peak slots, creates
  per external id: the sandbox's ``/sandbox/stats``, ``/sandbox/slots`` and ``/sandbox/tasks``;
* ledger operations per second: PostgreSQL's ``pg_stat_database`` transactions (commits and
  rollbacks) of the run's database over the replicas' lifetime, and the ledger's ``events`` rows
  (one per state change through the door) over the same seconds;
* detection lag: ``klingwatch export`` (Kling's ``updated_at`` against when the ledger saw it),
  in nominal seconds (real seconds / time scale).

Results: bench/results/replicas.json and replicas.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Connection, Engine, make_url

import measure
from contestants import export_lags
from klingwatch.store import FINAL_STATUSES, Ledger
from klingwatch.store.schema import events, tasks
from procs import ACCESS_KEY, KLINGWATCH, ROOT, SECRET_KEY, Sandbox, Usage, start, wait_measured
from run import machine

log = logging.getLogger("bench.replicas")

RESULTS = ROOT / "bench" / "results"
PG_URL = "KLINGWATCH_TEST_PG_URL"
SCALE = 0.05
#: How often the driver asks the ledger whether every task is final (one transaction each).
PROGRESS_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Setting:
    """One run: replicas, tasks, the sandbox's slots, latency (real ms) and time scale."""

    replicas: int
    tasks: int
    slots: int
    latency_ms: int
    scale: float
    seed: int = 1
    timeout: float = 1800.0  # real seconds the batch may take before the run is called failed

    @property
    def label(self) -> str:
        return f"{self.replicas} replica(s), {self.tasks} tasks, {self.slots} slots"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The server in ``KLINGWATCH_TEST_PG_URL``, else a throwaway cluster for this bench."""
    if url := os.environ.get(PG_URL):
        log.info("using the PostgreSQL server in %s", PG_URL)
        yield url
        return
    # The same cluster ``make test`` makes (and removes), rather than a second way to make one.
    sys.path.append(str(ROOT / "tests"))
    from services import find_pg_bin, throwaway_postgres

    with throwaway_postgres(find_pg_bin(os.environ)) as url:
        yield url


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[tuple[str, Engine]]:
    """A new, empty database on ``server`` (dropped afterwards): its URL and an admin engine.

    A database of its own, not only a schema, so that ``pg_stat_database`` counts this run's
    transactions and nobody else's on a shared server.
    """
    name = f"kw_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False), admin
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def transactions(admin: Engine, database: str) -> int:
    """Transactions (commits and rollbacks) PostgreSQL has counted in ``database`` so far.

    Backends report at most once a second and when they exit, so this is exact only once every
    connection to ``database`` has closed.
    """
    with admin.connect() as conn:
        row = conn.execute(
            text(
                "SELECT coalesce(xact_commit + xact_rollback, 0) FROM pg_stat_database "
                "WHERE datname = :name"
            ),
            {"name": database},
        ).scalar()
    return int(row or 0)


def _final_count(conn: Connection) -> int:
    final = [status.value for status in FINAL_STATUSES]
    query = select(func.count()).select_from(tasks).where(tasks.c.status.in_(final))
    return int(conn.execute(query).scalar_one())


def _event_count(db: str) -> int:
    """Rows in the ledger's ``events``: every state change the door applied."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        engine.dispose()


def _env(setting: Setting, base_url: str, db: str) -> dict[str, str]:
    return {
        "KLING_API_BASE": base_url,
        "KLING_ACCESS_KEY": ACCESS_KEY,
        "KLING_SECRET_KEY": SECRET_KEY,
        "KLINGWATCH_DB": db,
        "KLINGWATCH_TIME_SCALE": str(setting.scale),
        # The team knows its account's slots: no replica learns them from 1303 answers.
        "KLINGWATCH_SLOTS_VIDEO": str(setting.slots),
    }


def _start_replica(name: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """``klingwatch watch --json`` as replica ``name``, its output in ``workdir``."""
    with (workdir / f"{name}.out").open("wb") as out, (workdir / f"{name}.err").open("wb") as err:
        return start(
            [KLINGWATCH, "watch", "--json"],
            env={**env, "KLINGWATCH_REPLICA_ID": name},
            stdout=out,
            stderr=err,
        )


def _submit(prompts: Path, env: dict[str, str], workdir: Path, timeout: float) -> float:
    """``klingwatch submit FILE`` (no ``--wait``) to its end; the monotonic time it ended."""
    with (workdir / "submit.out").open("wb") as out, (workdir / "submit.err").open("wb") as err:
        argv = [KLINGWATCH, "submit", str(prompts), "--json"]
        done = wait_measured(start(argv, env=env, stdout=out, stderr=err), timeout)
    if done.returncode != 0:
        raise RuntimeError(f"klingwatch submit exited {done.returncode}: see {workdir}")
    return time.monotonic()


def _wait_final(
    db: str, setting: Setting, replicas: list[subprocess.Popen[bytes]], *, deadline: float
) -> tuple[int, int]:
    """Poll the ledger until every task is final (or ``deadline``): (final tasks, polls made)."""
    polls = final = 0
    engine = create_engine(db, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                polls += 1
                final = _final_count(conn)
                if final >= setting.tasks:
                    break
                if dead := [p.args for p in replicas if p.poll() is not None]:
                    raise RuntimeError(f"a replica exited early: {dead}")
                time.sleep(PROGRESS_EVERY)
    finally:
        engine.dispose()
    if final < setting.tasks:
        log.warning(
            "%s: only %d final after the %.0f s timeout", setting.label, final, setting.timeout
        )
    return final, polls


def run_setting(setting: Setting, server: str, workdir: Path) -> dict[str, Any]:
    """One run of ``setting`` on a fresh database and a fresh sandbox; its row of figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    prompts = workdir / "prompts.txt"
    prompts.write_text("".join(f"bench prompt {i}\n" for i in range(setting.tasks)))
    with (
        fresh_database(server) as (db, admin),
        Sandbox(
            scale=setting.scale,
            seed=setting.seed,
            slots=setting.slots,
            latency_ms=setting.latency_ms,
            logfile=workdir / "sandbox.log",
        ) as sandbox,
    ):
        database = make_url(db).database or ""
        with Ledger.open(db):  # migrated once here, so the count below is the team's work
            pass
        time.sleep(1.5)  # the migrating backend has exited and reported
        env = _env(setting, sandbox.base_url, db)
        before = transactions(admin, database)
        began = time.monotonic()
        replicas = [_start_replica(f"r{i}", env, workdir) for i in range(1, setting.replicas + 1)]
        try:
            submit_seconds = _submit(prompts, env, workdir, setting.timeout) - began
            final, polls = _wait_final(db, setting, replicas, deadline=began + setting.timeout)
            batch_seconds = time.monotonic() - began
        finally:
            usages = [wait_measured(proc, 60, stop=True) for proc in replicas]
        lifetime = time.monotonic() - began
        time.sleep(1.5)  # every backend has exited and reported its counts
        # The submit's own transactions are part of the team's work; the driver's polls are not.
        spent = transactions(admin, database) - before - polls
        with Ledger.open(db) as ledger:
            statuses = ledger.counts()
        changes = _event_count(db)
        pairs = export_lags(env, workdir)
        stats = sandbox.truth("stats")
        slots = sandbox.truth("slots")
        made = sandbox.truth("tasks")["tasks"]
    return _row(
        setting,
        stats=stats,
        slots=slots,
        made=made,
        pairs=pairs,
        final=final,
        statuses={status.value: n for status, n in statuses.items() if n},
        ledger={
            "transactions": spent,
            "events": changes,
            "seconds": lifetime,
            "transactions_per_second": measure.per_second(spent, lifetime),
            "events_per_second": measure.per_second(changes, lifetime),
        },
        seconds={"submit": submit_seconds, "batch": batch_seconds},
        usages=usages,
    )


def _row(
    setting: Setting,
    *,
    stats: dict[str, Any],
    slots: dict[str, Any],
    made: list[dict[str, Any]],
    pairs: list[tuple[float | None, float | None]],
    final: int,
    statuses: dict[str, int],
    ledger: dict[str, float],
    seconds: dict[str, float],
    usages: list[Usage],
) -> dict[str, Any]:
    """The figures of one run, from the sandbox's truth, the ledger and the replicas' cost."""
    total, creates, refused = measure.count_requests(stats)
    first, last = measure.queued_window(made)
    detected = [d for _, d in pairs if d is not None]
    # As in run.py: from the first create Kling saw to the last final status the ledger noted.
    wall = (max(detected) - first) / 1000.0 if detected and not math.isnan(first) else math.nan
    lag = measure.lag_summary(pairs)
    twice = measure.duplicates(made)
    return {
        "setting": asdict(setting),
        "final": final,
        "all_final": final == setting.tasks and sum(statuses.values()) == setting.tasks,
        "statuses": statuses,
        "kling_tasks": len(made),
        "tasks_per_external_id_max": twice.tasks_per_external_id,
        "creates_per_external_id_max": twice.creates_per_external_id,
        "answers_1303": refused,
        "peak_slots": int(slots["peak"].get("video", 0)),
        "slot_utilisation": measure.slot_utilisation(
            slots["timeline"].get("video", []), setting.slots, first, last
        ),
        "requests": total,
        "creates": creates,
        "requests_per_task": total / setting.tasks,
        "reads_per_task": measure.count_reads(stats) / setting.tasks,
        "ledger": ledger,
        "lag_real": asdict(lag),
        "lag_nominal": asdict(lag.nominal(setting.scale)),
        "wall_seconds": wall,
        "submit_seconds": seconds["submit"],
        "batch_seconds": seconds["batch"],
        "replica_cpu_seconds": [u.cpu_seconds for u in usages],
        "replica_peak_rss_mb": [u.peak_rss_mb for u in usages],
        "replica_exit_codes": [u.returncode for u in usages],
        "by_route": stats["requests"]["by_route"],
    }


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """bench/results/replicas.md: the command, the machine, one table row per replica count."""
    runs = results["runs"]
    lines = [
        "# Replicas on one PostgreSQL ledger",
        "",
        f"`{results['command']}` on {results['date']}; {results['machine']['cores']} cores "
        f"({results['machine']['cpu']}), Python {results['machine']['python']}, "
        f"PostgreSQL {results['postgres']}. Bench took {results['bench_seconds'] / 60:.1f} min.",
        "",
    ]
    if note := results.get("note"):
        lines += [note, ""]
    if runs:
        s = runs[0]["setting"]
        lines += [
            f"Each row: a fresh database, a fresh `klingwatch sandbox` ({s['slots']} video slots, "
            f"{s['latency_ms']} ms latency, time scale {s['scale']}, seed {s['seed']}), the "
            "replicas (`klingwatch watch`, `KLINGWATCH_SLOTS_VIDEO` set) started first, then "
            f"`klingwatch submit FILE` of {s['tasks']} tasks into the running team.",
            "",
        ]
    lines += [
        "| replicas | tasks | slot use | req/task | reads/task | 1303 | peak slots "
        "| ledger tx/s | state changes/s | p95 lag (nominal s) | wall s | CPU s (all replicas) "
        "| peak RSS MB | Kling tasks per ext id | all final |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in runs:
        s = row["setting"]
        lines.append(
            f"| {s['replicas']} | {s['tasks']:,} | {_fmt(100 * row['slot_utilisation'])} % "
            f"| {row['requests_per_task']:.2f} | {row['reads_per_task']:.2f} "
            f"| {row['answers_1303']} | {row['peak_slots']}/{s['slots']} "
            f"| {_fmt(row['ledger']['transactions_per_second'], 0)} "
            f"| {_fmt(row['ledger']['events_per_second'], 0)} "
            f"| {_fmt(row['lag_nominal']['p95'])} | {_fmt(row['wall_seconds'], 0)} "
            f"| {_fmt(sum(row['replica_cpu_seconds']), 0)} "
            f"| {_fmt(max(row['replica_peak_rss_mb'], default=math.nan), 0)} "
            f"| max {row['tasks_per_external_id_max']} "
            f"(creates max {row['creates_per_external_id_max']}) "
            f"| {'yes' if row['all_final'] else 'NO'} ({row['final']:,}) |"
        )
    lines += [
        "",
        "Slot use: the share of the slot limit busy from the first create to the last (the "
        "sandbox's slot timeline). Requests include creates and 1303 answers; reads are status "
        "GETs answered 200. Ledger tx/s: PostgreSQL's committed and rolled-back transactions in "
        "the run's database (`pg_stat_database`, reads included, the driver's own progress "
        "queries left out) over the replicas' lifetime; state changes/s: rows the door wrote to "
        "`events` over the same seconds. Lag: Kling's `updated_at` to the ledger's detection, "
        "in nominal seconds. Wall: first create to last final status detected.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000, help="tasks per run (10000)")
    parser.add_argument(
        "--replicas", type=int, action="append", help="replica counts (repeatable; 1, 2, 4)"
    )
    parser.add_argument("--slots", type=int, default=500, help="the sandbox's video slots (500)")
    parser.add_argument("--latency-ms", type=int, default=20, help="sandbox latency (20 ms)")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"time scale ({SCALE})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="real s per run (1800)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--keep", type=Path, help="keep every process's logs here")
    parser.add_argument("--note", default="", help="a paragraph for replicas.md (why this size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    settings = [
        Setting(n, args.tasks, args.slots, args.latency_ms, args.scale, timeout=args.timeout)
        for n in args.replicas or [1, 2, 4]
    ]
    command = "make bench-replicas"
    if argv is None and sys.argv[1:]:
        command = "python bench/replicas.py " + shlex.join(sys.argv[1:])
    began = time.monotonic()
    args.output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "postgres": "",
        "note": args.note,
        "bench_seconds": 0.0,
        "runs": rows,
    }
    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="kw-replicas-") as tmp:
        results["postgres"] = _server_version(server)
        for setting in settings:
            log.info("%s ...", setting.label)
            row = run_setting(setting, server, (args.keep or Path(tmp)) / f"r{setting.replicas}")
            rows.append(row)
            log.info(
                "%s: %d/%d final, slot use %.1f %%, %.2f req/task, %.0f ledger tx/s, "
                "p95 lag %.1f nominal s, wall %.0f s",
                setting.label,
                row["final"],
                setting.tasks,
                100 * row["slot_utilisation"],
                row["requests_per_task"],
                row["ledger"]["transactions_per_second"],
                row["lag_nominal"]["p95"],
                row["wall_seconds"],
            )
            # Saved after every run: an interrupted bench keeps what it measured.
            results["bench_seconds"] = time.monotonic() - began
            (args.output / "replicas.json").write_text(json.dumps(results, indent=1) + "\n")
            (args.output / "replicas.md").write_text(markdown(results))
    log.info("wrote %s", args.output / "replicas.md")
    return 0


def _server_version(server: str) -> str:
    engine = create_engine(server)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
