"""A process that drives tasks through their lifecycle in the ledger, for the SIGKILL test.

Usage: ``python ledger_worker.py URL TASKS [forever]``. It adds TASKS intents (idempotent), then
applies every lifecycle report again from the start, in small batches, printing a line after each
commit. Run again after being killed, it must finish the job with nothing lost or doubled. With
``forever`` it starts over after each pass (all repeats, changing nothing) until it is killed, so
a slow test runner can never see it finish before the kill.
"""

from __future__ import annotations

import sys

from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

STAGES = [
    (LocalStatus.SUBMITTED, Source.CREATE),
    (LocalStatus.PROCESSING, Source.LIST),
    (LocalStatus.SUCCEED, Source.CALLBACK),
]
BATCH = 8


def main(url: str, count: int, *, forever: bool) -> None:
    with Ledger.open(url) as ledger:
        run(ledger, count)
        while forever:
            run(ledger, count)
    print("done", flush=True)


def run(ledger: Ledger, count: int) -> None:
    """One pass over every task's whole lifecycle."""
    names = [f"task-{i}" for i in range(count)]
    ledger.add_tasks("restart", [NewTask("text2video", {"prompt": n}, n) for n in names])
    print("added", flush=True)
    for stage, (status, source) in enumerate(STAGES):
        for start in range(0, count, BATCH):
            reports = [
                Observation(
                    status,
                    source,
                    at=1_000.0 + stage,
                    external_task_id=name,
                    task_id=f"k-{name}",
                    kling_updated_ms=1_000_000 + stage,
                    result={"videos": [{"url": f"https://x/{name}.mp4"}]}
                    if status is LocalStatus.SUCCEED
                    else None,
                )
                for name in names[start : start + BATCH]
            ]
            if start % (BATCH * 3) == 0:
                for report in reports:  # some through apply(), one transaction each
                    ledger.apply(report)
            else:
                ledger.apply_many(reports)
            print(f"committed {stage} {start}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), forever=sys.argv[3:] == ["forever"])
