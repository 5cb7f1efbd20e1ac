"""KLING_PROTOCOL.md section 6, row by row: shared by the error and client tests."""

from __future__ import annotations

from klingwatch.kling.errors import (
    AccountError,
    AuthenticationError,
    ConcurrencyLimited,
    ContentPolicyError,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TokenExpired,
)

# (HTTP status, code, class, retryable, may_exist): KLING_PROTOCOL.md section 6, row by row.
ERROR_TABLE = [
    (401, 1000, AuthenticationError, False, False),
    (401, 1001, AuthenticationError, False, False),
    (401, 1002, AuthenticationError, False, False),
    (401, 1003, TokenExpired, True, False),
    (401, 1004, TokenExpired, True, False),
    (429, 1100, AccountError, False, False),
    (429, 1101, AccountError, False, False),
    (429, 1102, InsufficientBalance, False, False),
    (403, 1103, PermissionDenied, False, False),
    (400, 1200, InvalidRequest, False, False),
    (400, 1201, InvalidRequest, False, False),
    (404, 1202, NotFound, False, False),
    (404, 1203, NotFound, False, False),
    (400, 1300, ContentPolicyError, False, False),
    (400, 1301, ContentPolicyError, False, False),
    (429, 1302, RateLimited, True, False),
    (429, 1303, ConcurrencyLimited, True, False),
    (429, 1304, AccountError, False, False),
    (500, 5000, ServerError, True, True),
    (503, 5001, ServiceUnavailable, True, False),
    (504, 5002, ServerError, True, True),
]
