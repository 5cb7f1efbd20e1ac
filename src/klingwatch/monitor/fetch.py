"""One file, from a URL to disk, safely.

:meth:`Fetcher.fetch` streams a result URL into a hidden ``.NAME.part`` file in the target
folder and renames it to ``NAME`` only when the transfer is complete and verified, so a file
with the final name is always whole. It:

* resumes a dropped transfer with ``Range: bytes=N-`` (keeping the ``.part``), and starts over
  from byte 0 when the server does not answer ``206`` with the matching ``Content-Range``;
* sends ``If-Range`` with the validator of the answer that started the ``.part`` (its strong
  ``ETag``, else its ``Last-Modified``; kept beside it in ``.NAME.part.validator`` so a later run
  resumes safely too), so a file that changed on the server comes whole from byte 0 instead of
  being spliced onto the old one's first bytes; a ``206`` whose own validator differs (a server
  that ignores ``If-Range``) restarts the file as well;
* checks the byte count against ``Content-Length`` / the ``Content-Range`` total, and the first
  bytes against the media types the result kind allows (:mod:`klingwatch.monitor.media`);
* refuses an HTML answer (a login or error page) instead of saving it as a video;
* retries transient failures (5xx, 429, dropped or timed-out connections) with backoff slept on
  the injected clock, and gives up after a few attempts that made no progress.

Errors are a :class:`FetchError` (a :class:`~klingwatch.errors.KlingwatchError`, so the CLI prints
one line; the branch is drawn in :mod:`klingwatch.errors`): :class:`ExpiredURL`,
:class:`NotMedia`, :class:`TransferFailed` (the ``.part`` is kept) and :class:`StorageError`.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from klingwatch.clock import Clock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.retry import Backoff
from klingwatch.monitor.media import HEAD_BYTES, MediaKind, accepts, looks_like_html, sniff

__all__ = [
    "FETCH_BACKOFF",
    "ExpiredURL",
    "FetchError",
    "Fetched",
    "Fetcher",
    "NotMedia",
    "Opener",
    "RetryPolicy",
    "StorageError",
    "TransferFailed",
    "open_part",
    "part_path",
    "validator_of",
    "validator_path",
]

logger = logging.getLogger(__name__)

#: The file-system seam: open ``path`` in a binary ``mode`` ("wb" or "r+b") for writing.
Opener = Callable[[Path, str], IO[bytes]]

# Local failures that no retry of this file can fix and that hit every other file too.
_STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
)
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class FetchError(KlingwatchError):
    """A file could not be fetched; ``url`` says which."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ExpiredURL(FetchError):
    """The URL answered 403/404/410: the file is gone. Retrying will not bring it back."""


class NotMedia(FetchError):
    """The URL answered an HTML page, or bytes that are not the media type expected."""


class TransferFailed(FetchError):
    """The transfer did not complete (retries exhausted or a nonsensical answer).

    The ``.part`` file is kept, so the next run resumes where this one stopped.
    """


class StorageError(FetchError):
    """The target folder cannot take the file (disk full, permission, read-only file system).

    Every other download would fail the same way, so callers stop them all.
    """

    def __init__(self, message: str, *, url: str, path: Path, errno_: int | None) -> None:
        super().__init__(message, url=url)
        self.path = path
        self.errno = errno_


def storage_error(exc: OSError, path: Path, url: str) -> StorageError | None:
    """The :class:`StorageError` for a local ``OSError``, or ``None`` if it is not one."""
    if exc.errno not in _STORAGE_ERRNOS:
        return None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"disk full: no space left for {path}; free some space (or pick another --dir)"
    elif exc.errno == errno.EROFS:
        what = f"cannot write {path}: the file system is read-only; pick a writable --dir"
    elif exc.errno == errno.EIO:
        what = f"cannot write {path}: input/output error on the disk"
    else:
        what = f"cannot write {path}: permission denied; pick a folder you can write (--dir)"
    return StorageError(
        f"{what}, then run the download again", url=url, path=path, errno_=exc.errno
    )


