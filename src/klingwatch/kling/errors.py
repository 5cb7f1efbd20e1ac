"""What can go wrong talking to Kling: :class:`KlingError` and its branch, and the Kling layer's
own local checks.

The whole tree, with the branch of this module in it, is drawn in :mod:`klingwatch.errors`. Here:

* :class:`KlingError` and everything under it: what Kling or the network did (an error envelope,
  no answer, a garbled answer, a callback that does not verify, a task still running at a wait's
  deadline, the ``/tasks`` style refused).
* Local checks of the Kling layer, which are *not* ``KlingError`` because Kling said nothing:
  :class:`MissingCredentials` and :class:`UnknownProduct` (both a
  :class:`~klingwatch.errors.ConfigurationError`) and :class:`RequestValidationError` (a request
  Kling would refuse, found before sending). ``ConfigurationError`` itself is defined in
  :mod:`klingwatch.errors` and re-exported here, since the client raises it for local mistakes.

Every ``KlingError`` says two things a caller needs: ``retryable`` (may the same request succeed
later without any change?) and ``may_exist`` (after a *create*: could the task have been created
even though no success answer arrived?). A create that raised ``may_exist=True`` must be looked up
by its ``external_task_id`` before anything is sent again. Both are class defaults that an instance
may override (a connection refused before sending cannot have created anything). Every
``KlingError`` also has ``status_code``, ``code`` and ``request_id`` (``None`` where there is no
Kling answer to take them from), so a caller can log any of them the same way.

:func:`error_for` is the one place that maps (HTTP status, Kling code) to a class; unknown codes
fall back by HTTP status.
"""

from __future__ import annotations

from typing import Any

from klingwatch.errors import ConfigurationError, KlingwatchError

__all__ = [
    "APIError",
    "AccountError",
    "AuthenticationError",
    "BadCallback",
    "BadResponse",
    "ConcurrencyLimited",
    "ConfigurationError",
    "ContentPolicyError",
    "InsufficientBalance",
    "InvalidRequest",
    "KlingConnectionError",
    "KlingError",
    "KlingTimeout",
    "MissingCredentials",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RequestValidationError",
    "ServerError",
    "ServiceUnavailable",
    "TaskNotFound",
    "TasksStyleRefused",
    "TokenExpired",
    "TransportError",
    "UnknownProduct",
    "UnknownTaskStatus",
    "WaitTimeout",
    "WebhookVerificationError",
    "error_for",
]

#: How much of a raw payload an error message quotes (the whole payload stays on the error).
_QUOTE = 300
#: HTTP statuses that refuse a request before it is acted on: a create answered so created nothing.
_REFUSED_STATUSES = frozenset({401, 403})


class KlingError(KlingwatchError):
    """What Kling or the network did: the root of this module's branch."""

    #: May the same request succeed later, unchanged?
    retryable: bool = False
    #: After a create: may the task exist although no success answer arrived?
    may_exist: bool = False
    #: HTTP status of Kling's answer, if there was one.
    status_code: int | None = None
    #: Kling's error code, if it sent one.
    code: int | None = None
    #: Kling's request id, if it sent one (quote it to Kling support).
    request_id: str | None = None


