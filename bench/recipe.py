"""The polling loop people copy today, as faithfully as we can write it.

This is the baseline klingwatch is measured against (see bench/README.md). It is written the way
the protocol's readers write it: synchronous ``requests``, PyJWT, a new token for every request,
every prompt submitted at once, then sequential single-task GETs. Two cadences:

* ``sweep``: every 15 s, walk all active tasks with one GET each (the batch recipe).
* ``per-task``: each task on its own timer: 10 s, growing x1.2 after 5 polls, at most 30 s.

Every prompt is sent at once; a create answered 1303 (no free slot) is sent again on the next
sweep, in order, and a pass of resends stops at its first 1303 (the loop waits for the next sweep
instead of resending every waiting prompt into a full account; resending all of them would only
add refused requests to the baseline's count). All timings are nominal seconds multiplied by
``--time-scale``, like the sandbox's.

Prints one JSON object: requests sent, creates answered 1303, seconds spent inside HTTP calls
(``busy_seconds``: when it nears ``wall_seconds`` the sequential loop cannot keep its cadence),
and per task the Kling ``updated_at`` of the final status and the moment the loop saw it (Unix ms).
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from typing import Any

import jwt
import requests

PATH = "/v1/videos/text2video"


class Recipe:
    def __init__(self, base_url: str, access_key: str, secret_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.session = requests.Session()
        self.requests = 0
        self.answers_1303 = 0
        self.creates = 0
        self.busy = 0.0

    def headers(self) -> dict[str, str]:
        now = int(time.time())
        token = jwt.encode(
            {"iss": self.access_key, "exp": now + 1800, "nbf": now - 5},
            self.secret_key,
            algorithm="HS256",
            headers={"alg": "HS256", "typ": "JWT"},
        )
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        self.creates += 1
        started = time.perf_counter()
        answer = self.session.post(
            self.base_url + PATH, json=body, headers=self.headers(), timeout=30
        ).json()
        self.busy += time.perf_counter() - started
        if answer.get("code") == 1303:
            self.answers_1303 += 1
        return dict(answer)

    def get(self, task_id: str) -> dict[str, Any]:
        self.requests += 1
        started = time.perf_counter()
        answer = self.session.get(
            f"{self.base_url}{PATH}/{task_id}", headers=self.headers(), timeout=30
        ).json()
        self.busy += time.perf_counter() - started
        return dict(answer)


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe = Recipe(args.base_url, args.access_key, args.secret_key)
    prompts = [
        {"prompt": f"recipe prompt {i}", "model_name": "kling-v1", "duration": "5"}
        for i in range(args.tasks)
    ]
    pending = list(prompts)
    active: dict[str, float] = {}  # task_id -> next poll time (per-task mode)
    polls: dict[str, int] = {}
    seen: dict[str, dict[str, Any]] = {}
    interval_base = 10.0 * args.time_scale
    sweep_every = 15.0 * args.time_scale
    started = time.time()
    deadline = started + args.timeout

    def submit_pending(first: bool = False) -> None:
        nonlocal pending
        still: list[dict[str, Any]] = []
        for index, body in enumerate(pending):
            answer = recipe.create(body)
            if answer.get("code") == 0:
                task_id = answer["data"]["task_id"]
                active[task_id] = time.time() + interval_base
                polls[task_id] = 0
            elif answer.get("code") in (1303, 1302, 5000, 5001, 5002):
                still.append(body)
                if answer.get("code") == 1303 and not first:
                    # The account is full: keep the rest for the next sweep.
                    still.extend(pending[index + 1 :])
                    break
            else:
                seen[f"rejected-{len(seen)}"] = {"status": "rejected", "code": answer.get("code")}
        pending = still

    def look(task_id: str) -> None:
        answer = recipe.get(task_id)
        data = answer.get("data") or {}
        status = data.get("task_status")
        if status in ("succeed", "failed"):
            seen[task_id] = {
                "status": status,
                "updated_ms": data.get("updated_at"),
                "detected_ms": int(time.time() * 1000),
            }
            active.pop(task_id, None)

    submit_pending(first=True)
    if args.cadence == "sweep":
        while (active or pending) and time.time() < deadline:
            time.sleep(sweep_every)
            for task_id in list(active):
                look(task_id)
            if pending:
                submit_pending()
    else:
        queue = [(when, task_id) for task_id, when in active.items()]
        heapq.heapify(queue)
        last_submit = time.time()
        while (queue or pending) and time.time() < deadline:
            if pending and time.time() - last_submit >= sweep_every:
                before = set(active)
                submit_pending()
                last_submit = time.time()
                for task_id in set(active) - before:
                    heapq.heappush(queue, (active[task_id], task_id))
            if not queue:
                time.sleep(sweep_every / 10)
                continue
            when, task_id = heapq.heappop(queue)
            pause = when - time.time()
            if pause > 0:
                time.sleep(pause)
            look(task_id)
            if task_id in active:
                polls[task_id] += 1
                grow = 1.2 ** max(0, polls[task_id] - 4)  # the 6th wait is 12 s
                interval = min(interval_base * grow, 30.0 * args.time_scale)
                heapq.heappush(queue, (time.time() + interval, task_id))
    return {
        "cadence": args.cadence,
        "tasks": args.tasks,
        "requests": recipe.requests,
        "creates": recipe.creates,
        "answers_1303": recipe.answers_1303,
        "busy_seconds": round(recipe.busy, 3),
        "wall_seconds": round(time.time() - started, 3),
        "unfinished": len(active) + len(pending),
        "final": seen,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--cadence", choices=["sweep", "per-task"], default="per-task")
    parser.add_argument("--timeout", type=float, default=600.0, help="real seconds")
    args = parser.parse_args(argv)
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
