"""Kling callbacks: parse the body, check the Standard Webhooks signature, sign deliveries.

Kling POSTs a task object to ``callback_url`` when a task's status changes (KLING_PROTOCOL.md
sections 8 and 10): the legacy flat object, the same wrapped in ``{code, message, data}`` by some
proxies, or the new standard's bare object. :func:`parse_callback` reads all three.

Since 2026 a delivery can be signed the Standard Webhooks way: headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64>``, several
space-separated during a secret rotation), signature = Base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))
with the key the Base64 of the ``whsec_`` secret. :func:`verify_signature` checks one, and
:func:`sign` makes one (the sandbox signs its deliveries with it).

The ``standardwebhooks`` package decodes the secret and computes the signature
(``Webhook.sign``); only the checks around it are written here. Its ``Webhook.verify(data,
headers)`` (1.1.0, the newest release; checked by a test that fails when that changes) cannot be
used, because:

* it takes no time window: the timestamp is checked against ``datetime.now()``, the wall clock,
  in a name-mangled ``__verify_timestamp`` with ``timedelta(minutes=5)`` written into it, so the
  receiver cannot pass the ``tolerance`` it is configured with, nor a sandbox or a test its
  clock's "now";
* a malformed ``webhook-signature`` escapes as a bare exception: an entry without a comma raises
  ``ValueError`` (tuple unpacking), one that is not Base64 ``binascii.Error``, where a forged
  delivery must be one :class:`~klingwatch.kling.errors.WebhookVerificationError` (a 401, not a
  500);
* its messages ("Missing required headers") do not say which header or what to fix.

So the headers and timestamp are checked here and every offered ``v1`` signature compared with
the library's, with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from klingwatch.errors import ConfigurationError
from klingwatch.kling.errors import WebhookVerificationError
from klingwatch.kling.models import Task

__all__ = ["DEFAULT_TOLERANCE", "parse_callback", "sign", "verify_signature"]

logger = logging.getLogger(__name__)

#: How far a delivery's timestamp may be from now, in seconds (Standard Webhooks: 5 minutes).
DEFAULT_TOLERANCE = 300.0


def parse_callback(body: bytes | str | Mapping[str, Any]) -> Task:
    """The task a callback reports, from any of its forms.

    Raises :class:`~klingwatch.kling.errors.BadCallback` for anything that is not a Kling task
    object (not JSON, not an object, neither ``task_id`` nor ``id``), and
    :class:`~klingwatch.kling.errors.UnknownTaskStatus` for a task whose status is not known.
    """
    return Task.from_callback(body)


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret.strip())
    except (EmptyWebhookSecretError, binascii.Error, ValueError, RuntimeError) as exc:
        # A local setup problem, not a bad delivery.
        raise ConfigurationError(
            "the webhook secret must be Kling's 'whsec_<base64>' value (KLINGWATCH_WEBHOOK_SECRET)"
        ) from exc


def sign(secret: str, msg_id: str, timestamp: int | float, body: bytes | str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one delivery."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    when = datetime.fromtimestamp(int(timestamp), tz=UTC)
    return str(_webhook(secret).sign(msg_id=msg_id, timestamp=when, data=text))


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Check a delivery's Standard Webhooks signature; return quietly if it is genuine.

    ``headers`` may use any case. Any one of the space-separated ``v1`` signatures may match (a
    secret rotation sends two). ``now`` (Unix seconds; default the wall clock) and ``tolerance``
    bound the timestamp. Raises :class:`~klingwatch.kling.errors.WebhookVerificationError` saying
    what failed, or :class:`~klingwatch.kling.errors.ConfigurationError` for a malformed secret.
    """
    webhook = _webhook(secret)
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "").strip()
    stamp = lower.get("webhook-timestamp", "").strip()
    offered = lower.get("webhook-signature", "").strip()
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", offered),
        )
        if not value
    ]
    if missing:
        raise WebhookVerificationError(f"unsigned callback: missing {', '.join(missing)} header")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise WebhookVerificationError(
            f"webhook-timestamp {stamp[:40]!r} is not Unix seconds"
        ) from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {current - sent_at:+.0f} s from now (tolerance ±{tolerance:.0f} "
            "s): a replay, or a clock off; check this machine's time"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("callback body is not UTF-8") from None
    expected = base64.b64decode(
        webhook.sign(
            msg_id=msg_id, timestamp=datetime.fromtimestamp(sent_at, tz=UTC), data=text
        ).split(",", 1)[1]
    )
    for candidate in offered.split():
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise WebhookVerificationError(
        "no callback signature matches the webhook secret (wrong KLINGWATCH_WEBHOOK_SECRET, or "
        "a forged delivery)"
    )
