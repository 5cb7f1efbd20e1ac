"""Everything that can go wrong talking to Kling, as one tree.

::

    KlingError                      root: catch this to catch everything klingwatch.kling raises
    ├── ConfigurationError          bad or missing local setup (never reaches the network)
    │   └── MissingCredentials      no KLING_ACCESS_KEY/KLING_SECRET_KEY and no KLING_API_KEY
    ├── RequestValidationError      a create request Kling would refuse, caught before sending
    ├── WebhookVerificationError    a callback whose signature or timestamp does not check out
    ├── BadCallback                 a callback body that is not a Kling task in any known form
    ├── WaitTimeout                 wait() passed its deadline; carries the last task seen
    ├── TransportError              no usable answer: the request may or may not have arrived
    │   ├── KlingConnectionError    refused, reset, dropped mid-answer
    │   └── KlingTimeout            no answer in time
    ├── BadResponse                 an answer that is not Kling's envelope (HTML, truncated JSON)
    │   └── UnknownTaskStatus       a task status this version does not know (payload attached)
    └── APIError                    Kling answered with an error envelope
        ├── AuthenticationError     401 · 1000-1004
        │   └── TokenExpired        401 · 1003, 1004 (the client re-signs and retries once)
        ├── AccountError            429 · 1100, 1101, 1304 (account abnormal, arrears, IP whitelist)
        │   └── InsufficientBalance 429 · 1102 (resource pack exhausted or expired)
        ├── PermissionDenied        403 · 1103
        ├── InvalidRequest          400 · 1200, 1201
        │   └── TaskNotFound        400 · 1201 "Task not found", or 404 · 1202/1203
        ├── NotFound                404 · 1202, 1203 (invalid method / resource not found)
        ├── ContentPolicyError      400 · 1300, 1301
        ├── RateLimited             429 · 1302
        ├── ConcurrencyLimited      429 · 1303 (the task was *not* created)
        └── ServerError             500/503/504 · 5000-5002
            └── ServiceUnavailable  503 · 5001 (maintenance)

Every class says two things a caller needs: ``retryable`` (may the same request succeed later
without any change?) and ``may_exist`` (after a *create*: could the task have been created even
though no success answer arrived?). A create that raised ``may_exist=True`` must be looked up by its
``external_task_id`` before anything is sent again.

:func:`error_for` is the one place that maps (HTTP status, Kling code) to a class; unknown codes
fall back by HTTP status.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    "TokenExpired",
    "TransportError",
    "UnknownTaskStatus",
    "WaitTimeout",
    "WebhookVerificationError",
    "error_for",
]


class KlingError(Exception):
    """Root of every error klingwatch.kling raises."""

    #: May the same request succeed later, unchanged?
    retryable: ClassVar[bool] = False
    #: After a create: may the task exist although no success answer arrived?
    may_exist: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(KlingError):
    """Local setup is wrong; nothing was sent."""


class MissingCredentials(ConfigurationError):
    """No usable credentials were given."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no Kling credentials: set KLING_ACCESS_KEY and KLING_SECRET_KEY (an AK/SK pair "
            "from the Kling developer console), or KLING_API_KEY"
        )


class RequestValidationError(KlingError):
    """A create request that Kling would refuse; found before sending anything.

    ``problems`` lists ``(field, what is wrong and how to fix it)`` pairs.
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
    """No usable answer arrived; the request may or may not have reached Kling."""

    retryable = True
    may_exist = True


class KlingConnectionError(TransportError):
    """The connection was refused, reset, or dropped before the answer was complete."""


class KlingTimeout(TransportError):
    """Kling did not answer in time."""


class BadResponse(KlingError):
    """An answer that is not Kling's JSON envelope (HTML error page, truncated body, ...).

    A create that got a bad response may have gone through: look it up before resending.
    """

    retryable = True
    may_exist = True

    def __init__(
        self, message: str, *, status_code: int | None = None, body: bytes | str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class UnknownTaskStatus(BadResponse):
    """A task carried a status klingwatch does not know; ``payload`` is the raw task object."""

    retryable = False
    may_exist = False

    def __init__(self, status: object, payload: Any) -> None:
        super().__init__(
            f"unknown task status {status!r} (expected submitted, processing, succeed(ed) or "
            f"failed); raw task: {payload!r}"
        )
        self.status = status
        self.payload = payload


class APIError(KlingError):
    """Kling answered with an error envelope ``{code, message, request_id}``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: int | None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.kling_message = message
        self.request_id = request_id
        self.body = body
        where = f"HTTP {status_code}" + (f", code {code}" if code is not None else "")
        text = f"{message} ({where}"
        text += f", request_id {request_id})" if request_id else ")"
        hint = self.hint()
        super().__init__(f"{text}: {hint}" if hint else text)

    def hint(self) -> str:
        """What the caller should do about it."""
        return ""


class AuthenticationError(APIError):
    def hint(self) -> str:
        return (
            "Kling refused the credentials; check KLING_ACCESS_KEY/KLING_SECRET_KEY or "
            "KLING_API_KEY (the /tasks-style endpoints take an API key only)"
        )


class TokenExpired(AuthenticationError):
    retryable = True

    def hint(self) -> str:
        return "the signed token was not yet valid or expired; check this machine's clock"


class AccountError(APIError):
    def hint(self) -> str:
        return "the Kling account cannot take work now; see the Kling console"


class InsufficientBalance(AccountError):
    def hint(self) -> str:
        return "the resource pack is exhausted or expired; top it up, then resume"


class PermissionDenied(APIError):
    def hint(self) -> str:
        return "this account has no access to this API or model"


class InvalidRequest(APIError):
    def hint(self) -> str:
        return "fix the request; sending it again unchanged will fail again"


class TaskNotFound(InvalidRequest):
    def hint(self) -> str:
        return "no task with that id on this account"


class NotFound(APIError):
    def hint(self) -> str:
        return "no such endpoint or resource"


class ContentPolicyError(APIError):
    def hint(self) -> str:
        return "Kling's content policy refused this request; change the prompt or inputs"


class RateLimited(APIError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)

    def hint(self) -> str:
        return "too many requests; back off and retry"


class ConcurrencyLimited(APIError):
    """Every concurrency slot of the resource pack is busy. The task was not created."""

    retryable = True

    def hint(self) -> str:
        return "all concurrency slots are busy; send again when a task finishes"


class ServerError(APIError):
    retryable = True
    may_exist = True

    def hint(self) -> str:
        return "Kling had an internal error; retry later (a create may have gone through)"


class ServiceUnavailable(ServerError):
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
    return "not found" in text or "not exist" in text


def error_for(
    status_code: int,
    code: int | None,
    message: str,
    *,
    request_id: str | None = None,
    body: Any = None,
    retry_after: float | None = None,
    lookup: bool = False,
) -> APIError:
    """The error for an error envelope: by Kling code, else by HTTP status.

    ``lookup=True`` marks a read of one task (or list): a "not found" answer there becomes
    :class:`TaskNotFound` whichever way the server spells it (seen live: 400/1201
    "Task not found"; documented: 404/1203).
    """
    cls = _BY_CODE.get(code) if code is not None else None
    if cls is None:
        cls = _by_status(status_code)
    if lookup and (
        code in (1202, 1203)
        or (cls is InvalidRequest and _looks_not_found(message))
        or (code is None and status_code == 404)
    ):
        cls = TaskNotFound
    kw: dict[str, Any] = {
        "status_code": status_code,
        "code": code,
        "request_id": request_id,
        "body": body,
    }
    if cls is RateLimited:
        return RateLimited(message, retry_after=retry_after, **kw)
    return cls(message, **kw)
