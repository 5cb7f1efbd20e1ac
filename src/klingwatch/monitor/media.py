"""What a downloaded file is, judged by its first bytes.

Kling result URLs point at MP4 videos, PNG/JPEG/WebP images and MP3/WAV audio. A URL that
has gone stale often answers ``200`` with an HTML login or error page instead, and a file cut
short can still have the right name; so a download is only accepted when its first bytes are
the signature of a media type the result kind allows (:func:`accepts`), and refused at once
when they look like HTML (:func:`looks_like_html`).
"""

from __future__ import annotations

import posixpath
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_EXT",
    "HEAD_BYTES",
    "MediaKind",
    "accepts",
    "ext_from_url",
    "looks_like_html",
    "sniff",
]

MediaKind = Literal["video", "image", "audio"]

#: How many leading bytes :func:`sniff` needs.
HEAD_BYTES = 16

#: The extension a file gets when its URL does not name one.
DEFAULT_EXT: dict[MediaKind, str] = {"video": "mp4", "image": "png", "audio": "mp3"}

# The formats each result kind may arrive in (an ISO-BMFF ``ftyp`` box covers MP4, MOV and M4A).
_ALLOWED: dict[MediaKind, frozenset[str]] = {
    "video": frozenset({"mp4", "webm"}),
    "image": frozenset({"png", "jpeg", "webp", "gif"}),
    "audio": frozenset({"mp3", "wav", "mp4", "ogg", "flac"}),
}

_KNOWN_EXT = frozenset(
    {"mp4", "mov", "m4v", "webm", "png", "jpg", "jpeg", "webp", "gif", "mp3", "wav", "m4a", "ogg"}
)


def sniff(head: bytes) -> str | None:
    """The media format ``head`` (a file's first bytes) starts with, or ``None``.

    Returns one of ``mp4`` (any ISO-BMFF ``ftyp`` file: MP4, MOV, M4A), ``webm``, ``png``,
    ``jpeg``, ``webp``, ``gif``, ``mp3``, ``wav``, ``ogg``, ``flac``.
    """
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF":
        if head[8:12] == b"WEBP":
            return "webp"
        if head[8:12] == b"WAVE":
            return "wav"
        return None
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    return None


def accepts(kind: MediaKind, head: bytes) -> bool:
    """Whether ``head`` is the start of a file a ``kind`` result may be."""
    fmt = sniff(head)
    return fmt is not None and fmt in _ALLOWED[kind]


def looks_like_html(head: bytes, content_type: str | None = None) -> bool:
    """Whether an answer is a web page rather than media (by type, or a leading ``<``)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() in (
        "text/html",
        "application/xhtml+xml",
    ):
        return True
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def ext_from_url(url: str, kind: MediaKind) -> str:
    """The file extension for ``url``: the one its path names if known, else the kind's default."""
    suffix = posixpath.splitext(urlsplit(url).path)[1].lower().lstrip(".")
    if suffix == "jpeg":
        return "jpg"
    return suffix if suffix in _KNOWN_EXT else DEFAULT_EXT[kind]
