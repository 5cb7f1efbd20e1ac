"""Image inputs: what Kling accepts where a request takes an image (KLING_PROTOCOL.md section 3).

An image is an http(s) URL or **raw** Base64 of a jpg/png file (no ``data:...;base64,`` prefix),
at most 10 MB and at least 300 px on each side. A URL is taken as given (Kling fetches it); raw
Base64 is checked here, from the file's header only, so a wrong input is refused before it costs
a round trip or a concurrency slot (Kling fails such a task with "Image pixel is invalid").
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

__all__ = ["IMAGE_MAX_BYTES", "IMAGE_MIN_PIXELS", "check_image", "image_size"]

#: Kling's limit on one image input.
IMAGE_MAX_BYTES = 10 * 1024 * 1024
#: Kling's minimum width and height of an image input.
IMAGE_MIN_PIXELS = 300

_DATA_URL = re.compile(r"^data:", re.IGNORECASE)
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+", re.IGNORECASE)
# Wrapped Base64 breaks lines but never has spaces: "a cat on a sofa" is not Base64.
_B64 = re.compile(r"[A-Za-z0-9+/\-_\r\n]+={0,2}")
_PATH_LIKE = re.compile(r"(^[./~\\]|^[A-Za-z]:\\|\.(jpe?g|png|webp|gif|bmp)$)", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
# Enough Base64 to reach a JPEG's frame header past typical EXIF blocks (a multiple of 4).
_HEAD_CHARS = 256 * 1024
_OTHER_FORMATS = {
    b"GIF8": "GIF",
    b"RIFF": "WebP",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# JPEG start-of-frame markers (baseline, progressive, ...): C0-CF minus DHT, JPG and DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def check_image(value: str, field: str = "image") -> str:
    """Return ``value`` if it is an acceptable image input, else raise ``ValueError`` saying
    what to change. ``field`` names the input in the message of an empty value."""
    text = value.strip()
    if not text:
        raise ValueError(f"{field} is empty; give an image URL or raw Base64")
    if _DATA_URL.match(text):
        prefix = text.split(",", 1)[0][:40]
        raise ValueError(
            f"starts with {prefix + ','!r}; Kling wants the raw Base64 only: remove everything "
            "up to and including the first comma"
        )
    if _HTTP_URL.match(text):
        return value
    if _B64.fullmatch(text):
        _check_base64(text)
        return value
    if _PATH_LIKE.search(text):
        raise ValueError(
            f"{text[:80]!r} looks like a local file path; give an http(s) URL or the file's "
            "raw Base64 (e.g. base64 -w0 FILE)"
        )
    raise ValueError(f"must be an http(s) URL or raw Base64 image data, got {text[:80]!r}")


def _check_base64(text: str) -> None:
    if len(text) < 16:
        raise ValueError(f"{text!r} is too short to be an image; give a URL or raw Base64")
    size = len(text) * 3 // 4
    if size > IMAGE_MAX_BYTES:
        raise ValueError(
            f"is about {size / 1024 / 1024:.1f} MB of image data; Kling accepts at most 10 MB: "
            "shrink the image or give a URL"
        )
    head = _decode_head(text)
    if head is None:
        raise ValueError("is not valid Base64; encode the file with e.g. base64 -w0 FILE")
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic):
            raise ValueError(f"is a {name} image; Kling takes jpg or png: convert it first")
    dims = image_size(head)
    if dims is not None and min(dims) < IMAGE_MIN_PIXELS:
        width, height = dims
        raise ValueError(
            f"is {width}x{height} px; Kling needs at least {IMAGE_MIN_PIXELS} px on each side: "
            "use a larger image"
        )


def _decode_head(text: str) -> bytes | None:
    compact = _WHITESPACE.sub("", text)
    head = compact[:_HEAD_CHARS]
    if len(head) < len(compact):
        head = head[: len(head) - len(head) % 4]
    else:
        head += "=" * (-len(head) % 4)
    altchars = b"-_" if ("-" in head or "_" in head) else None
    try:
        return base64.b64decode(head, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the start of a PNG or JPEG file; ``None`` if not found there."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None
