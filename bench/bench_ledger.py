"""How many observations per second the ledger's one door applies.

    .venv/bin/python bench/bench_ledger.py                      # SQLite file in a temp dir
    .venv/bin/python bench/bench_ledger.py --tasks 5000 --observations 50000 --batch 500
    .venv/bin/python bench/bench_ledger.py --url postgresql+psycopg://postgres@127.0.0.1:55432/bench

N tasks are added, then M observations walk them through their lifecycle (submitted, a few
repeated processing reports as list pages give, then succeed or failed), applied with
``apply_many`` in batches the size a poller's sweep produces. Prints observations per second.
The target (issue 4) is at least 5000/s on a SQLite file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

BASE_MS = 1_767_225_600_000


def observations(tasks: int, total: int, rng: random.Random) -> list[Observation]:
    """``total`` reports over ``tasks`` tasks, each task's in lifecycle order, tasks interleaved."""
    per_task = max(3, total // tasks)
    out: list[list[Observation]] = []
    for i in range(tasks):
        ext = f"bench-{i}"
        kling = f"8{i:017d}"
        steps: list[Observation] = [
            Observation(
                LocalStatus.SUBMITTED,
                Source.CREATE,
                1.0,
                external_task_id=ext,
                task_id=kling,
                kling_created_ms=BASE_MS,
                kling_updated_ms=BASE_MS,
            )
        ]
        for n in range(per_task - 2):
            steps.append(
                Observation(
                    LocalStatus.PROCESSING,
                    Source.LIST,
                    2.0 + n,
                    task_id=kling,
                    kling_updated_ms=BASE_MS + 30_000,
                )
            )
        if rng.random() < 0.9:
            final = Observation(
                LocalStatus.SUCCEED,
                Source.LIST,
                100.0,
                task_id=kling,
                kling_updated_ms=BASE_MS + 90_000,
                units="1",
                result={"videos": [{"id": "v", "url": f"https://x/{kling}.mp4"}]},
            )
        else:
            final = Observation(
                LocalStatus.FAILED,
                Source.LIST,
                100.0,
                task_id=kling,
                kling_updated_ms=BASE_MS + 90_000,
                status_msg="risk control",
            )
        steps.append(final)
        out.append(steps)
    # Interleave: a sweep sees many tasks at the same stage.
    flat: list[Observation] = []
    for stage in range(per_task):
        flat.extend(steps[stage] for steps in out)
    return flat[:total]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="ledger URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="observations per apply_many")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        reports = observations(args.tasks, args.observations, random.Random(args.seed))
        with Ledger.open(url) as ledger:
            started = time.perf_counter()
            ledger.add_tasks(
                "bench",
                [
                    NewTask("text2video", {"prompt": f"p{i}"}, f"bench-{i}")
                    for i in range(args.tasks)
                ],
            )
            added = time.perf_counter() - started

            changes = 0
            started = time.perf_counter()
            for start in range(0, len(reports), args.batch):
                changes += len(ledger.apply_many(reports[start : start + args.batch]))
            elapsed = time.perf_counter() - started
            problems = ledger.verify()

        rate = len(reports) / elapsed
        print(
            f"ledger: {url.split(':')[0]}  tasks: {args.tasks}  observations: {len(reports)}"
            f"  batch: {args.batch}"
        )
        print(f"add_tasks: {args.tasks / added:,.0f} tasks/s")
        print(f"apply_many: {rate:,.0f} observations/s ({changes} changes, {elapsed:.2f} s)")
        print(f"consistency: {'ok' if not problems else f'{len(problems)} problems'}")


if __name__ == "__main__":
    main()
