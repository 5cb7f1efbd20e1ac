"""A quick figure: requests and detection lag of klingwatch's engine vs per-task polling.

Runs in process on a manual clock: a sandbox (no callbacks, no chaos), N text2video tasks created
at once, then the engine (``Monitor(until_done=True)``) until every task has ended. The baseline
is computed on the very same tasks from the sandbox's truth: one GET per task per look, first
look 10 s after the create, every 10 s for 5 looks, then x1.2 per look up to 30 s (the cadence
of ``bench/recipe.py``'s ``per-task`` mode). A look sees the end when it comes at or after the
task's Kling ``updated_at``.

    .venv/bin/python bench/engine_vs_polling.py --tasks 1000 [--ak-sk] [--seed 1]

Prints one JSON object. The benchmark issue measures this properly over real sockets; this is
the engine author's back-of-envelope check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.monitor.observe import observe_create
from klingwatch.monitor.service import Monitor
from klingwatch.sandbox import SandboxConfig, create_app
from klingwatch.store import Ledger, NewTask
from klingwatch.store.async_ledger import AsyncLedger

KEY, AK, SK = "bench-key", "bench-ak", "bench-sk-0123456789abcdef0123456789abcdef"
REQUEST = {"prompt": "a cat surfing", "model_name": "kling-v2-6", "mode": "std"}


def baseline_looks(length: float) -> tuple[int, float]:
    """(GETs, detection lag) of per-task polling for a task that ends ``length`` s after create."""
    t, interval, looks = 0.0, 10.0, 0
    while True:
        t += interval
        looks += 1
        if looks >= 5:
            interval = min(30.0, interval * 1.2)
        if t >= length:
            return looks, t - length


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(tasks: int, api_key: bool, seed: int) -> dict[str, Any]:
    clock = ManualClock()
    config = SandboxConfig(
        api_keys=(KEY,),
        access_keys={AK: SK},
        slots={Family.VIDEO: tasks},
        seed=seed,
    )
    app = create_app(config, clock=clock)
    creds = {"api_key": KEY} if api_key else {"access_key": AK, "secret_key": SK}
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger.open(f"sqlite:///{Path(tmp) / 'bench.db'}", clock=clock)
        async with KlingClient(
            **creds,
            base_url="http://sandbox",
            transport=httpx.ASGITransport(app=app),
            clock=clock,
        ) as client:
            ledger.ensure_batch("bench")
            intents = [
                NewTask("text2video", REQUEST, f"bench-{i}", model="kling-v2-6", mode="std")
                for i in range(tasks)
            ]
            ids = ledger.add_tasks("bench", intents).added
            for local_id, intent in zip(ids, intents, strict=True):
                ledger.mark_sending(local_id, clock.time())
                task = await client.create(
                    "text2video", REQUEST, external_task_id=intent.external_task_id
                )
                ledger.apply(observe_create(task, local_id=local_id, at=clock.time()))
            before = Counter(client.stats.by_route)
            started = time.perf_counter()
            monitor = Monitor(
                client=client, ledger=AsyncLedger(ledger), clock=clock, until_done=True
            )
            monitor.handle_signals = False
            await monitor.run()
            wall = time.perf_counter() - started
            reads = client.stats.by_route - before
        records = ledger.tasks()
        ledger.close()
    lags = [
        (r.detected_at or 0) - (r.kling_updated_ms or 0) / 1000.0
        for r in records
        if r.detected_at is not None
    ]
    base = [
        baseline_looks(((r.kling_updated_ms or 0) - (r.kling_created_ms or 0)) / 1000.0)
        for r in records
    ]
    base_requests = sum(n for n, _ in base)
    base_lags = [lag for _, lag in base]
    engine_requests = sum(reads.values())
    return {
        "tasks": tasks,
        "credentials": "api_key" if api_key else "ak_sk",
        "engine": {
            "requests": engine_requests,
            "by_route": {f"{m} {r}": n for (m, r), n in sorted(reads.items())},
            "lag_p50_s": round(statistics.median(lags), 2),
            "lag_p95_s": round(percentile(lags, 0.95), 2),
            "lag_max_s": round(max(lags), 2),
            "simulated_s": round(clock.monotonic(), 1),
            "wall_s": round(wall, 2),
        },
        "per_task_polling": {
            "requests": base_requests,
            "lag_p50_s": round(statistics.median(base_lags), 2),
            "lag_p95_s": round(percentile(base_lags, 0.95), 2),
        },
        "request_ratio": round(engine_requests / base_requests, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--ak-sk", action="store_true", help="AK/SK credentials (legacy lists)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tasks, not args.ak_sk, args.seed)), indent=2))


if __name__ == "__main__":
    main()
