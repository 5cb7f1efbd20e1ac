"""Callback bodies in every form, and Standard Webhooks signatures (the protocol's test vector)."""

from __future__ import annotations

import inspect
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as LibraryVerificationError

from klingwatch.kling.errors import (
    BadCallback,
    ConfigurationError,
    UnknownTaskStatus,
    WebhookVerificationError,
)
from klingwatch.kling.models import ApiStandard, TaskStatus
from klingwatch.kling.webhooks import parse_callback, sign, verify_signature

# KLING_PROTOCOL.md section 8.
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
MSG_ID = "9876543210"
STAMP = 1781080794
BODY = (
    b'{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,'
    b'"update_time":1781080794151}'
)
SIGNATURE = "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4="
OTHER_SECRET = "whsec_b3RoZXJzZWNyZXRvdGhlcnNlY3JldG90aGVyc2VjcmV0MTI="

LEGACY = {
    "task_id": "866889456698785798",
    "task_status": "succeed",
    "task_status_msg": "",
    "created_at": 1722769557708,
    "updated_at": 1722769600000,
    "final_unit_deduction": "1.5",
    "task_info": {"external_task_id": "batch-7"},
    "task_result": {"videos": [{"id": "v1", "url": "https://cdn/x.mp4", "duration": "5.1"}]},
}


def headers(signature: str = SIGNATURE, stamp: int = STAMP) -> dict[str, str]:
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_the_protocol_test_vector_signs_and_verifies() -> None:
    assert sign(SECRET, MSG_ID, STAMP, BODY) == SIGNATURE
    verify_signature(SECRET, headers(), BODY, now=STAMP + 1)


def test_header_names_are_case_insensitive() -> None:
    upper = {k.title(): v for k, v in headers().items()}
    verify_signature(SECRET, upper, BODY, now=STAMP)


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    old = sign(OTHER_SECRET, MSG_ID, STAMP, BODY)
    verify_signature(SECRET, headers(f"{old} {SIGNATURE}"), BODY, now=STAMP)
    verify_signature(OTHER_SECRET, headers(f"{old} {SIGNATURE}"), BODY, now=STAMP)


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_within_five_minutes_pass(offset: int) -> None:
    verify_signature(SECRET, headers(), BODY, now=STAMP + offset)


@pytest.mark.parametrize("offset", [-301, 301, 86_400])
def test_timestamps_beyond_five_minutes_are_refused(offset: int) -> None:
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_signature(SECRET, headers(), BODY, now=STAMP + offset)


def test_a_custom_tolerance_is_honoured() -> None:
    verify_signature(SECRET, headers(), BODY, now=STAMP + 3000, tolerance=3600)
    with pytest.raises(WebhookVerificationError):
        verify_signature(SECRET, headers(), BODY, now=STAMP + 61, tolerance=60)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"body": BODY.replace(b"succeeded", b"failed")}, "no callback signature matches"),
        ({"secret": OTHER_SECRET}, "no callback signature matches"),
        ({"signature": "v2," + SIGNATURE[3:]}, "no callback signature matches"),
        ({"signature": "v1,not*base64"}, "no callback signature matches"),
        ({"signature": "garbage-without-comma"}, "no callback signature matches"),
        ({"signature": ""}, "missing webhook-signature"),
        ({"stamp": "yesterday"}, "not Unix seconds"),
    ],
)
def test_anything_tampered_is_refused_with_the_reason(change: dict[str, object], why: str) -> None:
    hdrs = headers(str(change.get("signature", SIGNATURE)))
    if "stamp" in change:
        hdrs["webhook-timestamp"] = str(change["stamp"])
    body = change.get("body", BODY)
    assert isinstance(body, bytes)
    with pytest.raises(WebhookVerificationError, match=why):
        verify_signature(str(change.get("secret", SECRET)), hdrs, body, now=STAMP)


def test_why_the_library_verify_is_not_used_still_holds() -> None:
    # kling/webhooks.py checks the timestamp itself because standardwebhooks' verify takes no
    # time window and no "now", and lets a malformed signature out as a bare ValueError. When a
    # release changes either, this fails: use the library's verify then.
    params = set(inspect.signature(Webhook.verify).parameters)
    assert params == {"self", "data", "headers", "json_parse"}, "verify takes a window now?"
    library = Webhook(SECRET)
    ts = str(int(time.time()))
    with pytest.raises(ValueError, match="unpack"):
        library.verify(BODY, {**headers(), "webhook-timestamp": ts, "webhook-signature": "x"})
    with pytest.raises(LibraryVerificationError, match="too old"):
        library.verify(BODY, headers(stamp=int(time.time()) - 301))


def test_missing_headers_are_named() -> None:
    with pytest.raises(WebhookVerificationError, match="webhook-id, webhook-timestamp"):
        verify_signature(SECRET, {"webhook-signature": SIGNATURE}, BODY, now=STAMP)


def test_a_non_utf8_body_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="UTF-8"):
        verify_signature(SECRET, headers(), b"\xff\xfe", now=STAMP)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!notbase64@@@"])
def test_a_malformed_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="whsec_"):
        verify_signature(secret, headers(), BODY, now=STAMP)


def test_the_wall_clock_is_the_default_now() -> None:
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_signature(SECRET, headers(), BODY)  # 2026-06 vector vs. today's clock


def test_signing_and_verifying_round_trip_for_bytes_and_text() -> None:
    body = json.dumps(LEGACY)
    sig = sign(SECRET, "m-1", 1_767_225_600, body)
    assert sig == sign(SECRET, "m-1", 1_767_225_600, body.encode())
    verify_signature(
        SECRET,
        {"webhook-id": "m-1", "webhook-timestamp": "1767225600", "webhook-signature": sig},
        body.encode(),
        now=1_767_225_600,
    )


def test_a_legacy_flat_callback_parses() -> None:
    task = parse_callback(json.dumps(LEGACY).encode())
    assert task.id == "866889456698785798"
    assert task.status is TaskStatus.SUCCEED
    assert task.external_id == "batch-7"
    assert task.result_urls == ["https://cdn/x.mp4"]
    assert task.standard is ApiStandard.LEGACY


def test_a_legacy_callback_wrapped_in_the_envelope_parses() -> None:
    wrapped = {"code": 0, "message": "SUCCEED", "data": LEGACY}
    assert parse_callback(json.dumps(wrapped)).id == "866889456698785798"
    assert parse_callback(wrapped).external_id == "batch-7"


def test_a_new_standard_callback_parses() -> None:
    task = parse_callback(BODY)
    assert task.id == "1234567890"
    assert task.status is TaskStatus.SUCCEED
    assert task.standard is ApiStandard.TASKS
    assert task.updated_ms == 1781080794151


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502</html>",
        b'{"task_id": "1", "task_status": ',
        b"[1, 2]",
        b'{"hello": 1}',
        b'{"code": 1201, "message": "bad"}',
        b"\xff",
    ],
)
def test_garbage_is_a_bad_callback(body: bytes) -> None:
    with pytest.raises(BadCallback):
        parse_callback(body)


def test_an_unknown_status_is_not_guessed() -> None:
    with pytest.raises(UnknownTaskStatus):
        parse_callback({**LEGACY, "task_status": "exploded"})
