"""Scripted answers: what the next requests about a task get, instead of the usual answer.

Chaos (:mod:`klingwatch.sandbox.chaos`) is dice; a script is a plan a test writes down::

    script = app.state.sandbox.script
    script.on_create("line-0", "timeout")                      # its next create: no answer
    script.on_create("line-1", Answer.error(1302, headers={"Retry-After": "90"}))
    script.on_create("line-2", "created-then-500")             # made, then answered 500/5000
    script.on_read("line-3", Answer.error(5000), times=None)   # every read of it, until cleared
    script.on_route("GET /tasks", Answer.error(1202))           # the next GET /tasks, whatever
    script.clear()

A rule answers the next ``times`` requests it matches (``None``: every one, until
:meth:`Script.clear`), then the sandbox answers as usual again; rules for one key are used in
the order given. What a request matches, first found first used:

* a **create** carrying external id X: ``on_create(X)``, then ``on_create("*")``, then its route;
* a **read** naming X (``GET <path>/X``, ``?external_task_id=X``, ``GET /tasks?task_ids=`` or
  ``?external_task_ids=`` listing X, X being a task id or an external id, of the task read or
  of the one asked for): ``on_read(X)``, then ``on_read("*")`` (any read, list pages included),
  then its route;
* any request: ``on_route(route)``, the route named as ``/sandbox/stats`` names it
  (``"POST /v1/videos/text2video"``, ``"GET /tasks"``, ``"POST /{product}/{model}"``).

An :class:`Answer` is one of: ``serve`` (the usual answer; on a create, the task is made, with
an optional :class:`Plan` of its life), ``error`` (Kling's error
envelope, any status, code, message and headers), ``raw`` (these bytes, this status and content
type, nothing added: a proxy's page, a truncated body), ``timeout`` (no answer until the client
gives up) or ``drop`` (the connection closes mid-answer). On a create, ``created=True`` makes the
task first and then answers ``reply``: the "it may exist" cases. In a config, a list in JSON or
on ``POST /sandbox/script``, an answer may be written short: ``"created"``, ``"timeout"``,
``"drop"``, a code (``1302``), ``"created-then-500"``, ``"created-then-timeout"``,
``"created-then-drop"``, or an object of :class:`Answer`'s fields.

Scripted answers count in the ground truth like any other: requests by route and answer,
``creates_seen``, create refusals by code; ``/sandbox/stats`` adds how many each kind gave.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter, deque
from collections.abc import Iterable
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from klingwatch.clock import Clock
from klingwatch.kling.envelope import HTTP_STATUS
from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox.chaos import USUAL_MESSAGES

if TYPE_CHECKING:
    from klingwatch.sandbox.lifecycle import Draw

__all__ = ["ANY", "Answer", "Plan", "Script", "ScriptConfig", "ScriptedAnswer"]

#: The key of a rule that matches any create, or any read.
ANY = "*"

Reply = Literal["serve", "error", "raw", "timeout", "drop"]


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """A made task's life fixed by a script instead of drawn: nominal seconds queued and
    running, and the reason it fails with. ``None`` keeps the draw's."""

    queue: float | None = None
    run: float | None = None
    fail: str | None = None

    def apply(self, draw: Draw, clock: Clock) -> Draw:
        """``draw`` with this plan's choices in place of its own."""
        return dataclasses.replace(
            draw,
            queue=draw.queue if self.queue is None else clock.scaled(self.queue),
            run=draw.run if self.run is None else clock.scaled(self.run),
            outcome=draw.outcome if self.fail is None else TaskStatus.FAILED,
            reason=draw.reason if self.fail is None else self.fail,
        )


