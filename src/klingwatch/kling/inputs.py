"""Image inputs: what Kling accepts where a request takes an image, and reading local files.

An image is an http(s) URL or **raw** Base64 of a jpg/png file (no ``data:...;base64,`` prefix).
Every vendor page that takes images says so (e.g. ``docs/api/kling-avatar.md``,
``kling-effects-video-effects.md``, ``kling-image-2.1-generation.md``: "Do not include any prefix
such as data:image/png;base64,"; formats ".jpg / .jpeg / .png"; "dimensions >= 300px, aspect
ratio between 1:2.5 ~ 2.5:1"). The size limit depends on the API standard: 10 MB on the legacy
``/v1`` endpoints, 50 MB in the new standard's ``contents[].url`` (``kling-2.6-i2v.md``,
``kling-omni-3.0-ovg.md``: "The size of the image file cannot exceed 50MB").

A URL is taken as given (Kling fetches it); raw Base64 is checked here, from the file's header
only, so a wrong input is refused before it costs a round trip or a concurrency slot.

:func:`image_from_file` reads a local file into raw Base64 (what ``klingwatch submit`` does with a
path in an image field), and :func:`local_image` tells a path from a URL or Base64.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_MAX_BYTES",
    "IMAGE_MAX_RATIO",
    "IMAGE_MIN_PIXELS",
    "TASKS_IMAGE_MAX_BYTES",
    "check_image",
    "image_from_file",
    "image_size",
    "is_url",
    "local_image",
    "resolve_local_images",
]

#: The legacy endpoints' limit on one image input (kling-avatar.md, kling-image-2.1-generation.md).
IMAGE_MAX_BYTES = 10 * 1024 * 1024
#: The new standard's limit on one image in ``contents[]`` (kling-2.6-i2v.md, kling-o1-video.md).
TASKS_IMAGE_MAX_BYTES = 50 * 1024 * 1024
#: Kling's minimum width and height of an image input (every page that takes images).
IMAGE_MIN_PIXELS = 300
#: Longest side over shortest side: "aspect ratio between 1:2.5 ~ 2.5:1" (every image page).
IMAGE_MAX_RATIO = 2.5

_DATA_URL = re.compile(r"^data:", re.IGNORECASE)
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+", re.IGNORECASE)
# Wrapped Base64 breaks lines but never has spaces: "a cat on a sofa" is not Base64.
_B64 = re.compile(r"[A-Za-z0-9+/\-_\r\n]+={0,2}")
_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|webp|gif|bmp|tiff?|heic)$", re.IGNORECASE)
# What only a path looks like: "./x", "../x", "~/x", "C:\x", or a name ending in an image suffix.
# ("/9j/4AAQ..." is how a JPEG's Base64 begins, so a leading "/" alone proves nothing.)
_PATH_LIKE = re.compile(r"(^\.{1,2}[/\\]|^~[/\\]|^[A-Za-z]:\\)")
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


def is_url(value: str) -> bool:
    """An http(s) URL (Kling fetches those itself)."""
    return bool(_HTTP_URL.match(value.strip()))


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def check_image(value: str, field: str = "image", *, max_bytes: int = IMAGE_MAX_BYTES) -> str:
    """Return ``value`` if it is an acceptable image input, else raise ``ValueError`` saying
    what to change. ``field`` names the input in the message of an empty value; ``max_bytes`` is
    the endpoint's limit (:data:`IMAGE_MAX_BYTES` or :data:`TASKS_IMAGE_MAX_BYTES`)."""
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
        _check_base64(text, max_bytes)
        return value
    if _looks_like_path(text):
        raise ValueError(
            f"{text[:80]!r} looks like a local file path; give an http(s) URL or the file's "
            "raw Base64 (klingwatch submit reads local files named in a batch file for you)"
        )
    raise ValueError(f"must be an http(s) URL or raw Base64 image data, got {text[:80]!r}")


def _looks_like_path(text: str) -> bool:
    return bool(_PATH_LIKE.search(text) or _IMAGE_SUFFIX.search(text))


