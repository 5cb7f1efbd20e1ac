"""Image inputs: URLs taken as given, raw Base64 checked from the file's header."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klingwatch.kling.inputs import (
    IMAGE_MIN_PIXELS,
    TASKS_IMAGE_MAX_BYTES,
    check_image,
    image_from_file,
    image_size,
    local_image,
    resolve_local_images,
)


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
    [png(300, 300), png(1920, 1080), jpeg(300, 750), jpeg(1024, 768, exif=20_000)],
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
        (jpeg(300, 751), "is 300x751 px; Kling takes aspect ratios from 1:2.5 to 2.5:1: crop it"),
        (png(2000, 700), "is 2000x700 px; Kling takes aspect ratios from 1:2.5 to 2.5:1"),
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
        ("~/photos/cat", "looks like a local file path"),
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
def test_any_size_is_refused_exactly_when_a_side_is_under_300_px_or_too_long(
    width: int, height: int, as_png: bool
) -> None:
    value = b64(png(width, height) if as_png else jpeg(width, height))

    if min(width, height) >= IMAGE_MIN_PIXELS and max(width, height) <= 2.5 * min(width, height):
        assert check_image(value) == value
    else:
        with pytest.raises(ValueError, match=f"is {width}x{height} px"):
            check_image(value)


def test_the_size_limit_is_the_endpoints() -> None:
    eleven_mb = b64(png(400, 400)) + "A" * (15 * 1024 * 1024)

    assert check_image(eleven_mb, max_bytes=TASKS_IMAGE_MAX_BYTES) == eleven_mb
    with pytest.raises(ValueError, match="Kling accepts at most 10 MB here"):
        check_image(eleven_mb)


# -- local files ---------------------------------------------------------------------------------
def test_a_local_file_is_read_into_raw_base64(tmp_path: Path) -> None:
    picture = png(400, 400)
    (tmp_path / "cat.png").write_bytes(picture)

    assert image_from_file(tmp_path / "cat.png") == b64(picture)
    assert local_image("cat.png", tmp_path) == tmp_path / "cat.png"
    assert local_image(str(tmp_path / "cat.png"), Path("/elsewhere")) == tmp_path / "cat.png"


@pytest.mark.parametrize(
    "value",
    ["https://cdn/x.png", b64(png(400, 400)), "/9j/4AAQSkZJRgABAQ", "a cat", 5, None, ""],
)
def test_urls_base64_and_other_values_are_not_paths(value: object, tmp_path: Path) -> None:
    assert local_image(value, tmp_path) is None


def test_a_missing_or_too_large_file_says_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(png(400, 400) + bytes(11 * 1024 * 1024))

    assert local_image("./gone.png", tmp_path) == tmp_path / "gone.png"
    with pytest.raises(ValueError, match=r"gone.png: no such file; check the path"):
        image_from_file(tmp_path / "gone.png")
    with pytest.raises(ValueError, match=r"big.png: is 11.0 MB; Kling accepts at most 10 MB"):
        image_from_file(tmp_path / "big.png")
    with pytest.raises(ValueError, match="is not a file"):
        image_from_file(tmp_path)


def test_resolve_reads_only_the_image_fields_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(400, 400))
    request = {
        "image": "a.png",
        "prompt": "a.png",
        "contents": [
            {"type": "first_frame", "url": "a.png"},
            {"type": "video", "url": "a.png"},
            {"type": "last_frame", "url": "./missing.png"},
        ],
    }

    out, problems = resolve_local_images(
        request, ["image", "contents[type=first_frame|last_frame].url"], tmp_path
    )

    assert out["image"] == out["contents"][0]["url"] == b64(png(400, 400))
    assert out["prompt"] == "a.png"
    assert out["contents"][1]["url"] == "a.png"
    assert problems == [("contents.2.url", "./missing.png: no such file; check the path")]
    assert request["image"] == "a.png"  # the given request is left alone