class Answer(BaseModel):
    """One scripted answer (see the module docstring); build one with the class methods."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reply: Reply = "serve"
    #: On a create: make the task first, then answer ``reply`` (ignored for ``serve``).
    created: bool = False
    #: ``error``: the HTTP status (default: the code's, KLING_PROTOCOL.md section 6);
    #: ``raw``: the status line's.
    status: int | None = Field(default=None, ge=100, le=599)
    code: int | None = None
    message: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: ``raw``: the body, sent as it is.
    body: bytes = b""
    content_type: str = "application/json"
    #: A made task's life instead of the seeded draw: nominal seconds queued and running, and
    #: the reason it fails with (each ``None``: as drawn).
    queue: float | None = Field(default=None, ge=0)
    run: float | None = Field(default=None, ge=0)
    fail: str | None = None
    #: How many matching requests get this answer; ``None``: every one until cleared.
    times: int | None = Field(default=1, ge=1)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def served(
        cls, *, queue: float | None = None, run: float | None = None, fail: str | None = None
    ) -> Answer:
        """The usual answer; on a create, the task is made (``queue``/``run``/``fail`` fix its
        life)."""
        return cls(queue=queue, run=run, fail=fail)

    @classmethod
    def error(
        cls,
        code: int,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Kling's error envelope with ``code`` (HTTP status: the code's unless given)."""
        return cls(reply="error", code=code, message=message, status=status, headers=headers or {})

    @classmethod
    def raw(
        cls,
        status: int,
        body: bytes | str = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Exactly this answer: ``status``, ``body`` and ``content_type``, nothing added."""
        data = body.encode() if isinstance(body, str) else body
        return cls(
            reply="raw", status=status, body=data, content_type=content_type, headers=headers or {}
        )

    @classmethod
    def timeout(cls) -> Answer:
        """No answer at all: the client's read times out."""
        return cls(reply="timeout")

    @classmethod
    def dropped(cls) -> Answer:
        """The connection closes before the answer is complete."""
        return cls(reply="drop")

    def after_creating(self) -> Answer:
        """This answer, given to a create after its task was made (the "may exist" cases)."""
        return self.model_copy(update={"created": True})

    def repeated(self, times: int | None) -> Answer:
        """This answer for ``times`` matching requests (``None``: every one until cleared)."""
        return type(self).model_validate({**self.model_dump(), "times": times})

    # -- reading short forms ----------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("an answer is a word, a code or an object, not a boolean")
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            return {"reply": "error", "code": int(value)}
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        created = text.startswith("created-then-")
        word = text.removeprefix("created-then-")
        if word in ("created", "serve"):
            return {"reply": "serve"}
        if word in ("timeout", "drop"):
            return {"reply": word, "created": created}
        if word.isdigit():
            code = int(word)
            # "created-then-500" names an HTTP status: 500/5000, as Kling's internal error.
            code = {500: 5000, 503: 5001, 504: 5002}.get(code, code)
            return {"reply": "error", "code": code, "created": created}
        raise ValueError(
            f"unknown answer {value!r}: use created, timeout, drop, a Kling code, "
            "created-then-<code|timeout|drop>, or an object"
        )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.reply == "error" and self.code is None:
            raise ValueError("an error answer needs a Kling code")
        if self.reply == "raw" and self.status is None:
            raise ValueError("a raw answer needs an HTTP status")
        return self

    # -- using ------------------------------------------------------------------------------
    @property
    def makes_task(self) -> bool:
        """On a create: whether the task is made."""
        return self.reply == "serve" or self.created

    @property
    def http_status(self) -> int:
        """The HTTP status this answer is sent with (``error`` and ``raw``)."""
        if self.status is not None:
            return self.status
        return HTTP_STATUS.get(self.code or 0, 400)

    @property
    def error_message(self) -> str:
        """The message of an error answer: the scripted one, else Kling's usual words."""
        if self.message is not None:
            return self.message
        code = self.code or 0
        return USUAL_MESSAGES.get(code, f"scripted error {code}")

    def plan(self) -> Plan | None:
        """The life a made task is given, if the answer fixes any of it."""
        if self.queue is None and self.run is None and self.fail is None:
            return None
        return Plan(queue=self.queue, run=self.run, fail=self.fail)

    def describe(self) -> str:
        """One line for ``GET /sandbox/script`` and the counters: ``"created-then-error 5000"``."""
        what: str = self.reply
        if self.reply == "error":
            what = f"error {self.http_status}/{self.code}"
        elif self.reply == "raw":
            what = f"raw {self.http_status} ({len(self.body)} bytes {self.content_type})"
        if self.created and self.reply != "serve":
            what = f"created-then-{what}"
        return what


class ScriptConfig(BaseModel):
    """Scripted answers a sandbox starts with (``SandboxConfig(script=...)``), by key: external
    ids for ``creates``, task or external ids for ``reads`` (``"*"``: any), route names for
    ``routes``. Each list is used in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    creates: dict[str, list[Answer]] = Field(default_factory=dict)
    reads: dict[str, list[Answer]] = Field(default_factory=dict)
    routes: dict[str, list[Answer]] = Field(default_factory=dict)


class ScriptedAnswer(Exception):
    """Raised by a route to give its scripted answer instead of the usual one; ``served`` is
    the usual answer when it was made anyway (a create that made its task)."""

    def __init__(self, answer: Answer, served: Any = None) -> None:
        super().__init__(answer.describe())
        self.answer = answer
        self.served = served


class _Rule:
    """An answer and how many more requests get it (``None``: no end)."""

    __slots__ = ("answer", "left")

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.left = answer.times


_Kind = Literal["creates", "reads", "routes"]
#: How many requests a rule answers; ``...``: as many as its answer says.
_Times = int | None | EllipsisType


class Script:
    """The scripted answers of one running sandbox (``app.state.sandbox.script``).

    Thread-safe: a test may script a sandbox that serves from another thread.
    """

    def __init__(self, config: ScriptConfig | None = None) -> None:
        self._config = config or ScriptConfig()
        self._lock = threading.Lock()
        self._rules: dict[_Kind, dict[str, deque[_Rule]]] = {}
        #: scripted answers given, by ``"<create|read|route> <answer>"``
        self.counts: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        """Back to the configured script, counters cleared."""
        with self._lock:
            self._rules = {"creates": {}, "reads": {}, "routes": {}}
            self.counts.clear()
        self.load(self._config)

    def load(self, config: ScriptConfig) -> None:
        """Add every rule of ``config`` after those already waiting."""
        kinds: dict[_Kind, dict[str, list[Answer]]] = {
            "creates": config.creates,
            "reads": config.reads,
            "routes": config.routes,
        }
        for kind, rules in kinds.items():
            for key, answers in rules.items():
                for answer in answers:
                    self._add(kind, key, answer, ...)

    def on_create(
        self, external_id: str, answer: Answer | str | int = "created", *, times: _Times = ...
    ) -> None:
        """The next ``times`` creates carrying ``external_id`` (``"*"``: any) get ``answer``.

        ``times`` (here and below): how many matching requests get it, ``None`` every one
        until :meth:`clear`; by default the answer's own ``times`` (1 unless it says).
        """
        self._add("creates", external_id, answer, times)

    def on_read(self, ident: str, answer: Answer | str | int, *, times: _Times = ...) -> None:
        """The next ``times`` reads of the task ``ident`` (a task id or an external id;
        ``"*"``: any read) get ``answer``."""
        self._add("reads", ident, answer, times)

    def on_route(self, route: str, answer: Answer | str | int, *, times: _Times = ...) -> None:
        """The next ``times`` requests to ``route`` (``"GET /tasks"``) get ``answer``."""
        self._add("routes", route, answer, times)

    def clear(self) -> None:
        """Forget every waiting rule (the counters stay)."""
        with self._lock:
            for rules in self._rules.values():
                rules.clear()

    def pending(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The waiting rules, for ``GET /sandbox/script``."""
        with self._lock:
            return {
                kind: {
                    key: [{"answer": r.answer.describe(), "left": r.left} for r in queue]
                    for key, queue in rules.items()
                    if queue
                }
                for kind, rules in self._rules.items()
            }

    # -- used by the routes -----------------------------------------------------------------
    def for_create(self, external_id: str | None, route: str) -> Answer | None:
        """The scripted answer of a create, or ``None`` to answer as usual."""
        keys = [external_id, ANY] if external_id is not None else [ANY]
        where: list[tuple[_Kind, str]] = [("creates", k) for k in keys]
        return self._take("create", [*where, ("routes", route)])

    def for_read(self, idents: Iterable[str], route: str) -> Answer | None:
        """The scripted answer of a read naming ``idents``, or ``None`` to answer as usual."""
        where: list[tuple[_Kind, str]] = [("reads", i) for i in dict.fromkeys(idents)]
        return self._take("read", [*where, ("reads", ANY), ("routes", route)])

    def _add(self, kind: _Kind, key: str, answer: Answer | str | int, times: _Times) -> None:
        parsed = answer if isinstance(answer, Answer) else Answer.model_validate(answer)
        if times is not ... and times != parsed.times:
            parsed = parsed.repeated(times)
        rule = _Rule(parsed)
        with self._lock:
            self._rules[kind].setdefault(key, deque()).append(rule)

    def _take(self, what: str, where: list[tuple[_Kind, str]]) -> Answer | None:
        with self._lock:
            for kind, key in where:
                queue = self._rules[kind].get(key)
                if not queue:
                    continue
                rule = queue[0]
                if rule.left is not None:
                    rule.left -= 1
                    if rule.left <= 0:
                        queue.popleft()
                via = "route" if kind == "routes" else what
                self.counts[f"{via} {rule.answer.describe()}"] += 1
                return rule.answer
        return None