#: Waits between tries of one file: 0.5-1 s, 1-2 s, ... up to 15-30 s.
FETCH_BACKOFF = Backoff(initial=1.0, cap=30.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Transient failures: ``attempts`` tries in a row without progress, then stop; between
    them the one backoff rule (:class:`~klingwatch.kling.retry.Backoff`, by default
    :data:`FETCH_BACKOFF`), jittered so files cut by one CDN hiccup do not all come back at once.

    An attempt that wrote new bytes before failing resets the count, so a flaky connection that
    drops every few megabytes still finishes a large file.
    """

    attempts: int = 5
    backoff: Backoff = FETCH_BACKOFF


@dataclass(frozen=True, slots=True)
class Fetched:
    """A completed transfer: the file now exists at its final path with these facts."""

    size: int
    sha256: str
    format: str | None  # what the first bytes say (mp4, png, ...)
    content_type: str | None
    requests: int  # HTTP requests this fetch made
    resumed: bool  # True when some request carried a Range header that the server honoured


def part_path(dest: Path) -> Path:
    """Where ``dest`` is written while incomplete: a hidden ``.NAME.part`` beside it."""
    return dest.with_name(f".{dest.name}.part")


def validator_path(part: Path) -> Path:
    """Where the validator (``ETag`` / ``Last-Modified``) of the answer that started ``part`` is
    kept while ``part`` exists."""
    return part.with_name(part.name + ".validator")


def validator_of(resp: httpx.Response) -> str | None:
    """What ``If-Range`` may carry for this answer: a strong ``ETag``, else ``Last-Modified``.

    A weak ETag (``W/"..."``) may not be used in ``If-Range`` (RFC 9110 13.1.5): it says two
    files are equivalent, not byte for byte the same, and a range must splice bytes.
    """
    etag = str(resp.headers.get("etag", "")).strip()
    if etag.startswith('"'):
        return etag
    return str(resp.headers.get("last-modified", "")).strip() or None


def open_part(path: Path, mode: str) -> IO[bytes]:
    """The default :data:`Opener`: the real file."""
    return open(path, mode)  # the caller closes it


class _Transient(Exception):
    def __init__(self, reason: str, *, progressed: bool) -> None:
        super().__init__(reason)
        self.progressed = progressed


class _Restart(Exception):
    """The partial file cannot be continued; discard it and start from byte 0."""


class Fetcher:
    """Downloads single files with resume and verification (see the module docstring)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        clock: Clock,
        retry: RetryPolicy | None = None,
        opener: Opener = open_part,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._open = opener
        self._rng = rng or random.Random()

    async def fetch(self, url: str, dest: Path, kind: MediaKind) -> Fetched:
        """Download ``url`` to ``dest`` (whose folder must exist), resuming any ``.part``.

        Raises :class:`ExpiredURL`, :class:`NotMedia`, :class:`TransferFailed` or
        :class:`StorageError`; on success ``dest`` is complete and verified.
        """
        part = part_path(dest)
        failures = restarts = requests = 0
        resumed = False
        while True:
            offset = _size(part)
            requests += 1
            try:
                fetched = await self._attempt(url, part, dest, kind, offset)
            except _Transient as exc:
                failures = 0 if exc.progressed else failures + 1
                if failures >= self._retry.attempts:
                    raise TransferFailed(
                        f"download of {url} failed after {failures} attempts without progress "
                        f"({exc}); the partial file is kept and the next run resumes it",
                        url=url,
                    ) from None
                delay = self._retry.backoff.delay(max(1, failures), self._rng.random())
                logger.info("retrying %s from byte %d in %.1fs: %s", url, _size(part), delay, exc)
                await self._clock.sleep(delay)
                continue
            except _Restart as exc:
                restarts += 1
                logger.warning("restarting %s from byte 0: %s", url, exc)
                self._discard(part, url)
                if restarts > 2:
                    raise TransferFailed(
                        f"download of {url} failed: {exc} (three times)", url=url
                    ) from None
                continue
            except (ExpiredURL, NotMedia, StorageError):
                # Nothing to resume: the file is gone, was not media, or must free its space.
                self._discard(part, url)
                raise
            resumed = resumed or fetched.resumed
            return Fetched(
                size=fetched.size,
                sha256=fetched.sha256,
                format=fetched.format,
                content_type=fetched.content_type,
                requests=requests,
                resumed=resumed,
            )

    async def _attempt(
        self, url: str, part: Path, dest: Path, kind: MediaKind, offset: int
    ) -> Fetched:
        # Identity encoding: byte offsets (Range, Content-Length) then count the file's own bytes.
        headers = {"Accept-Encoding": "identity"}
        validator = _read_text(validator_path(part)) if offset else None
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        written = offset
        try:
            async with self._client.stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                if status in _EXPIRED_STATUSES:
                    raise ExpiredURL(
                        f"{url} answered HTTP {status}: the file is gone (Kling deletes results "
                        "30 days after the task ends)",
                        url=url,
                    )
                if status == 416:
                    raise _Restart(f"the server refused the range from byte {offset}")
                if status == 429 or status >= 500:
                    raise _Transient(f"HTTP {status}", progressed=False)
                if status not in (200, 206):
                    raise TransferFailed(f"{url} answered HTTP {status}", url=url)
                ctype = resp.headers.get("content-type")
                if looks_like_html(b"", ctype):
                    raise NotMedia(
                        f"{url} answered a web page ({ctype}) instead of media; the link may "
                        "point at a login or error page",
                        url=url,
                    )
                start, total = self._span(resp, offset)
                if start and validator and _changed(resp, validator):
                    raise _Restart("the file changed on the server since the partial download")
                if offset and start == 0:
                    why = "changed since the partial download" if validator else "ignored Range"
                    logger.info("%s %s; downloading it whole", url, why)
                written = start
                hasher = hashlib.sha256()
                if start:
                    self._hash_prefix(part, start, hasher, url)
                try:
                    if not start:  # a new .part: remember what it is a part of
                        _write_text(validator_path(part), validator_of(resp))
                    fh = self._open(part, "r+b" if start else "wb")
                    with fh:
                        fh.truncate(start)
                        fh.seek(start)
                        written = await self._stream(resp, fh, hasher, start, total, url)
                        fh.flush()
                        # Durable before it gets its final name; in a thread, so other
                        # transfers go on meanwhile (fsync is most of a small file's cost).
                        await asyncio.to_thread(os.fsync, fh.fileno())
                except OSError as exc:
                    raise self._local_error(exc, dest, url) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TransferFailed(f"{url} cannot be fetched: {exc}", url=url) from None
        except httpx.TransportError as exc:  # refused, reset, cut mid-body, timed out
            grew = _size(part) > offset
            raise _Transient(f"{type(exc).__name__}: {exc}", progressed=grew) from None
        except httpx.HTTPError as exc:  # too many redirects, undecodable body
            raise TransferFailed(f"{url} could not be downloaded: {exc}", url=url) from None
        if total is not None and written < total:
            raise _Transient(
                f"the connection ended at byte {written} of {total}", progressed=written > offset
            )
        head = self._head(part, dest, url)
        if looks_like_html(head):
            raise NotMedia(f"{url} answered a web page instead of media", url=url)
        if not accepts(kind, head):
            raise NotMedia(
                f"{url} did not answer a {kind} file (it starts with {head[:8]!r})", url=url
            )
        try:
            await asyncio.to_thread(_publish, part, dest)
        except OSError as exc:
            raise self._local_error(exc, dest, url) from exc
        return Fetched(
            size=written,
            sha256=hasher.hexdigest(),
            format=sniff(head),
            content_type=ctype,
            requests=1,
            resumed=start > 0,
        )

    def _span(self, resp: httpx.Response, offset: int) -> tuple[int, int | None]:
        """Where this answer's body starts in the file, and the file's total size if known."""
        if resp.status_code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
            if match is None:
                raise _Restart(f"206 without a usable Content-Range ({resp.headers!r:.120})")
            start = int(match.group(1))
            if start != offset:
                raise _Restart(f"asked for byte {offset}, the server sent from byte {start}")
            total = None if match.group(3) == "*" else int(match.group(3))
            return start, total
        # 200: the whole file. Its length is only comparable when nothing decodes the body.
        encoding = resp.headers.get("content-encoding", "identity").lower()
        length = resp.headers.get("content-length")
        if length is None or encoding not in ("", "identity") or not length.isdigit():
            return 0, None
        return 0, int(length)

    async def _stream(
        self,
        resp: httpx.Response,
        fh: IO[bytes],
        hasher: hashlib._Hash,
        start: int,
        total: int | None,
        url: str,
    ) -> int:
        written = start
        head = b""
        # Chunks as they arrive (no re-chunking buffer), so bytes received before a cut are kept.
        async for chunk in resp.aiter_bytes():
            if start == 0 and len(head) < HEAD_BYTES:
                # Refuse a web page before saving any of it.
                head += chunk[: HEAD_BYTES - len(head)]
                if looks_like_html(head):
                    raise NotMedia(f"{url} answered a web page instead of media", url=url)
            fh.write(chunk)
            hasher.update(chunk)
            written += len(chunk)
            if total is not None and written > total:
                raise _Restart(f"the server sent more than the {total} bytes it announced")
        return written

    def _hash_prefix(self, part: Path, upto: int, hasher: hashlib._Hash, url: str) -> None:
        try:
            with open(part, "rb") as fh:
                left = upto
                while left:
                    block = fh.read(min(left, 1 << 20))
                    if not block:
                        raise _Restart("the partial file shrank while resuming")
                    hasher.update(block)
                    left -= len(block)
        except OSError as exc:
            raise self._local_error(exc, part, url) from exc

    def _head(self, part: Path, dest: Path, url: str) -> bytes:
        try:
            with open(part, "rb") as fh:
                return fh.read(HEAD_BYTES)
        except OSError as exc:
            raise self._local_error(exc, dest, url) from exc

    @staticmethod
    def _local_error(exc: OSError, dest: Path, url: str) -> FetchError:
        return storage_error(exc, dest, url) or TransferFailed(
            f"cannot write {dest}: {exc.strerror or exc}", url=url
        )

    @staticmethod
    def _discard(part: Path, url: str) -> None:
        try:
            validator_path(part).unlink(missing_ok=True)
            part.unlink(missing_ok=True)
        except OSError as exc:  # a read-only folder cannot even lose its .part; nothing looks done
            logger.warning("could not remove %s (%s) after a failed download of %s", part, exc, url)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _publish(part: Path, dest: Path) -> None:
    os.replace(part, dest)
    validator_path(part).unlink(missing_ok=True)
    _fsync_dir(dest.parent)


def _changed(resp: httpx.Response, validator: str) -> bool:
    """Whether a ``206`` names another file than ``validator`` does (compared like for like; an
    answer without that validator cannot say, and is believed)."""
    kind = "etag" if validator.startswith('"') else "last-modified"
    now = resp.headers.get(kind, "").strip()
    return bool(now) and now != validator


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None  # a .part of an older klingwatch, or an unreadable file: plain Range


def _write_text(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text, encoding="utf-8")


def _fsync_dir(folder: Path) -> None:
    # Make the rename durable; some file systems refuse fsync on a directory, which is harmless.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
