"""Faults on purpose: latency, injected error codes, ambiguous creates, dropped and cut answers.

All off by default. One option turns a set on: a profile name (``flaky``, ``hostile``, ``slow``,
``ambiguous``) or a spec such as ``"5000:0.05,1302:0.02,drop:0.01,latency:50+100"``:

==================  ===========================================================================
``<code>:<rate>``   answer that Kling error (1302, 5000, 5001, 5002, ...) *instead of* serving
``created:<rate>``  on a create: create the task, then answer 500/5000 anyway (the "may exist" case)
``drop:<rate>``     serve the request, send the headers, then close the connection without a body
``truncate:<rate>`` serve the request, answer with a well-formed HTTP response whose JSON is cut
``latency:<ms>``    fixed latency before every answer; ``latency:<ms>+<jitter ms>`` adds jitter
``nominal:<ms>``    the same latency in *nominal* ms, scaled with the clock like Kling's durations
                    (``nominal:200`` at time scale 0.05 waits 10 real ms); ``+<jitter>`` too
==================  ===========================================================================

Why both: a compressed clock (``--time-scale``) shrinks every duration but real latency, so a
200 ms request at scale 0.05 lasts 4 *nominal* seconds, and a client that reads one task at a
time spends its whole run waiting. ``nominal`` keeps latency in proportion to everything else.

Only the Kling API routes (``/v1/...``, ``/tasks``, the new-standard create routes,
``/account/...``) see chaos; the ground truth and result files under ``/sandbox/`` never do. A
dropped answer is carried out by :mod:`klingwatch.sandbox.delivery` (over a socket, or in process
through its ``SandboxTransport``).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klingwatch.clock import Clock
from klingwatch.kling.envelope import HTTP_STATUS, dumps, failure

#: ASGI scope key where a route (or chaos, overriding it) leaves the answer's Kling code for the
#: ground-truth recorder: an int, or "dropped"/"truncated".
CODE_KEY = "klingwatch.sandbox.code"
#: ASGI scope key of a request to get no answer (see :mod:`klingwatch.sandbox.delivery`).
FAULT_KEY = "klingwatch.sandbox.no_answer"

__all__ = [
    "CHAOS_PROFILES",
    "CODE_KEY",
    "FAULT_KEY",
    "USUAL_MESSAGES",
    "ChaosConfig",
    "ChaosEngine",
    "ChaosMiddleware",
    "parse_chaos",
]

logger = logging.getLogger(__name__)

#: What Kling says with the codes chaos and scripts send without a message of their own.
USUAL_MESSAGES: dict[int, str] = {
    1302: "The API request is too fast, please slow down",
    1303: "parallel task over resource pack limit",
    5000: "Server internal error",
    5001: "Server temporarily unavailable, usually due to maintenance",
    5002: "Server internal timeout, usually due to a backlog",
}


class ChaosConfig(BaseModel):
    """Which faults to inject, and how often (rates are per request, 0..1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Kling code -> rate: answer that error instead of serving the request.
    errors: dict[int, float] = Field(default_factory=dict)
    #: On a create: the task is created, yet the answer is 500/5000.
    created_then_5000: float = Field(default=0.0, ge=0, le=1)
    drop: float = Field(default=0.0, ge=0, le=1)
    truncate: float = Field(default=0.0, ge=0, le=1)
    #: Real milliseconds added to every answer, plus up to ``jitter_ms`` more.
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    #: The latency is nominal (scaled with the clock), not real milliseconds.
    latency_nominal: bool = False

    @field_validator("errors")
    @classmethod
    def _known_codes(cls, v: dict[int, float]) -> dict[int, float]:
        for code, rate in v.items():
            if code not in HTTP_STATUS:
                known = ", ".join(str(c) for c in sorted(HTTP_STATUS))
                raise ValueError(f"chaos code {code} is not a Kling error code ({known})")
            if not 0 <= rate <= 1:
                raise ValueError(f"chaos rate for {code} must be within 0..1, got {rate}")
        return v

    @property
    def enabled(self) -> bool:
        return bool(
            any(self.errors.values())
            or self.created_then_5000
            or self.drop
            or self.truncate
            or self.latency_ms
            or self.jitter_ms
        )


#: Named sets of faults for ``--chaos``.
CHAOS_PROFILES: dict[str, str] = {
    "none": "",
    "flaky": "1302:0.03,5000:0.01,5002:0.01,created:0.01,drop:0.005,truncate:0.005,latency:5+20",
    "hostile": "1302:0.08,5000:0.03,5001:0.01,5002:0.03,created:0.03,drop:0.02,truncate:0.02,"
    "latency:20+80",
    "slow": "latency:200+300",
    "ambiguous": "created:0.2,drop:0.05",
}


def parse_chaos(spec: str | None) -> ChaosConfig:
    """A :class:`ChaosConfig` from a profile name or a ``kind:value,...`` spec.

    Raises ``ValueError`` with a one-line explanation of what is wrong.
    """
    text = (spec or "").strip()
    if text in CHAOS_PROFILES:
        text = CHAOS_PROFILES[text]
    errors: dict[int, float] = {}
    fields: dict[str, Any] = {}
    for raw in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = raw.partition(":")
        kind = kind.strip().lower()
        if not sep:
            profiles = ", ".join(CHAOS_PROFILES)
            raise ValueError(
                f"chaos item {raw!r} needs 'kind:value' (e.g. 5000:0.05), or use a profile: "
                f"{profiles}"
            )
        try:
            if kind in ("latency", "nominal"):
                fields["latency_nominal"] = kind == "nominal"
                fixed, _, jitter = value.partition("+")
                fields["latency_ms"] = float(fixed)
                if jitter:
                    fields["jitter_ms"] = float(jitter)
            elif kind == "jitter":
                fields["jitter_ms"] = float(value)
            elif kind in ("created", "created5000", "5000-created"):
                fields["created_then_5000"] = float(value)
            elif kind in ("drop", "truncate"):
                fields[kind] = float(value)
            elif kind.isdigit():
                errors[int(kind)] = float(value)
            else:
                raise ValueError(f"unknown chaos kind {kind!r}")
        except ValueError as exc:
            raise ValueError(
                f"bad chaos item {raw!r}: {exc}; kinds are <code>, created, drop, truncate, "
                "latency, nominal"
            ) from None
    return ChaosConfig(errors=errors, **fields)


def is_chaos_route(path: str) -> bool:
    """Chaos touches the Kling API, never the sandbox's own ``/sandbox/...`` routes."""
    return not path.startswith("/sandbox")


class ChaosEngine:
    """The seeded dice of one sandbox: which fault, if any, a request gets; counts each."""

    def __init__(self, config: ChaosConfig, *, clock: Clock, seed: int) -> None:
        self.config = config
        self.clock = clock
        self._seed = seed
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(f"chaos:{seed}")

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(f"chaos:{self._seed}")
            self.counts.clear()

    def count(self, fault: str) -> None:
        """Note a fault that was applied (``counts`` feeds the ground truth)."""
        with self._lock:
            self.counts[fault] += 1

    def draw(self, create: bool) -> tuple[str | None, float]:
        """Pick at most one fault for a request, and its latency in real seconds."""
        cfg = self.config
        with self._lock:
            latency = cfg.latency_ms + (self._rng.random() * cfg.jitter_ms if cfg.jitter_ms else 0)
            u = self._rng.random()
            choices: list[tuple[str, float]] = [(f"error:{c}", r) for c, r in cfg.errors.items()]
            if create:
                choices.append(("created", cfg.created_then_5000))
            choices += [("drop", cfg.drop), ("truncate", cfg.truncate)]
            edge = 0.0
            for name, rate in choices:
                edge += rate
                if u < edge:
                    return name, latency / 1000.0
        return None, latency / 1000.0


class ChaosMiddleware:
    """ASGI middleware that injects the faults an :class:`ChaosEngine` draws.

    ``is_create(path)`` tells which POSTs create tasks (only those get "created, then 5000").
    """

    def __init__(self, app: ASGIApp, engine: ChaosEngine, is_create: Callable[[str], bool]) -> None:
        self.app = app
        self.engine = engine
        self._is_create = is_create

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        if (
            scope["type"] != "http"
            or not engine.config.enabled
            or not is_chaos_route(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        create = scope["method"] == "POST" and self._is_create(scope["path"])
        fault, latency = engine.draw(create)
        if latency > 0:
            # Real latency is a property of the network: real seconds whatever the time scale;
            # nominal latency is scaled like every other duration.
            nominal = engine.config.latency_nominal
            await engine.clock.sleep(latency if nominal else latency / engine.clock.scale)
        if fault is None:
            await self.app(scope, receive, send)
            return
        logger.debug("chaos: %s on %s %s", fault, scope["method"], scope["path"])
        if fault.startswith("error:"):
            code = int(fault.partition(":")[2])
            engine.count(fault)
            scope[CODE_KEY] = code
            await _send_error(send, code)
            return
        status, headers, body = await _capture(self.app, scope, receive)
        if fault == "created":
            if status == 200:
                engine.count(fault)
                scope[CODE_KEY] = 5000
                await _send_error(send, 5000)
            else:  # nothing was created: pass the real refusal through
                await _replay(send, status, headers, body)
            return
        if fault == "drop":
            engine.count(fault)
            scope[CODE_KEY] = "dropped"
            scope[FAULT_KEY] = "dropped"  # the delivery layer hangs up in place of the answer
            await _replay(send, status, headers, body)
            return
        engine.count(fault)
        scope[CODE_KEY] = "truncated"
        cut = body[: max(1, len(body) // 2)]
        await _replay(send, status, headers, cut)


async def _send_error(send: Send, code: int) -> None:
    headers = [(b"content-type", b"application/json")]
    if code == 1302:
        headers.append((b"retry-after", b"1"))
    body = dumps(failure(code, USUAL_MESSAGES.get(code, "error")))
    await _replay(send, HTTP_STATUS.get(code, 500), headers, body)


def _without_length(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != b"content-length"]


async def _replay(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*_without_length(headers), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _capture(
    app: ASGIApp, scope: Scope, receive: Receive
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the app and keep its whole answer instead of sending it."""
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return status, headers, b"".join(chunks)