def _check_base64(text: str, max_bytes: int) -> None:
    if len(text) < 16:
        raise ValueError(f"{text!r} is too short to be an image; give a URL or raw Base64")
    size = len(text) * 3 // 4
    if size > max_bytes:
        raise ValueError(
            f"is about {_megabytes(size)} of image data; Kling accepts at most "
            f"{max_bytes // (1024 * 1024)} MB here: shrink the image or give a URL"
        )
    head = _decode_head(text)
    if head is None:
        raise ValueError("is not valid Base64; encode the file with e.g. base64 -w0 FILE")
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic):
            raise ValueError(f"is a {name} image; Kling takes jpg or png: convert it first")
    dims = image_size(head)
    if dims is None:
        return
    width, height = dims
    if min(dims) < IMAGE_MIN_PIXELS:
        raise ValueError(
            f"is {width}x{height} px; Kling needs at least {IMAGE_MIN_PIXELS} px on each side: "
            "use a larger image"
        )
    if max(dims) > IMAGE_MAX_RATIO * min(dims):
        raise ValueError(
            f"is {width}x{height} px; Kling takes aspect ratios from 1:2.5 to 2.5:1: crop it"
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


# -- local files ---------------------------------------------------------------------------------
def local_image(value: object, base: Path) -> Path | None:
    """The local file ``value`` names (relative to ``base``), or ``None`` when it is a URL, Base64
    or anything else that is not a path.

    A file that exists is a path whatever it looks like; one that does not exist is a path only if
    it looks like one (``./x.png``, ``~/x``, a name ending ``.jpg``), and then reading it fails
    with "no such file" instead of the value being sent to Kling as if it were Base64.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or is_url(text) or _DATA_URL.match(text) or "\n" in text or len(text) > 4096:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        if path.is_file():
            return path
    except (OSError, ValueError):  # a name too long or with NUL bytes is not a file here
        return None
    return path if _looks_like_path(text) else None


def image_from_file(path: str | Path, *, max_bytes: int = IMAGE_MAX_BYTES) -> str:
    """The raw Base64 (no ``data:`` prefix) of a local image file, as Kling takes it.

    Raises ``ValueError`` with one line saying what to fix when the file is missing, is not a
    file, or is larger than ``max_bytes`` (10 MB on legacy endpoints, 50 MB in the new
    standard); the image itself is then checked like any Base64 by :func:`check_image`.
    """
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    if not file.is_file():
        raise ValueError(f"{path}: is not a file; give an image file (jpg or png)")
    if size > max_bytes:
        raise ValueError(
            f"{path}: is {_megabytes(size)}; Kling accepts at most "
            f"{max_bytes // (1024 * 1024)} MB here: shrink the image or give a URL"
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    return base64.b64encode(data).decode("ascii")


_SEGMENT = re.compile(r"^(?P<key>[^\[\]]+)(?:\[(?:(?P<fkey>\w+)=(?P<fvals>[\w|]+))?\])?$")


def resolve_local_images(
    request: dict[str, Any],
    fields: Iterable[str],
    base: Path,
    *,
    max_bytes: int = IMAGE_MAX_BYTES,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``request`` with every local image path in ``fields`` replaced by the file's raw Base64.

    ``fields`` are dotted paths; ``key[]`` walks every item of a list and ``key[type=a|b]`` only
    the items whose ``type`` is ``a`` or ``b`` (``contents[type=first_frame|last_frame].url``).
    Relative paths are read from ``base``. Returns the new request (the given one is not changed)
    and a ``(field, message)`` problem for every path that cannot be read.
    """
    out = copy.deepcopy(request)
    problems: list[tuple[str, str]] = []
    for dotted in fields:
        _resolve(out, dotted.split("."), "", base, max_bytes, problems)
    return out, problems


def _resolve(
    node: Any,
    parts: list[str],
    where: str,
    base: Path,
    max_bytes: int,
    problems: list[tuple[str, str]],
) -> None:
    if not parts or not isinstance(node, dict):
        return
    match = _SEGMENT.match(parts[0])
    if match is None:
        return
    key, rest = match["key"], parts[1:]
    if key not in node:
        return
    here = f"{where}{key}"
    if "[" not in parts[0]:
        if rest:
            _resolve(node[key], rest, f"{here}.", base, max_bytes, problems)
        else:
            _replace(node, key, here, base, max_bytes, problems)
        return
    items = node[key]
    if not isinstance(items, list):
        return
    wanted = set(match["fvals"].split("|")) if match["fvals"] else None
    for i, item in enumerate(items):
        if wanted is not None and not (
            isinstance(item, dict) and item.get(match["fkey"]) in wanted
        ):
            continue
        if rest:
            _resolve(item, rest, f"{here}.{i}.", base, max_bytes, problems)
        else:
            _replace(items, i, f"{here}.{i}", base, max_bytes, problems)


def _replace(
    container: Any,
    key: Any,
    where: str,
    base: Path,
    max_bytes: int,
    problems: list[tuple[str, str]],
) -> None:
    path = local_image(container[key], base)
    if path is None:
        return
    try:
        container[key] = image_from_file(path, max_bytes=max_bytes)
    except ValueError as exc:
        shown = container[key]
        problems.append((where, str(exc).replace(str(path), str(shown), 1)))
