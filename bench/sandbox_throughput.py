"""How fast the sandbox plays Kling: N tasks on a scaled clock, over a real socket.

Starts a sandbox with :func:`klingwatch.sandbox.serve_in_thread`, creates ``--tasks`` text2video
tasks through ``--concurrency`` parallel connections (a 1303 is sent again after a short pause),
then reads until every task is terminal: ``GET /tasks?task_ids=`` 20 at a time, as a careful client
does. Prints one JSON object: wall seconds to create everything and to see everything finish,
requests served, and what the ground truth says.

    .venv/bin/python bench/sandbox_throughput.py --tasks 1000 --time-scale 0.01 --slots 1000
    .venv/bin/python bench/sandbox_throughput.py --server process   # server in its own process

The result depends on ``--slots``: with Kling's usual 5 video slots, 1000 tasks of ~85 s take
1000 / 5 x 85 s x 0.01 = 170 s at best, whatever the server's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, serve_in_thread

API_KEY = "bench-api-key"
T2V = "/v1/videos/text2video"


async def create_all(http: httpx.AsyncClient, n: int, concurrency: int) -> list[str]:
    ids: list[str] = []
    todo = list(range(n))
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            while True:
                r = await http.post(T2V, json={"prompt": f"bench {i}", "external_task_id": f"b{i}"})
                body = r.json()
                if body["code"] == 0:
                    ids.append(body["data"]["task_id"])
                    return
                if body["code"] != 1303:
                    raise RuntimeError(body)
                await asyncio.sleep(0.01)  # no slot free: retry shortly

    await asyncio.gather(*(one(i) for i in todo))
    return ids


async def wait_all(http: httpx.AsyncClient, ids: list[str], concurrency: int) -> int:
    pending = set(ids)
    rounds = 0
    sem = asyncio.Semaphore(concurrency)

    async def read(chunk: list[str]) -> list[dict[str, Any]]:
        async with sem:
            r = await http.get("/tasks", params={"task_ids": ",".join(chunk)})
            data: list[dict[str, Any]] = r.json()["data"]
            return data

    while pending:
        rounds += 1
        todo = sorted(pending)
        chunks = [todo[i : i + 20] for i in range(0, len(todo), 20)]
        for tasks in await asyncio.gather(*(read(c) for c in chunks)):
            for task in tasks:
                if task["status"] in ("succeeded", "failed"):
                    pending.discard(task["id"])
        if pending:
            await asyncio.sleep(0.05)
    return rounds


@contextlib.contextmanager
def sandbox_server(config: SandboxConfig, mode: str) -> Iterator[str]:
    """The sandbox's base URL: in a thread of this process, or as ``klingwatch sandbox`` in its
    own process (the client then has the interpreter to itself)."""
    if mode == "thread":
        with serve_in_thread(config) as url:
            yield url
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from klingwatch.cli import main; main()",
        "sandbox",
        f"--port={port}",
        f"--time-scale={config.time_scale}",
        f"--seed={config.seed}",
        f"--slots=video={config.slots[Family.VIDEO]}",
        f"--api-key={API_KEY}",
        f"--set=straggler_rate={config.straggler_rate}",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    config = SandboxConfig(
        api_keys=(API_KEY,),
        time_scale=args.time_scale,
        seed=args.seed,
        slots={Family.VIDEO: args.slots},
        straggler_rate=args.straggler_rate,
    )
    with sandbox_server(config, args.server) as url:
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=limits,
            timeout=60,
        ) as http:
            t0 = time.perf_counter()
            ids = await create_all(http, args.tasks, args.concurrency)
            t1 = time.perf_counter()
            rounds = await wait_all(http, ids, args.concurrency)
            t2 = time.perf_counter()
            stats = (await http.get("/sandbox/stats")).json()
            tasks = (await http.get("/sandbox/tasks")).json()["tasks"]
    spans = [t["finished_at"] - t["created_at"] for t in tasks]
    return {
        "tasks": args.tasks,
        "time_scale": args.time_scale,
        "video_slots": args.slots,
        "concurrency": args.concurrency,
        "server": args.server,
        "straggler_rate": args.straggler_rate,
        "create_seconds": round(t1 - t0, 3),
        "all_terminal_seconds": round(t2 - t0, 3),
        "read_rounds": rounds,
        "requests_served": stats["requests"]["total"],
        "requests_per_second": round(stats["requests"]["total"] / (t2 - t0), 1),
        "by_status": stats["tasks"]["by_status"],
        "refused_1303": stats["creates"]["refused"].get("1303", 0),
        "longest_task_seconds": round(max(spans) / 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--slots", type=int, default=1000, help="video concurrency slots")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel connections")
    parser.add_argument(
        "--straggler-rate",
        type=float,
        default=0.005,
        help="share of tasks running 5-20x longer (the sandbox default; 0 to leave them out)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server",
        choices=("thread", "process"),
        default="thread",
        help="serve_in_thread (as tests and the demo do) or `klingwatch sandbox` in a process",
    )
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
