"""A real HTTP receiver on a loopback socket that records what it is sent.

Alerts (apprise's ``json://`` target) and outbound events (signed POSTs) are tested against it:
no mock, a real socket. :class:`Receiver` runs ``http.server`` in a thread, answers 200 (or, while
told to fail, the status it was given), and keeps every request it got: path, headers, body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    #: the status this request was answered with
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records POSTs; ``fail_next(n)`` answers the next ``n`` with ``status`` instead of 200;
    ``delay``: seconds between receiving a request and answering it."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._failures = 0
        self._fail_status = 500
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = 200
                    if len(body) < length:
                        # The sender died mid-body (a SIGKILL test): a real receiver could not
                        # verify a truncated body either, so it is not a delivery.
                        status = 400
                    elif receiver._failures:
                        receiver._failures -= 1
                        status = receiver._fail_status
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Received(self.path, headers, body, status))
                if delay:
                    time.sleep(delay)  # an answer still on its way when the sender dies
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender died waiting: what it sent is recorded all the same

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def apprise_url(self, path: str = "/alerts") -> str:
        """This receiver as an apprise target (apprise POSTs ``{"title", "message", ...}``)."""
        return f"json://127.0.0.1:{self.port}{path}"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures, self._fail_status = n, status

    def got(self, path: str | None = None, *, ok_only: bool = True) -> list[Received]:
        """What arrived (at ``path``), in order; only the requests answered 200 unless told."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (path is None or r.path == path) and (r.status == 200 or not ok_only)
        ]

    def messages(self, path: str = "/alerts") -> list[dict[str, Any]]:
        """The apprise messages delivered to ``path`` (title, message, type, ...)."""
        return [r.json() for r in self.got(path)]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiver(*, delay: float = 0.0) -> Iterator[Receiver]:
    """A started :class:`Receiver`, stopped afterwards."""
    r = Receiver(delay=delay).start()
    try:
        yield r
    finally:
        r.stop()
