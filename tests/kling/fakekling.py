"""A small Kling that speaks KLING_PROTOCOL.md, as an ``httpx.MockTransport`` handler.

Tasks move on the given clock: ``submitted`` for ``queue`` seconds, ``processing`` for ``run``
seconds, then ``succeed`` (or ``failed`` with ``fail_reason``). ``script`` queues canned answers (an
``httpx.Response``, or an exception to raise) that are served before normal handling, one per
request, so a test can say "500, then the real answer". Every request is kept in ``requests``.
"""

from __future__ import annotations

import email.utils
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient

AK, SK, API_KEY = (
    "ak-test-0001",
    "sk-SECRET-never-printed-0123456789abcdef",
    "kapi-SECRET-never-printed",
)
BASE = "https://kling.test"

LEGACY_PATHS = (
    "/v1/videos/text2video",
    "/v1/videos/image2video",
    "/v1/videos/multi-image2video",
    "/v1/videos/video-extend",
    "/v1/videos/lip-sync",
    "/v1/videos/effects",
    "/v1/images/generations",
    "/v1/images/kolors-virtual-try-on",
)
NEW_KINDS = ("text-to-video", "image-to-video", "omni-video", "motion-control")


def envelope(data: Any = None, *, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": "req-1"}
    if code == 0:
        body["data"] = data
    return body


def error(status: int, code: int, message: str = "boom", **headers: str) -> httpx.Response:
    return httpx.Response(status, json=envelope(code=code, message=message), headers=headers)


@dataclass
class FakeTask:
    id: str
    path: str
    created: float
    external_id: str | None = None
    queue: float = 10.0
    run: float = 60.0
    fail_reason: str | None = None
    new_standard: bool = False

    def status(self, now: float) -> str:
        if now < self.created + self.queue:
            return "submitted"
        if now < self.created + self.queue + self.run:
            return "processing"
        return "failed" if self.fail_reason else "succeed"

    def legacy(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        result: dict[str, Any] = {}
        if status == "succeed":
            result = {
                "videos": [
                    {"id": f"v{self.id}", "url": f"https://cdn/{self.id}.mp4", "duration": "5.1"}
                ]
            }
        return {
            "task_id": self.id,
            "task_status": status,
            "task_status_msg": self.fail_reason if status == "failed" else "",
            "task_info": {"external_task_id": self.external_id} if self.external_id else {},
            "task_result": result,
            "created_at": int(self.created * 1000),
            "updated_at": int(now * 1000),
        }

    def tasks_api(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        outputs = []
        if status == "succeed":
            outputs = [
                {
                    "type": "video",
                    "id": f"v{self.id}",
                    "url": f"https://cdn/{self.id}.mp4",
                    "duration": "5",
                }
            ]
        return {
            "id": self.id,
            "status": "succeeded" if status == "succeed" else status,
            "message": self.fail_reason if status == "failed" else "",
            "create_time": int(self.created * 1000),
            "update_time": int(now * 1000),
            "external_id": self.external_id,
            "outputs": outputs,
            "billing": [{"charge_type": "unit", "amount": "1.5", "package_type": "video"}],
        }


@dataclass
class FakeKling:
    clock: ManualClock = field(default_factory=ManualClock)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # test-clock time of each request
    script: list[httpx.Response | Exception] = field(default_factory=list)
    #: Like ``script``, but served to creates only (reads are answered normally).
    create_script: list[httpx.Response | Exception] = field(default_factory=list)
    queue: float = 10.0
    run: float = 60.0
    #: Where a legacy get finds an external id (UNSURE in the protocol): "path", "query", "both".
    external_id_lookup: str = "both"
    lose_answers: int = 0  # serve the next N requests, then drop the connection
    skew: float = 0.0  # seconds the server's clock is ahead of the test clock
    page_limit_override: int | None = None  # POST /tasks: page size the server uses
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(866889456698785000))

    # -- helpers for tests -----------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def add(self, path: str = "/v1/videos/text2video", **kw: Any) -> FakeTask:
        task = FakeTask(
            id=str(next(self._ids)),
            path=path,
            created=self.now,
            queue=kw.pop("queue", self.queue),
            run=kw.pop("run", self.run),
            **kw,
        )
        self.tasks[task.id] = task
        return task

    def calls(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.url.path == path)
        ]

    # -- the server ------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The server's time: the test clock plus ``skew``."""
        return self.clock.time() + self.skew

    def handler(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: httpx re-sends the same Request object after re-signing its header.
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers, content=request.content
            )
        )
        self.times.append(self.clock.time())
        creating = request.method == "POST" and request.url.path != "/tasks"
        if creating and self.create_script:
            canned = self.create_script.pop(0)
            if isinstance(canned, Exception):
                raise canned
            return canned
        if self.script:
            canned = self.script.pop(0)
            if isinstance(canned, Exception):
                raise canned
            return canned
        response = self._serve(request)
        response.headers["date"] = email.utils.formatdate(self.now, usegmt=True)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            raise httpx.RemoteProtocolError("server disconnected without sending a response")
        return response

    def _serve(self, request: httpx.Request) -> httpx.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        path = request.url.path
        if path == "/tasks":
            return self._tasks(request)
        for legacy in LEGACY_PATHS:
            if path == legacy:
                return self._legacy_collection(request, legacy)
            if path.startswith(legacy + "/"):
                return self._legacy_one(request, legacy, path[len(legacy) + 1 :])
        kind = path.strip("/").split("/")[0]
        if kind in NEW_KINDS and request.method == "POST":
            return self._new_create(request, path)
        return error(404, 1202, "invalid method")

    def _auth(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return error(401, 1001, "authorization header empty")
        token = header.removeprefix("Bearer ")
        new_standard = (
            request.url.path == "/tasks" or request.url.path.strip("/").split("/")[0] in NEW_KINDS
        )
        if token == API_KEY:
            return None
        if new_standard:
            return error(401, 1002, "does not support AK/SK")
        try:
            claims = jwt.decode(
                token, SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}
            )
        except jwt.InvalidTokenError:
            return error(401, 1002, "invalid token")
        now = self.now
        if claims.get("iss") != AK:
            return error(401, 1002, "invalid token")
        if claims["nbf"] > now:
            return error(401, 1003, "token not yet valid")
        if claims["exp"] <= now:
            return error(401, 1004, "token expired")
        return None

    def _body(self, request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content or b"{}")
        assert isinstance(body, dict)
        return body

    def _legacy_collection(self, request: httpx.Request, path: str) -> httpx.Response:
        now = self.now
        if request.method == "POST":
            body = self._body(request)
            task = self.add(path, external_id=body.get("external_task_id"))
            return httpx.Response(
                200,
                json=envelope(
                    {
                        "task_id": task.id,
                        "task_status": "submitted",
                        "task_info": {"external_task_id": task.external_id}
                        if task.external_id
                        else {},
                        "created_at": int(now * 1000),
                        "updated_at": int(now * 1000),
                    }
                ),
            )
        params = request.url.params
        if "external_task_id" in params and self.external_id_lookup != "path":
            for task in self.tasks.values():
                if task.path == path and task.external_id == params["external_task_id"]:
                    return httpx.Response(200, json=envelope(task.legacy(now)))
            return error(400, 1201, "Task not found by id/external id")
        page, size = int(params.get("pageNum", 1)), int(params.get("pageSize", 30))
        mine = sorted(
            (t for t in self.tasks.values() if t.path == path),
            key=lambda t: (-t.created, -int(t.id)),
        )
        chunk = mine[(page - 1) * size : page * size]
        return httpx.Response(200, json=envelope([t.legacy(now) for t in chunk]))

    def _legacy_one(self, request: httpx.Request, path: str, key: str) -> httpx.Response:
        now = self.now
        for task in self.tasks.values():
            by_ext = self.external_id_lookup != "query" and key == task.external_id
            if task.path == path and (key == task.id or by_ext):
                return httpx.Response(200, json=envelope(task.legacy(now)))
        return error(400, 1201, "Task not found by id/external id")

    def _new_create(self, request: httpx.Request, path: str) -> httpx.Response:
        body = self._body(request)
        options = body.get("options") or {}
        task = self.add(path, external_id=options.get("external_task_id"), new_standard=True)
        now = int(self.now * 1000)
        return httpx.Response(
            200,
            json=envelope(
                {
                    "id": task.id,
                    "status": "submitted",
                    "create_time": now,
                    "update_time": now,
                    "external_id": task.external_id,
                }
            ),
        )

    def _tasks(self, request: httpx.Request) -> httpx.Response:
        now = self.now
        if request.method == "GET":
            query = parse_qs(request.url.query.decode())
            ids = ",".join(query.get("task_ids", [])).split(",") if "task_ids" in query else None
            ext = (
                ",".join(query.get("external_task_ids", [])).split(",")
                if "external_task_ids" in query
                else None
            )
            if (ids is None) == (ext is None):
                return error(400, 1201, "give task_ids or external_task_ids")
            wanted = ids if ids is not None else ext
            assert wanted is not None
            if len(wanted) > 20:
                return error(400, 1201, "at most 20 ids")
            found = [
                t
                for t in self.tasks.values()
                if (t.id if ids is not None else t.external_id) in wanted
            ]
            found.reverse()  # the order is not promised
            return httpx.Response(200, json=envelope([t.tasks_api(now) for t in found]))
        body = self._body(request)
        limit = self.page_limit_override or int(body.get("limit", 100))
        statuses: set[str] | None = None
        for f in body.get("filters", []):
            if f["key"] == "status":
                statuses = set(f["values"])
        matching = [t.tasks_api(now) for t in self.tasks.values()]
        if statuses is not None:
            matching = [t for t in matching if t["status"] in statuses]
        start = int(body.get("cursor") or 0)
        page = matching[start : start + limit]
        more = start + limit < len(matching)
        return httpx.Response(
            200,
            json=envelope(
                {
                    "result": page,
                    "count": len(page),
                    "next_cursor": str(start + limit) if more else "",
                    "has_more": more,
                }
            ),
        )


Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    fake: FakeKling, *, api_key: bool = False, key_pair: bool = True, **kw: Any
) -> KlingClient:
    """A client on ``fake``'s transport and clock, with AK/SK and, if asked, the API key."""
    return KlingClient(
        access_key=AK if key_pair else None,
        secret_key=SK if key_pair else None,
        api_key=API_KEY if api_key else None,
        base_url=BASE,
        transport=fake.transport(),
        clock=fake.clock,
        **kw,
    )
