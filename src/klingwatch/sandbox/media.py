"""Result files: real, tiny, playable; served with Range support and Kling's 30-day expiry.

Videos are one committed asset, ``assets/sample.mp4`` (5 s, 160x90, VP9 + Opus in MP4, 34 KB,
made once with ffmpeg's ``testsrc2`` and ``sine`` sources): VP9 rather than H.264 because
open-source Chromium builds (Playwright's among them) demux MP4 but ship no H.264 decoder.
Images are PNGs drawn in code (zlib + struct), a colour per task so they differ; audio is a
second of silence, as MP3 and WAV, made the same way.

``GET /sandbox/media/{task_id}/{name}`` answers 200, or 206 with ``Content-Range`` for a
``Range: bytes=...`` request (416 when unsatisfiable), 404 for what never existed or is not
finished, and the configured 404 or 403 once the task ended more than 30 (sandbox) days ago.
Every body served (200 or 206) is counted per task: the truth's ``media_gets``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox.runtime import sandbox_of

__all__ = ["media_routes", "png", "sample_mp3", "sample_mp4", "sample_wav"]


@cache
def sample_mp4() -> bytes:
    """The sample video every video task returns."""
    return files("klingwatch.sandbox").joinpath("assets/sample.mp4").read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG: a vertical gradient from ``rgb`` to its complement."""
    rows = []
    for y in range(height):
        f = y / max(1, height - 1)
        pixel = bytes(round(c * (1 - f) + (255 - c) * f) for c in rgb)
        rows.append(b"\x00" + pixel * width)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


@cache
def sample_wav() -> bytes:
    """One second of silence: 8 kHz, 8-bit mono PCM in a RIFF/WAVE file."""
    rate, samples = 8000, bytes([128]) * 8000
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(chunks)) + chunks


@cache
def sample_mp3() -> bytes:
    """About a second of silent MPEG-1 Layer III (128 kbit/s, 44.1 kHz) after an ID3v2 tag."""
    frame = b"\xff\xfb\x90\x00" + bytes(413)  # 417-byte frames at 128 kbit/s, 44.1 kHz
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + frame * 38


@cache
def _task_png(task_id: str, index: int) -> bytes:
    digest = hashlib.sha256(f"{task_id}:{index}".encode()).digest()
    return png(64, 64, (digest[0], digest[1], digest[2]))


def _not_found() -> Response:
    return Response(b"not found", status_code=404, media_type="text/plain")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``a-`` / ``-n`` as an inclusive (start, end); None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def _serve(request: Request, content: bytes, media_type: str) -> Response:
    size = len(content)
    headers = {"accept-ranges": "bytes", "cache-control": "private, max-age=3600"}
    wanted = request.headers.get("range")
    if wanted is None:
        return Response(content, media_type=media_type, headers=headers)
    span = _parse_range(wanted, size)
    if span is None:
        headers["content-range"] = f"bytes */{size}"
        return Response(b"", status_code=416, headers=headers)
    start, end = span
    headers["content-range"] = f"bytes {start}-{end}/{size}"
    return Response(
        content[start : end + 1], status_code=206, media_type=media_type, headers=headers
    )


async def _media(request: Request) -> Response:
    response = _media_answer(request)
    if request.method == "GET" and response.status_code in (200, 206):
        state = sandbox_of(request).state
        with state.lock:
            state.media_served[request.path_params["task_id"]] += 1
    return response


def _media_answer(request: Request) -> Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    now = state.advance()
    task = state.find(request.path_params["task_id"])
    name: str = request.path_params["name"]
    if task is None or task.status_at(now) is not TaskStatus.SUCCEED:
        return _not_found()
    if state.expired(task, now):
        status = sandbox.config.expired_media_status
        text = b"expired: results are deleted 30 days after the task ended"
        return Response(text, status_code=status, media_type="text/plain")
    if task.video_id is not None and name == f"{task.video_id}.mp4":
        return _serve(request, sample_mp4(), "video/mp4")
    if task.audio_duration is not None or "voice" in task.product.outputs:
        if name == "audio.mp3":
            return _serve(request, sample_mp3(), "audio/mpeg")
        if name == "audio.wav":
            return _serve(request, sample_wav(), "audio/wav")
    stem, _, ext = name.partition(".")
    if ext == "png" and stem.isdigit() and int(stem) < task.n_images:
        return _serve(request, _task_png(task.task_id, int(stem)), "image/png")
    return _not_found()


def media_routes() -> list[Route]:
    return [Route("/sandbox/media/{task_id}/{name}", _media, methods=["GET", "HEAD"])]
