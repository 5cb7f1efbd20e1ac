"""Warnings: typos and unknown models get a "did you mean", unsupported combinations a note.

None of these refuses anything: the request is sent as written (unknown fields included), and
only ``klingwatch submit --strict`` turns a warning into an error.
"""

from __future__ import annotations

from typing import Any

import pytest

from klingwatch.kling.advice import closest
from klingwatch.kling.products import get_product

URL = "https://cdn.example.com/in/cat.png"


def warnings(product: str, request: dict[str, Any]) -> list[str]:
    checked = get_product(product).check(request)
    assert checked.body  # accepted, whatever the warnings say
    return [f"{field}: {msg}" if field else msg for field, msg in checked.warnings]


@pytest.mark.parametrize(
    ("product", "request_", "says"),
    [
        (
            "text2video",
            {"prompt": "p", "durration": 5},
            "durration: is not a field Kling documents "
            "here; did you mean 'duration'? (sent as given)",
        ),
        ("text2video", {"prompt": "p", "negative_promt": "blur"}, "did you mean 'negative_prompt'"),
        (
            "text2video",
            {"model": "kling-v1", "prompt": "p"},
            "model: is not a field Kling documents here; did you mean 'model_name'?",
        ),
        (
            "text-to-video/kling-2.6",
            {"prompt": "p", "settings": {"resolutoin": "1080p"}},
            "settings.resolutoin: is not a field Kling documents here; did you mean 'resolution'",
        ),
        (
            "text-to-video/kling-2.6",
            {"prompt": "p", "aspect_ration": "9:16"},
            "did you mean 'aspect_ratio'",
        ),
        (
            "image-to-video/kling-2.6",
            {"contents": [{"type": "first_frame", "url": URL, "urll": URL}]},
            "contents.0.urll: is not a field Kling documents here; did you mean 'url'",
        ),
        (
            "effects",
            {"effect_scene": "hug", "input": {"image": URL, "imagess": [URL]}},
            "input.imagess: is not a field Kling documents here; did you mean 'images'",
        ),
    ],
)
def test_a_misspelled_field_gets_a_did_you_mean_and_is_still_sent(
    product: str, request_: dict[str, Any], says: str
) -> None:
    assert any(says in w for w in warnings(product, request_))
    body = get_product(product).validate(request_)
    typo = next(iter(k for k in request_ if k not in ("prompt", "contents", "settings")), None)
    if typo is not None and product.startswith("text2video"):
        assert body[typo] == request_[typo]


def test_an_unknown_field_with_no_near_name_passes_silently() -> None:
    assert warnings("text2video", {"prompt": "p", "seed": 42, "x_new_thing": {"a": 1}}) == []


@pytest.mark.parametrize(
    ("product", "request_", "says"),
    [
        (
            "text2video",
            {"prompt": "p", "model_name": "kling-v2-6-pro"},
            "'kling-v2-6-pro' is not "
            "a text2video model klingwatch knows; did you mean 'kling-v2-6'? sent as given",
        ),
        (
            "image-generation",
            {"prompt": "p", "model_name": "kling-v21"},
            "did you mean 'kling-v2-1'",
        ),
        (
            "text-to-video/kling-3.1-turbo",
            {"prompt": "p"},
            "'kling-3.1-turbo' is not a "
            "text-to-video model klingwatch knows; did you mean 'kling-3.0-turbo'?",
        ),
        (
            "text2video",
            {"prompt": "p", "model_name": "kling-3.0-turbo"},
            "model_name: "
            "'kling-3.0-turbo' is a new-standard model; Kling takes it as product "
            "'text-to-video/kling-3.0-turbo'",
        ),
    ],
)
def test_an_unknown_model_gets_a_warning_with_the_nearest_known_name(
    product: str, request_: dict[str, Any], says: str
) -> None:
    assert any(says in w for w in warnings(product, request_))


