"""Kling's errors: each row of the protocol's error table, the fallbacks, who is a KlingError."""

from __future__ import annotations

import inspect

import pytest
from error_table import ERROR_TABLE

from klingwatch.errors import ConfigurationError
from klingwatch.kling import errors
from klingwatch.kling.errors import (
    AccountError,
    APIError,
    AuthenticationError,
    BadResponse,
    ConcurrencyLimited,
    InvalidRequest,
    KlingConnectionError,
    KlingError,
    KlingTimeout,
    MissingCredentials,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestValidationError,
    ServerError,
    ServiceUnavailable,
    TaskNotFound,
    UnknownProduct,
    UnknownTaskStatus,
    error_for,
)


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "may_exist"), ERROR_TABLE)
def test_every_row_of_the_error_table_maps_to_its_class(
    status: int, code: int, cls: type[APIError], retryable: bool, may_exist: bool
) -> None:
    err = error_for(status, code, "kling says no", request_id="req-1", body={"code": code})

    assert type(err) is cls
    assert (err.retryable, err.may_exist) == (retryable, may_exist)
    assert (err.status_code, err.code, err.request_id) == (status, code, "req-1")
    assert err.kling_message == "kling says no"
    assert err.body == {"code": code}
    assert str(err).startswith(f"kling says no (HTTP {status}, code {code}, request_id req-1): ")
    assert isinstance(err, KlingError)


def test_the_account_and_balance_family_is_one_catch() -> None:
    assert isinstance(error_for(429, 1102, "Account balance not enough"), AccountError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, NotFound),
        (409, InvalidRequest),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailable),
        (504, ServerError),
    ],
)
def test_an_unknown_code_falls_back_by_http_status(status: int, cls: type[APIError]) -> None:
    err = error_for(status, 9999, "something new")

    assert type(err) is cls
    assert err.code == 9999


def test_a_missing_code_falls_back_by_http_status() -> None:
    err = error_for(500, None, "boom")

    assert type(err) is ServerError
    assert err.may_exist
    assert str(err).startswith("boom (HTTP 500): ")


def test_a_code_sent_as_a_string_is_read_as_the_number() -> None:
    err = error_for(429, "1303", "parallel task over resource pack limit")

    assert type(err) is ConcurrencyLimited
    assert err.code == 1303


def test_a_garbage_code_is_no_code() -> None:
    err = error_for(400, "oops", None)

    assert type(err) is InvalidRequest
    assert err.code is None
    assert str(err).startswith("Kling error (HTTP 400): ")


def test_the_code_wins_over_a_mismatched_status() -> None:
    assert type(error_for(400, 1302, "slow down")) is RateLimited


def test_retry_after_is_kept_on_every_api_error() -> None:
    limited = error_for(429, 1302, "rate limit", retry_after=7.0)
    maintenance = error_for(503, 5001, "maintenance", retry_after=60.0)

    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7.0
    assert maintenance.retry_after == 60.0
    assert error_for(400, 1201, "bad").retry_after is None


def test_rate_limited_can_still_be_built_directly() -> None:
    err = RateLimited("rate limit", retry_after=3.0, status_code=429, code=1302)

    assert err.retry_after == 3.0
    assert err.retryable


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, 1201, "Task not found by id/external id"),  # seen live
        (404, 1203, "resource not found"),  # documented
        (404, 1203, ""),
        (404, None, "Not Found"),
        (404, 1202, "task not exist"),
    ],
)
def test_a_lookup_reads_every_spelling_of_not_found_as_task_not_found(
    status: int, code: int | None, message: str
) -> None:
    err = error_for(status, code, message, lookup=True)

    assert type(err) is TaskNotFound
    assert not err.retryable
    assert isinstance(err, InvalidRequest)


def test_a_lookup_answered_invalid_method_is_not_task_not_found() -> None:
    # A wrong URL must never read as "the task does not exist": recovery would resend the create.
    err = error_for(404, 1202, "invalid method", lookup=True)

    assert type(err) is NotFound


