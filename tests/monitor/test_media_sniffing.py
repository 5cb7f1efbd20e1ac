"""Telling media from web pages by their first bytes."""

from __future__ import annotations

import pytest

from klingwatch.monitor.media import accepts, ext_from_url, looks_like_html, sniff
from klingwatch.sandbox.media import png, sample_mp4


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "mp4"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"RIFF\x24\x08\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00\x00\x00\x00", "mp3"),
        (b"GIF89a\x01\x00\x01\x00", "gif"),
        (b"<!DOCTYPE html><html>", None),
        (b"RIFF\x00\x00\x00\x00AVI LIST", None),
        (b"", None),
    ],
)
def test_sniff_names_the_format_of_the_first_bytes(head: bytes, fmt: str | None) -> None:
    assert sniff(head) == fmt


def test_the_sandbox_media_is_accepted_for_its_kind_only() -> None:
    assert accepts("video", sample_mp4()[:16])
    assert accepts("image", png(2, 2, (1, 2, 3))[:16])
    assert not accepts("video", png(2, 2, (1, 2, 3))[:16])
    assert not accepts("image", sample_mp4()[:16])


def test_html_is_recognised_by_type_or_by_a_leading_angle_bracket() -> None:
    assert looks_like_html(b"", "text/html; charset=utf-8")
    assert looks_like_html(b"\xef\xbb\xbf  \n<html>")
    assert not looks_like_html(b"\x00\x00\x00\x18ftyp", "video/mp4")


def test_extensions_come_from_the_url_or_the_kind() -> None:
    assert ext_from_url("https://cdn/x/clip.MP4?sig=1", "video") == "mp4"
    assert ext_from_url("https://cdn/x/pic.jpeg", "image") == "jpg"
    assert ext_from_url("https://cdn/x/blob", "image") == "png"
    assert ext_from_url("https://cdn/x/file.exe", "audio") == "mp3"
