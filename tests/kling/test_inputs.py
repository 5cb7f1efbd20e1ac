"""Image inputs: URLs taken as given, raw Base64 checked from the file's header."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klingwatch.kling.inputs import IMAGE_MIN_PIXELS, check_image, image_size


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def jpeg(width: int, height: int, *, exif: int = 0, progressive: bool = False) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    app1 = b"\xff\xe1" + struct.pack(">H", exif + 2) + bytes(exif) if exif else b""
    sof = b"\xff\xc2" if progressive else b"\xff\xc0"
    frame = sof + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + app1 + frame + b"\xff\xda"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_url_is_taken_as_given() -> None:
    url = "https://cdn.example.com/cat.png?sig=abc"

    assert check_image(url) == url
    assert check_image("HTTP://example.com/x") == "HTTP://example.com/x"


@pytest.mark.parametrize(
    "data",
    [png(300, 300), png(1920, 1080), jpeg(300, 4000), jpeg(1024, 768, exif=20_000)],
)
def test_a_large_enough_png_or_jpeg_passes(data: bytes) -> None:
    assert check_image(b64(data)) == b64(data)


def test_base64_with_line_breaks_or_url_safe_letters_is_read() -> None:
    wrapped = "\n".join(b64(jpeg(640, 480) + bytes(300))[i : i + 76] for i in range(0, 400, 76))
    url_safe = base64.urlsafe_b64encode(png(500, 500) + b"\xfb\xff" * 30).decode()

    assert check_image(wrapped) == wrapped
    assert "-" in url_safe or "_" in url_safe
    assert check_image(url_safe) == url_safe


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (png(299, 1000), "is 299x1000 px; Kling needs at least 300 px on each side"),
        (jpeg(1000, 120), "is 1000x120 px"),
        (jpeg(64, 64, progressive=True), "is 64x64 px"),
        (b"GIF89a" + bytes(30), "is a GIF image; Kling takes jpg or png: convert it first"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(30), "is a WebP image"),
    ],
)
def test_an_image_kling_would_refuse_is_refused_with_the_reason(data: bytes, says: str) -> None:
    with pytest.raises(ValueError, match="Kling") as caught:
        check_image(b64(data))

    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "image is empty; give an image URL or raw Base64"),
        ("   ", "image is empty"),
        ("data:image/png;base64,iVBORw0K", "starts with 'data:image/png;base64,'; Kling wants"),
        ("./cat.png", "'./cat.png' looks like a local file path"),
        ("C:\\photos\\cat.jpg", "looks like a local file path"),
        ("holiday.JPG", "looks like a local file path"),
        ("a cat on a sofa", "must be an http(s) URL or raw Base64 image data"),
        ("abc", "'abc' is too short to be an image"),
        ("QUFB QUFB QUFB QUFB QUFB", "must be an http(s) URL or raw Base64"),
        ("AAAA", "'AAAA' is too short to be an image"),
        ("A" * 21, "is not valid Base64"),
        (
            "A" * (11 * 1024 * 1024 * 4 // 3),
            "is about 11.0 MB of image data; Kling accepts at most",
        ),
    ],
)
def test_what_is_not_an_image_says_what_to_give(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        check_image(value)


def test_base64_of_an_unknown_kind_is_left_to_kling() -> None:
    # Only what is certainly wrong is refused; Kling has the last word on the rest.
    other = b64(b"\x00\x01 some other container " * 4)

    assert check_image(other) == other


def test_image_size_reads_only_png_and_jpeg_headers() -> None:
    assert image_size(png(1, 2)) == (1, 2)
    assert image_size(jpeg(3, 4)) == (3, 4)
    assert image_size(b"\xff\xd8\xff\xe0\x00") is None  # cut short
    assert image_size(b"\xff\xd8garbage!") is None
    assert image_size(b"not an image") is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.booleans())
def test_any_size_is_refused_exactly_when_a_side_is_under_300_px(
    width: int, height: int, as_png: bool
) -> None:
    value = b64(png(width, height) if as_png else jpeg(width, height))

    if min(width, height) >= IMAGE_MIN_PIXELS:
        assert check_image(value) == value
    else:
        with pytest.raises(ValueError, match=f"is {width}x{height} px"):
            check_image(value)