def test_a_lookup_with_a_real_parameter_error_stays_invalid_request() -> None:
    assert type(error_for(400, 1201, "pageSize out of range", lookup=True)) is InvalidRequest


def test_not_found_outside_a_lookup_stays_what_the_table_says() -> None:
    assert type(error_for(400, 1201, "Task not found")) is InvalidRequest
    assert type(error_for(404, 1203, "resource not found")) is NotFound


def test_transport_errors_may_exist_unless_told_otherwise() -> None:
    timeout = KlingTimeout("no answer within 30 s")
    refused = KlingConnectionError("connection refused", may_exist=False)

    assert (timeout.retryable, timeout.may_exist) == (True, True)
    assert (refused.retryable, refused.may_exist) == (True, False)
    assert KlingConnectionError.may_exist  # the class default is unchanged
    assert (timeout.status_code, timeout.code, timeout.request_id) == (None, None, None)


def test_a_bad_response_is_retryable_and_may_exist() -> None:
    err = BadResponse("HTML instead of JSON", status_code=502, body=b"<html>")

    assert (err.retryable, err.may_exist) == (True, True)
    assert (err.status_code, err.body) == (502, b"<html>")


@pytest.mark.parametrize("status", [401, 403])
def test_a_bad_response_to_a_refused_request_cannot_have_created_anything(status: int) -> None:
    assert not BadResponse("a proxy's page", status_code=status).may_exist


def test_an_unknown_task_status_carries_the_raw_payload() -> None:
    payload = {"task_id": "1", "task_status": "queued", "big": "x" * 5000}
    err = UnknownTaskStatus("queued", payload)

    assert err.payload is payload
    assert err.status == "queued"
    assert isinstance(err, BadResponse)
    assert not err.retryable
    assert err.may_exist  # a create answer with this status means the task exists
    assert "unknown task status 'queued'" in str(err)
    assert len(str(err)) < 600  # the message quotes the payload, it does not dump it


def test_an_unknown_task_status_of_none_says_the_status_is_missing() -> None:
    assert str(UnknownTaskStatus(None, {})).startswith("no task status")


def test_missing_credentials_names_every_variable() -> None:
    text = str(MissingCredentials())

    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_KEY"):
        assert name in text


def test_unknown_product_is_a_configuration_error_and_a_key_error() -> None:
    err = UnknownProduct("txt2video", ["text2video", "image2video"])

    assert isinstance(err, KeyError)
    assert isinstance(err, ConfigurationError)
    assert str(err) == "unknown product 'txt2video'; known products: text2video, image2video"


def test_request_validation_error_is_one_line_with_every_problem() -> None:
    err = RequestValidationError(
        "text2video",
        [("prompt", "required field is missing"), ("", "image and camera_control clash")],
    )

    assert str(err) == (
        "invalid text2video request: prompt: required field is missing; "
        "image and camera_control clash"
    )
    assert "\n" not in str(err)


def test_every_error_says_what_to_do() -> None:
    for status, code, *_ in ERROR_TABLE:
        err = error_for(status, code, "x")
        assert err.hint(), f"{type(err).__name__} has no hint"


# -- the module's classes ---------------------------------------------------------------------
def _defined_here() -> set[str]:
    return {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }


def test_every_error_class_is_exported() -> None:
    # ConfigurationError is the bottom layer's, re-exported: the client raises it.
    assert _defined_here() | {"ConfigurationError", "error_for"} == set(errors.__all__)


def test_only_what_kling_or_the_network_did_is_a_kling_error() -> None:
    local = {"MissingCredentials", "UnknownProduct", "RequestValidationError"}
    for name in _defined_here():
        cls = getattr(errors, name)
        assert issubclass(cls, KlingError) is (name not in local), name
    assert issubclass(MissingCredentials, ConfigurationError)
    assert issubclass(UnknownProduct, ConfigurationError)
