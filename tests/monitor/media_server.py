"""A real HTTP media server for download tests: real bytes on a real loopback socket.

:class:`MediaServer` is a small ASGI app served by uvicorn in a thread. It answers ``Range``
requests the way a CDN does (``206`` + ``Content-Range``), with a strong ``ETag`` (of the file's
bytes) and a ``Last-Modified``, and honours ``If-Range`` by either (a range only while the file is
unchanged, else the whole file with ``200``). It can be told, per file, to cut the connection
part-way through the next answer, to answer a fixed status (403 for an expired link, 503 for a
hiccup), to answer an HTML page, to ignore ``Range``, to send no validators, or to ignore
``If-Range``. It records every request it saw, so tests can assert what was (and was not) asked.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import uvicorn

from klingwatch.monitor.fetch import Opener, open_part

Scope = dict[str, Any]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def mp4_bytes(size: int, seed: int = 1) -> bytes:
    """An ISO-BMFF file (``ftyp`` box, then an ``mdat`` box) of exactly ``size`` bytes."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 0x200, b"isom", b"mp41")
    payload = random.Random(seed).randbytes(size - len(ftyp) - 8)
    return ftyp + struct.pack(">I4s", 8 + len(payload), b"mdat") + payload


def png_bytes(width: int = 64, height: int = 48, seed: int = 2) -> bytes:
    """A valid RGB PNG of noise."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Seen:
    path: str
    range: str | None
    encoding: str | None = None
    if_range: str | None = None


def etag_of(body: bytes) -> str:
    """The strong ETag the server sends for ``body``."""
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


@dataclass
class MediaServer:
    """The app; tests set the knobs between requests."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, list[int]] = field(default_factory=dict)  # next answers cut after N bytes
    status: dict[str, int] = field(default_factory=dict)  # fixed status per path
    fail_times: dict[str, list[int]] = field(default_factory=dict)  # statuses for next answers
    html: set[str] = field(default_factory=set)
    ignore_range: set[str] = field(default_factory=set)
    no_validators: set[str] = field(default_factory=set)  # neither ETag nor Last-Modified
    ignore_if_range: set[str] = field(default_factory=set)  # a range even for a changed file
    modified: dict[str, float] = field(default_factory=dict)  # Last-Modified, Unix seconds
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""

    def reset(self, files: dict[str, bytes]) -> MediaServer:
        """Forget every knob and request seen; serve ``files`` (for a server shared by tests)."""
        self.files = dict(files)
        for knobs in (self.cut_after, self.status, self.fail_times):
            knobs.clear()
        for names in (self.html, self.ignore_range, self.no_validators, self.ignore_if_range):
            names.clear()
        self.modified = dict.fromkeys(files, 1_767_225_600.0)
        self.seen.clear()
        return self

    def url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"

    def requests_for(self, name: str) -> list[Seen]:
        return [s for s in self.seen if s.path == f"/media/{name}"]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        path: str = scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append(
            Seen(
                path, headers.get("range"), headers.get("accept-encoding"), headers.get("if-range")
            )
        )
        name = path.removeprefix("/media/")
        if name in self.html:
            page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
            await _answer(send, 200, page, {"content-type": "text/html; charset=utf-8"})
            return
        pending = self.fail_times.get(name)
        if pending:
            await _answer(send, pending.pop(0), b"temporarily unavailable")
            return
        if name in self.status:
            await _answer(send, self.status[name], b"AccessDenied")
            return
        body = self.files.get(name)
        if body is None:
            await _answer(send, 404, b"not found")
            return
        start, status, extra = 0, 200, self._validators(name, body)
        want = _RANGE.match(headers.get("range", ""))
        unchanged = name in self.ignore_if_range or _if_range_holds(headers, extra)
        if want and name not in self.ignore_range and unchanged:
            start = int(want.group(1))
            if start >= len(body):
                await _answer(send, 416, b"", {"content-range": f"bytes */{len(body)}"})
                return
            status = 206
            extra["content-range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        part = body[start:]
        extra |= {"content-type": "video/mp4" if name.endswith(".mp4") else "image/png"}
        cuts = self.cut_after.get(name)
        if cuts:
            # Announce the whole length, send some of it, then drop the connection.
            limit = cuts.pop(0)
            await _start(send, status, len(part), extra)
            await send({"type": "http.response.body", "body": part[:limit], "more_body": True})
            raise ConnectionAbortedError("test server cut the connection")
        await _answer(send, status, part, extra)

    def _validators(self, name: str, body: bytes) -> dict[str, str]:
        if name in self.no_validators:
            return {}
        modified = self.modified.get(name, 1_767_225_600.0)
        return {
            "etag": etag_of(body),
            "last-modified": email.utils.formatdate(modified, usegmt=True),
        }


def _if_range_holds(headers: dict[str, str], validators: dict[str, str]) -> bool:
    """RFC 9110 13.1.5: a range is sent only if ``If-Range`` names the current file."""
    given = headers.get("if-range")
    if given is None:
        return True
    if given.startswith('"'):
        return given == validators.get("etag")  # strong comparison
    return given == validators.get("last-modified")


async def _start(send: Any, status: int, length: int, headers: dict[str, str]) -> None:
    raw = [(b"content-length", str(length).encode()), (b"accept-ranges", b"bytes")]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _answer(
    send: Any, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    await _start(send, status, len(body), headers or {"content-type": "text/plain"})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serve(app: MediaServer) -> Iterator[MediaServer]:
    """Serve ``app`` on 127.0.0.1 (a free port) for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue here until uvicorn starts accepting
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", lifespan="off", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    app.base_url = f"http://127.0.0.1:{port}"
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class QuotaFile:
    """A real file in a folder that raises ``ENOSPC`` once the folder would exceed ``quota``.

    The fallback for :func:`small_disk` where a tmpfs cannot be mounted (not root).
    """

    def __init__(self, path: Path, mode: str, folder: Path, quota: int) -> None:
        self._fh = open(path, mode)  # noqa: SIM115 - closed by close()/__exit__
        self._folder = folder
        self._quota = quota

    def write(self, data: bytes) -> int:
        self._fh.flush()
        used = sum(p.stat().st_size for p in self._folder.rglob("*") if p.is_file())
        if used + len(data) > self._quota:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> QuotaFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _mount(target: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextmanager
def small_disk(base: Path, size: int) -> Iterator[tuple[Path, Opener]]:
    """A folder that holds at most ``size`` bytes, and the opener to write into it.

    A real tmpfs of that size when this process may mount one (root, as in CI's container);
    otherwise a plain folder whose opener raises ``ENOSPC`` past ``size`` bytes.
    """
    folder = base / "small-disk"
    folder.mkdir()
    if _mount(folder, f"size={size}"):
        try:
            yield folder, open_part
        finally:
            _umount(folder)
        return

    def opener(path: Path, mode: str) -> IO[bytes]:
        return QuotaFile(path, mode, folder, size)  # type: ignore[return-value]

    yield folder, opener


@contextmanager
def read_only_dir(base: Path) -> Iterator[Path]:
    """A folder nobody may write into: a read-only tmpfs as root, else mode 0o500."""
    folder = base / "read-only"
    folder.mkdir()
    if _mount(folder, "ro,size=64k"):
        try:
            yield folder
        finally:
            _umount(folder)
        return
    if os.geteuid() == 0:
        raise RuntimeError("root without permission to mount: cannot make an unwritable folder")
    folder.chmod(0o500)
    try:
        yield folder
    finally:
        folder.chmod(0o700)