def test_a_known_model_gets_no_warning() -> None:
    for model in ("kling-v1", "kling-v2-6", "kling-v3"):
        assert warnings("text2video", {"prompt": "p", "model_name": model}) == []
    assert warnings("text-to-video/kling-3.0-turbo", {"prompt": "p"}) == []


@pytest.mark.parametrize(
    ("product", "request_", "says"),
    [
        # KLING_PROTOCOL.md: cfg_scale "not for v2.x models"; ComfyUI sends it by default.
        (
            "text2video",
            {"prompt": "p", "model_name": "kling-v2-master", "cfg_scale": 0.5},
            "cfg_scale: kling-v2-master may ignore cfg_scale",
        ),
        ("text2video", {"prompt": "p", "sound": "on"}, 'sound: "on" is documented for kling-v2-6'),
        (
            "text2video",
            {"prompt": "p", "camera_control": {"type": "simple", "config": {"zoom": 2, "pan": 1}}},
            "camera_control.config: Kling's docs ask for exactly one non-zero axis",
        ),
        (
            "text2video",
            {"prompt": "p", "camera_control": {"type": "simple"}},
            'camera_control: type "simple" moves nothing without a config',
        ),
        (
            "image2video",
            {"image": URL, "image_tail": URL, "camera_control": {"type": "down_back"}},
            "image_tail and camera_control are documented as mutually exclusive",
        ),
        (
            "image-generation",
            {"prompt": "p", "callback_url": "me.example/cb"},
            "callback_url: 'me.example/cb' is not an http(s) URL, so Kling cannot call it back",
        ),
        (
            "text-to-video/kling-2.6",
            {"prompt": "p", "callback_url": "ftp://me"},
            "options.callback_url: 'ftp://me' is not an http(s) URL",
        ),
        (
            "lip-sync",
            {
                "input": {
                    "video_id": "v",
                    "mode": "text2video",
                    "text": "t",
                    "voice_id": "x",
                    "voice_speed": 3,
                }
            },
            "input.voice_speed: 3 is outside 0.8-2.0",
        ),
        # kling-2.6-t2v.md: "When generating videos with native audio, only 1080P is supported."
        (
            "text-to-video/kling-2.6",
            {"prompt": "p", "audio": "native"},
            "settings.resolution: kling-2.6 makes native audio in 1080p only",
        ),
        # kling-2.6-i2v.md: "When specifying a voice, the sound parameter audio cannot be off."
        (
            "image-to-video/kling-2.6",
            {
                "contents": [
                    {"type": "first_frame", "url": URL},
                    {"type": "voice", "voice_id": "v", "id": "1"},
                ]
            },
            "settings.audio: a voice part needs",
        ),
        # kling-o1-video.md: a first frame alone makes "only 5-second or 10-second videos".
        (
            "omni-video/kling-o1",
            {"contents": [{"type": "first_frame", "url": URL}], "duration": 3},
            "kling-o1 makes 5 or 10 s from a first frame alone",
        ),
        # kling-omni-3.0-ovg.md: a base video "does not support defining the first or last frame"
        (
            "omni-video/kling-3.0-omni",
            {
                "contents": [
                    {"type": "first_frame", "url": URL},
                    {"type": "base_video", "url": "https://cdn/v.mp4"},
                ]
            },
            "a base_video cannot take a first",
        ),
        (
            "image-generation",
            {"prompt": "p", "image": URL, "negative_prompt": "blur"},
            "negative_prompt: Kling ignores a negative prompt with an image",
        ),
        ("text-to-audio", {"prompt": "rain", "duration": 3.25}, "has more than one decimal"),
    ],
)
def test_what_a_page_only_calls_unsupported_is_a_warning_not_a_refusal(
    product: str, request_: dict[str, Any], says: str
) -> None:
    assert any(says in w for w in warnings(product, request_)), warnings(product, request_)


def test_closest_needs_a_near_name() -> None:
    assert closest("durration", ["duration", "mode"]) == "duration"
    assert closest("seed", ["duration", "mode"]) is None