class MissingCredentials(ConfigurationError):
    """No usable credentials were given."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no Kling credentials: set KLING_ACCESS_KEY and KLING_SECRET_KEY (an AK/SK pair "
            "from the Kling developer console), or KLING_API_KEY"
        )


class UnknownProduct(ConfigurationError, KeyError):
    """A product name or API path that is not in the registry.

    Also a :class:`KeyError`, so ``except KeyError`` around a registry lookup keeps working.
    """

    def __init__(self, name: object, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown product {name!r}; known products: {', '.join(known)}")


class TasksStyleRefused(KlingError):
    """The server does not serve the 2026 ``/tasks`` style to these credentials (401/1002 "does
    not support AK/SK", 403, 404). The client remembers it (:attr:`KlingClient.tasks_api
    <klingwatch.kling.client.KlingClient.tasks_api>` turns false), so every caller reads the
    legacy way from then on; the server's answer is the ``__cause__``."""


class RequestValidationError(KlingwatchError):
    """A create request that Kling would refuse; found before sending anything (so it is not a
    :class:`KlingError`: Kling said nothing).

    ``problems`` lists ``(field, what is wrong and how to fix it)`` pairs; ``field`` is a dotted
    path into the request (``camera_control.config.zoom``) or ``""`` for the request as a whole.
    The message is one line: ``invalid <product> request: <field>: <problem>; ...``.
    """

    def __init__(self, product: str, problems: list[tuple[str, str]]) -> None:
        self.product = product
        self.problems = problems
        detail = "; ".join(f"{field}: {msg}" if field else msg for field, msg in problems)
        super().__init__(f"invalid {product} request: {detail}")


class WebhookVerificationError(KlingError):
    """A callback's Standard Webhooks signature or timestamp did not verify."""


class BadCallback(KlingError):
    """A callback body that is not a Kling task object in any known form."""


class WaitTimeout(KlingError):
    """``wait()`` reached its deadline before the task finished.

    ``task`` is the last state seen (``None`` if the task was never read successfully).
    """

    def __init__(self, message: str, task: Any = None) -> None:
        super().__init__(message)
        self.task = task


class TransportError(KlingError):
    """No usable answer arrived; the request may or may not have reached Kling.

    ``may_exist`` defaults to ``True``; pass ``may_exist=False`` when the request provably never
    left (e.g. the connection was refused), so a create can be sent again without a lookup.
    """

    retryable = True
    may_exist = True

    def __init__(self, message: str, *, may_exist: bool | None = None) -> None:
        super().__init__(message)
        if may_exist is not None:
            self.may_exist = may_exist


class KlingConnectionError(TransportError):
    """The connection was refused, reset, or dropped before the answer was complete."""


class KlingTimeout(TransportError):
    """Kling did not answer in time."""


class BadResponse(KlingError):
    """An answer that is not Kling's JSON envelope (HTML error page, truncated body, ...).

    A create that got a bad response may have gone through: look it up before resending. Not
    so when the HTTP status was 401 or 403: a refused request created nothing.
    """

    retryable = True
    may_exist = True

    def __init__(
        self, message: str, *, status_code: int | None = None, body: bytes | str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        if status_code in _REFUSED_STATUSES:
            self.may_exist = False


class UnknownTaskStatus(BadResponse):
    """A task carried a status klingwatch does not know; ``payload`` is the raw task object.

    Not retryable: reading the same task again is not expected to help, and guessing a status
    could call a live task dead. ``may_exist`` is true: a create answer with such a status
    means the task *was* created.
    """

    retryable = False
    may_exist = True

    def __init__(self, status: object, payload: Any) -> None:
        what = "no task status" if status is None else f"unknown task status {status!r}"
        super().__init__(
            f"{what} (expected submitted, processing, succeed(ed) or failed); "
            f"upgrade klingwatch if Kling added a status; raw task: {_quote(payload)}"
        )
        self.status = status
        self.payload = payload


class APIError(KlingError):
    """Kling answered with an error envelope ``{code, message, request_id}``.

    ``kling_message`` is Kling's own text; ``str(error)`` adds the HTTP status, code, request id
    and what to do about it. ``retry_after`` is the ``Retry-After`` header in seconds, if any.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: int | None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.kling_message = message
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        where = f"HTTP {status_code}" + (f", code {code}" if code is not None else "")
        text = f"{message or 'Kling error'} ({where}"
        text += f", request_id {request_id})" if request_id else ")"
        hint = self.hint()
        super().__init__(f"{text}: {hint}" if hint else text)

    def hint(self) -> str:
        """What the caller should do about it."""
        return ""


class AuthenticationError(APIError):
    """Kling refused the credentials (401, codes 1000-1002)."""

    def hint(self) -> str:
        return (
            "Kling refused the credentials; check KLING_ACCESS_KEY/KLING_SECRET_KEY or "
            "KLING_API_KEY (the new-standard endpoints take an API key only)"
        )


class TokenExpired(AuthenticationError):
    """The JWT was not yet valid or had expired (401, 1003/1004): re-sign and retry once."""

    retryable = True

    def hint(self) -> str:
        return "the signed token was not yet valid or expired; check this machine's clock"


class AccountError(APIError):
    """The account cannot take work (abnormal, in arrears, IP whitelist): stop and alert."""

    def hint(self) -> str:
        return "the Kling account cannot take work now; see the Kling console"


class InsufficientBalance(AccountError):
    """The resource pack is exhausted or expired (1102): pause submissions."""

    def hint(self) -> str:
        return "the resource pack is exhausted or expired; top it up, then resume"


class PermissionDenied(APIError):
    """No permission for this API or model (403, 1103)."""

    def hint(self) -> str:
        return "this account has no access to this API or model"


class InvalidRequest(APIError):
    """Kling refused the parameters (400, 1200/1201); sending it again unchanged fails again."""

    def hint(self) -> str:
        return "fix the request; sending it again unchanged will fail again"


class TaskNotFound(InvalidRequest):
    """A lookup found no such task (``error_for(..., lookup=True)`` only)."""

    def hint(self) -> str:
        return "no task with that id on this account"


class NotFound(APIError):
    """Invalid method or resource not found (404, 1202/1203) outside a task lookup."""

    def hint(self) -> str:
        return "no such endpoint or resource"


class ContentPolicyError(APIError):
    """Kling's platform or content-security policy refused the request (1300/1301)."""

    def hint(self) -> str:
        return "Kling's content policy refused this request; change the prompt or inputs"


class RateLimited(APIError):
    """Too many requests (429, 1302): back off and retry, honouring ``retry_after``."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)

    def hint(self) -> str:
        return "too many requests; back off and retry"


class ConcurrencyLimited(APIError):
    """Every concurrency slot of the resource pack is busy (1303). The task was not created."""

    retryable = True

    def hint(self) -> str:
        return "all concurrency slots are busy; send again when a task finishes"


class ServerError(APIError):
    """Kling failed internally (5000, 5002): retry later; a create may have gone through."""

    retryable = True
    may_exist = True

    def hint(self) -> str:
        return (
            "Kling had an internal error; retry later (a create may have gone through: look it "
            "up by external_task_id before sending it again)"
        )


class ServiceUnavailable(ServerError):
    """Kling is under maintenance (503, 5001)."""

    # Maintenance: Kling says the service is down, so a create did not go through.
    may_exist = False

    def hint(self) -> str:
        return "Kling is under maintenance; retry later"


_BY_CODE: dict[int, type[APIError]] = {
    1000: AuthenticationError,
    1001: AuthenticationError,
    1002: AuthenticationError,
    1003: TokenExpired,
    1004: TokenExpired,
    1100: AccountError,
    1101: AccountError,
    1102: InsufficientBalance,
    1103: PermissionDenied,
    1200: InvalidRequest,
    1201: InvalidRequest,
    1202: NotFound,
    1203: NotFound,
    1300: ContentPolicyError,
    1301: ContentPolicyError,
    1302: RateLimited,
    1303: ConcurrencyLimited,
    1304: AccountError,
    5000: ServerError,
    5001: ServiceUnavailable,
    5002: ServerError,
}


def _by_status(status_code: int) -> type[APIError]:
    if status_code == 401:
        return AuthenticationError
    if status_code == 403:
        return PermissionDenied
    if status_code == 404:
        return NotFound
    if status_code == 429:
        return RateLimited
    if status_code == 503:
        return ServiceUnavailable
    if status_code >= 500:
        return ServerError
    return InvalidRequest


def _looks_not_found(message: str) -> bool:
    text = message.lower()
    return "not found" in text or "not exist" in text or "no such task" in text


def _int_code(code: object) -> int | None:
    # Kling sends an int; a proxy may send "1201". Anything else is no code at all.
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code.strip())
    return None


def _quote(payload: Any) -> str:
    text = repr(payload)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "..."


def error_for(
    status_code: int,
    code: int | str | None,
    message: str | None,
    *,
    request_id: str | None = None,
    body: Any = None,
    retry_after: float | None = None,
    lookup: bool = False,
) -> APIError:
    """The error for an error envelope: by Kling code, else by HTTP status.

    ``lookup=True`` marks a read of one task by id or external id: a "not found" answer there
    becomes :class:`TaskNotFound` whichever way the server spells it (seen live: 400/1201
    "Task not found"; documented: 404/1203; a bare 404). 404/1202 ("invalid method") stays
    :class:`NotFound` unless its message says "not found": a wrong URL must never read as
    "the task does not exist", or a caller recovering an ambiguous create would send it twice.
    """
    kling_code = _int_code(code)
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    cls = _BY_CODE.get(kling_code) if kling_code is not None else None
    if cls is None:
        cls = _by_status(status_code)
    if lookup and (
        kling_code == 1203
        or (cls in (InvalidRequest, NotFound) and _looks_not_found(text))
        or (kling_code is None and status_code == 404)
    ):
        cls = TaskNotFound
    return cls(
        text,
        status_code=status_code,
        code=kling_code,
        request_id=request_id,
        body=body,
        retry_after=retry_after,
    )
