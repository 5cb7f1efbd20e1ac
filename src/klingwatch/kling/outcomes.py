"""What the answer to a create means, as one pure table: :func:`create_outcome`.

A create is where money is spent, so what each answer means is decided in exactly one place,
shaped like the ledger door's ``decide``: given the answer and how many sends of this task may
already have created it, the action to take. :meth:`KlingClient.create_and_wait
<klingwatch.kling.client.KlingClient.create_and_wait>` and the engine's submitter both follow it.

::

    answer                                   action         the task afterwards
    a Task (created, or found by lookup)     CREATED        exists, with Kling's task_id
    RequestValidationError (local check)     REJECT         never sent; it would not pass later
    400 · 1200/1201, 404 · 1202/1203,        REJECT         refused for good, with Kling's reason
      400 · 1300/1301
    400 · 1201 "external_task_id ... exists" LOOK_UP        an earlier send created it: look it up
    400 · 1200/1201 when ``sends > 1``       LOOK_UP        may be that duplicate in other words
    500 · 5000, 504 · 5002, timeout,         LOOK_UP        may exist: look it up by external id
      dropped connection, garbled answer                      before anything is sent again
    LOOKUP_MISS (lookup found nothing)       RESEND         never created: may be sent again
      ... once ``sends >= max_sends``        GIVE_UP        rejected, with an alert: sent that
                                                             often and never confirmed
    429 · 1303                               WAIT_FOR_SLOT  not created; sent when a slot frees
    429 · 1302, 503 · 5001, refused          BACK_OFF       not created; sent again after backoff
      connection
    401 · 1000-1004, 403 (1103 or none),     PAUSE          not created; every create stops until
      429 · 1100/1101/1102/1304, local setup                 the operator acts (1102 may resume)

``sends`` counts the sends of this task that may have created it, this one included: the ones
Kling answered ambiguously (a send answered 1303, 1302, 5001, 401 or 403 never counts: Kling
refused before creating anything). On
a resend, a 400 refusal may be Kling's "that external_task_id exists" in words the duplicate
match does not know, so it is looked up rather than believed. The cap is what ends a loop of
"ambiguous, not found, sent again": without it a permanent failure that looks ambiguous would be
paid for again and again.

Everything here is pure: no I/O, no clock; ``retry_after`` is Kling's ``Retry-After`` when it
sent one, for the caller's backoff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from klingwatch.errors import ConfigurationError
from klingwatch.kling.errors import (
    APIError,
    AuthenticationError,
    BadResponse,
    ConcurrencyLimited,
    ContentPolicyError,
    InvalidRequest,
    KlingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestValidationError,
    ServiceUnavailable,
    TaskNotFound,
    TransportError,
)
from klingwatch.kling.models import Task

__all__ = [
    "LOOKUP_MISS",
    "MAX_CREATE_SENDS",
    "CreateAction",
    "CreateOutcome",
    "LookupMiss",
    "create_outcome",
    "is_duplicate_external_id",
]

#: Sends of one task that may have created it, at most (then GIVE_UP).
MAX_CREATE_SENDS: Final = 3


class CreateAction(StrEnum):
    """What to do after a create's answer (see the module docstring's table)."""

    CREATED = "created"
    REJECT = "reject"
    LOOK_UP = "look_up"
    RESEND = "resend"
    GIVE_UP = "give_up"
    WAIT_FOR_SLOT = "wait_for_slot"
    BACK_OFF = "back_off"
    PAUSE = "pause"

    @property
    def created_nothing(self) -> bool:
        """Kling said, for sure, that this send created no task."""
        return self in (
            CreateAction.WAIT_FOR_SLOT,
            CreateAction.BACK_OFF,
            CreateAction.PAUSE,
            CreateAction.REJECT,
            CreateAction.RESEND,
        )


class LookupMiss:
    """The answer "a lookup by external id found no such task" (trusted: old enough)."""

    _instance: LookupMiss | None = None

    def __new__(cls) -> LookupMiss:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "LOOKUP_MISS"


#: The one :class:`LookupMiss`.
LOOKUP_MISS: Final = LookupMiss()


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """The table's verdict: the action, why, and Kling's ``Retry-After`` (seconds) if any."""

    action: CreateAction
    reason: str
    retry_after: float | None = None
    #: Kling's own message, where it sent one (what ``rejected`` tasks show as their reason).
    kling_message: str | None = None


# "external_task_id already exists", "duplicate external task id", "external_id is already in
# use": Kling's wording is not documented (seen live: 400/1201), so the match asks for the field
# and a word of duplication, and refuses negations ("does not exist" is a different 1201).
_EXTERNAL = re.compile(r"external[\s_-]*(task[\s_-]*)?id", re.IGNORECASE)
_DUPLICATE = re.compile(
    r"already\s+(exists?|used|in\s+use|taken)|duplicat|\bexists\b|\brepeat", re.IGNORECASE
)
_NEGATED = re.compile(r"\b(not|no|never)\b\s+(\w+\s+)?exist", re.IGNORECASE)


def is_duplicate_external_id(exc: KlingError) -> bool:
    """Whether a 400 refusal says the ``external_task_id`` is already taken (so the task exists)."""
    if not isinstance(exc, InvalidRequest) or isinstance(exc, TaskNotFound):
        return False
    text = exc.kling_message or ""
    return bool(_EXTERNAL.search(text) and _DUPLICATE.search(text) and not _NEGATED.search(text))


def create_outcome(
    answer: Task | BaseException | LookupMiss, *, sends: int, max_sends: int = MAX_CREATE_SENDS
) -> CreateOutcome:
    """The action for one answer about a create (pure; see the module docstring's table).

    ``answer`` is the created (or looked-up) :class:`Task`, the exception the create raised, or
    :data:`LOOKUP_MISS`. ``sends`` counts this task's sends that may have created it, this one
    included; ``max_sends`` caps them.
    """
    if isinstance(answer, Task):
        return CreateOutcome(CreateAction.CREATED, f"created as Kling task {answer.id}")
    if isinstance(answer, LookupMiss):
        if sends >= max_sends:
            return CreateOutcome(
                CreateAction.GIVE_UP,
                f"sent {sends} times without an answer that confirmed it, and no task with its "
                "external_task_id exists on Kling; not sending it again (check the Kling "
                "console, then `klingwatch retry` it if you still want it)",
            )
        return CreateOutcome(
            CreateAction.RESEND, "not found by external_task_id: it was never created"
        )
    if isinstance(answer, RequestValidationError):
        return CreateOutcome(CreateAction.REJECT, str(answer), kling_message=str(answer))
    if isinstance(answer, ConfigurationError):
        # Local setup refused before sending (a /tasks product without KLING_API_KEY, say):
        # nothing was sent, and nothing will be until the operator fixes it.
        return CreateOutcome(CreateAction.PAUSE, str(answer))
    if not isinstance(answer, KlingError):
        # A bug or an unforeseen failure after the request may have left: assume it did.
        return CreateOutcome(
            CreateAction.LOOK_UP, f"create failed unexpectedly ({answer!r}); looking it up"
        )
    return _for_error(answer, sends)


def _for_error(exc: KlingError, sends: int) -> CreateOutcome:
    message = exc.kling_message if isinstance(exc, APIError) else None
    retry_after = getattr(exc, "retry_after", None)
    if is_duplicate_external_id(exc):
        return CreateOutcome(
            CreateAction.LOOK_UP,
            f"external_task_id already used on Kling (an earlier send created it): {exc}",
        )
    if sends > 1 and type(exc) is InvalidRequest:
        return CreateOutcome(
            CreateAction.LOOK_UP,
            f"refused after an earlier send that may have created it; looking it up: {exc}",
            kling_message=message,
        )
    if isinstance(exc, ConcurrencyLimited):
        return CreateOutcome(CreateAction.WAIT_FOR_SLOT, str(exc), retry_after, message)
    if isinstance(exc, AuthenticationError | PermissionDenied) or (
        isinstance(exc, APIError) and exc.status_code in (401, 403)
    ):
        # Kling refused who we are before looking at the request: nothing was created.
        return CreateOutcome(CreateAction.PAUSE, str(exc), retry_after, message)
    if exc.may_exist:
        return CreateOutcome(
            CreateAction.LOOK_UP, f"create may have gone through: {exc}", retry_after, message
        )
    if isinstance(exc, RateLimited | ServiceUnavailable | TransportError):
        return CreateOutcome(CreateAction.BACK_OFF, str(exc), retry_after, message)
    if isinstance(exc, ContentPolicyError | NotFound | InvalidRequest):
        return CreateOutcome(CreateAction.REJECT, str(exc), kling_message=message or str(exc))
    if isinstance(exc, BadResponse):  # may_exist is True for these; kept for exhaustiveness
        return CreateOutcome(CreateAction.LOOK_UP, f"create may have gone through: {exc}")
    # Account states (1100/1101/1102/1304), and the /tasks style refused to these credentials.
    return CreateOutcome(CreateAction.PAUSE, str(exc), retry_after, message)
