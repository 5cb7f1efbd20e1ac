"""Sending alert messages with apprise: one URL syntax for Slack, Discord, Telegram, ntfy, e-mail.

``KLINGWATCH_NOTIFY`` holds apprise URLs separated by commas (apprise's own list syntax, so a
comma inside a URL's query, ``mailto://...?to=a@x,b@y``, stays in that URL). :func:`parse_targets`
checks every URL up front, so a typo is one clear configuration error at start-up rather than
a silence when something goes wrong. :class:`Notifier` sends a message to each target on a
worker thread (apprise's plugins are blocking HTTP/SMTP clients), never on the event loop, and
reports per target whether it went; a failure is logged, never raised: the caller keeps what is
still owed and tries again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import apprise
from apprise.utils.parse import parse_urls

from klingwatch.errors import ConfigurationError

__all__ = ["NOTIFY_HELP", "Notifier", "Target", "parse_targets"]

logger = logging.getLogger(__name__)

#: What to set, for a command asked to notify without targets.
NOTIFY_HELP = (
    "set KLINGWATCH_NOTIFY to one or more apprise URLs, comma-separated "
    "(e.g. slack://TOKEN_A/TOKEN_B/TOKEN_C, discord://WEBHOOK_ID/TOKEN, ntfy://TOPIC, "
    "mailtos://USER:PASSWORD@example.com); see https://github.com/caronc/apprise/wiki"
)


@dataclass(frozen=True, slots=True)
class Target:
    """One place messages go: its URL, a label safe to print, and a stable short key."""

    url: str
    #: the URL with its secrets elided (apprise's privacy form, without the query)
    label: str
    #: how the ledger remembers which targets a round still owes (no secret in it)
    key: str


def parse_targets(spec: str | Sequence[str] | None) -> list[Target]:
    """The targets of a ``KLINGWATCH_NOTIFY`` value; :class:`ConfigurationError` naming the
    first URL apprise does not understand."""
    urls: list[str] = parse_urls(spec) if spec else []  # type: ignore[no-untyped-call]
    out: list[Target] = []
    for url in urls:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            scheme = url.partition("://")[0] or url[:20]
            raise ConfigurationError(
                f"KLINGWATCH_NOTIFY: {scheme!r} is not an apprise URL apprise can send to "
                f"(e.g. slack://..., discord://..., ntfy://TOPIC, json://host/path)"
            )
        label = str(plugin.url(privacy=True)).partition("?")[0]  # type: ignore[no-untyped-call]
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        out.append(Target(url=url, label=label, key=key))
    return out


class Notifier:
    """Sends one message to each of its targets (see the module docstring)."""

    def __init__(self, targets: Sequence[Target], *, timeout: float = 60.0) -> None:
        self.targets = list(targets)
        self.timeout = timeout
        self.sent = 0
        self.failed = 0

    @classmethod
    def from_spec(cls, spec: str | None) -> Notifier:
        return cls(parse_targets(spec))

    def __repr__(self) -> str:
        return f"<Notifier targets={len(self.targets)} sent={self.sent} failed={self.failed}>"

    def __bool__(self) -> bool:
        return bool(self.targets)

    async def send(
        self, title: str, body: str, *, only: Collection[str] | None = None
    ) -> dict[str, bool]:
        """Send to every target (or those whose key is in ``only``) at once; whether each went,
        by target key."""
        chosen = [t for t in self.targets if only is None or t.key in only]
        results = await asyncio.gather(*(self._send_one(t, title, body) for t in chosen))
        return {t.key: ok for t, ok in zip(chosen, results, strict=True)}

    async def _send_one(self, target: Target, title: str, body: str) -> bool:
        try:
            ok = await asyncio.wait_for(
                asyncio.to_thread(_deliver, target.url, title, body), self.timeout
            )
        except Exception as exc:  # a plugin's bug or a hang must not stop the engine
            logger.warning("alert to %s failed: %s", target.label, exc or type(exc).__name__)
            ok = False
        else:
            if not ok:
                logger.warning("alert to %s was not delivered (see apprise's log)", target.label)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        return ok


def _deliver(url: str, title: str, body: str) -> bool:
    """Blocking: one message to one URL (a fresh apprise object per call: thread-safe)."""
    sender = apprise.Apprise()
    sender.add(url)
    return bool(sender.notify(body=body, title=title))
