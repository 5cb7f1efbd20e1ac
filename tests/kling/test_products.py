"""The product registry and every product's request validation, as a user sees it."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klingwatch.errors import ConfigurationError
from klingwatch.kling.errors import RequestValidationError, UnknownProduct
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.products import (
    PRODUCTS,
    ExpectedTiming,
    Family,
    Product,
    get_product,
    product_names,
)

URL = "https://cdn.example.com/in/cat.png"


def _png(width: int, height: int) -> str:
    """Raw Base64 of a PNG's signature and header chunk: all the validation reads."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


B64 = _png(512, 512)


def problem(product: str, request: Any) -> str:
    """The one line a user sees for a refused request."""
    with pytest.raises(RequestValidationError) as caught:
        get_product(product).validate(request)
    assert caught.value.product == get_product(product).name
    return str(caught.value)


# -- the registry ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "path", "family"),
    [
        ("text2video", "/v1/videos/text2video", Family.VIDEO),
        ("image2video", "/v1/videos/image2video", Family.VIDEO),
        ("multi-image2video", "/v1/videos/multi-image2video", Family.VIDEO),
        ("video-extend", "/v1/videos/video-extend", Family.VIDEO),
        ("lip-sync", "/v1/videos/lip-sync", Family.VIDEO),
        ("effects", "/v1/videos/effects", Family.VIDEO),
        ("image-generation", "/v1/images/generations", Family.IMAGE),
        ("virtual-try-on", "/v1/images/kolors-virtual-try-on", Family.TRY_ON),
    ],
)
def test_every_legacy_product_of_section_3_is_registered(
    name: str, path: str, family: Family
) -> None:
    product = PRODUCTS[name]

    assert (product.path, product.family, product.standard) == (path, family, ApiStandard.LEGACY)
    assert product.query_path == path
    assert get_product(path) is product
    assert get_product(path.lstrip("/")) is product


@pytest.mark.parametrize(
    ("name", "durations", "prompt_max"),
    [
        ("text-to-video/kling-3.0-turbo", tuple(range(3, 16)), 3072),
        ("text-to-video/kling-3.0", tuple(range(3, 16)), 3072),
        ("text-to-video/kling-2.6", (5, 10), 2500),
        ("text-to-video/kling-2.5-turbo", (5, 10), 2500),
        ("image-to-video/kling-3.0-turbo", tuple(range(3, 16)), 2500),
        ("image-to-video/kling-3.0", tuple(range(3, 16)), 3072),
        ("image-to-video/kling-2.6", (5, 10), 2500),
        ("omni-video/kling-3.0-omni", tuple(range(3, 16)), 3072),
        ("omni-video/kling-o1", tuple(range(3, 11)), 2500),
        ("motion-control/kling-3.0", (), 2500),  # the page documents no duration
    ],
)
def test_new_standard_products_carry_their_models_rules(
    name: str, durations: tuple[int, ...], prompt_max: int
) -> None:
    product = PRODUCTS[name]

    assert product.standard is ApiStandard.TASKS
    assert product.family is Family.VIDEO
    assert product.path == "/" + name
    assert product.query_path == "/tasks"
    assert product.model == name.split("/")[1]
    assert (product.durations, product.prompt_max) == (durations, prompt_max)
    assert get_product("/" + name) is product


@pytest.mark.parametrize(
    "alias",
    [
        "/v1/videos/text2video",
        "v1/videos/text2video/",
        " TEXT2VIDEO ",
        "https://api-singapore.klingai.com/v1/videos/text2video",
    ],
)
def test_api_paths_and_urls_are_aliases(alias: str) -> None:
    assert get_product(alias).name == "text2video"


def test_a_new_standard_model_not_yet_registered_gets_the_generic_rules() -> None:
    product = get_product("/text-to-video/kling-4.0")

    assert (product.name, product.path, product.model) == (
        "text-to-video/kling-4.0",
        "/text-to-video/kling-4.0",
        "kling-4.0",
    )
    assert product.durations == ()  # no guessing at a new model's durations
    assert product.validate({"prompt": "p", "duration": 20}) == {
        "prompt": "p",
        "settings": {"duration": 20},
    }


@pytest.mark.parametrize("name", ["txt2video", "text-to-video/gpt-9", "v1/videos", "", 5])
def test_an_unknown_product_names_the_known_ones(name: Any) -> None:
    with pytest.raises(UnknownProduct) as caught:
        get_product(name)

    assert isinstance(caught.value, KeyError)  # callers that catch KeyError keep working
    assert isinstance(caught.value, ConfigurationError)  # and the CLI prints one line
    assert str(caught.value).startswith(f"unknown product {name!r}; known products: text2video")
    assert caught.value.args[0] == str(caught.value)


def test_product_names_lists_the_registry() -> None:
    assert product_names() == list(PRODUCTS)
    assert {"text2video", "image-generation", "text-to-video/kling-3.0-turbo"} <= set(
        product_names()
    )


# -- happy paths: the body is the request as written ---------------------------------------------
HAPPY = [
    ("text2video", {"prompt": "a red fox running through snow"}),
    (
        "text2video",
        {
            "prompt": "a fox",
            "negative_prompt": "blur",
            "model_name": "kling-v1-6",
            "mode": "pro",
            "duration": "10",
            "aspect_ratio": "9:16",
            "cfg_scale": 0.5,
            "camera_control": {"type": "simple", "config": {"zoom": 5}},
        },
    ),
    ("text2video", {"prompt": "a fox", "model_name": "kling-v2-6", "sound": "on"}),
    ("image2video", {"image": URL, "prompt": "it waves"}),
    ("image2video", {"image": B64, "image_tail": URL, "mode": "std", "duration": "5"}),
    (
        "image2video",
        {
            "image": URL,
            "static_mask": URL,
            "dynamic_masks": [{"mask": URL, "trajectories": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}],
        },
    ),
    ("image2video", {"image": URL, "camera_control": {"type": "down_back"}}),
    (
        "multi-image2video",
        {
            "prompt": "they meet",
            "image_list": [{"image": URL}, {"image": B64}],
            "aspect_ratio": "1:1",
        },
    ),
    ("video-extend", {"video_id": "866889456698785798", "prompt": "keep going"}),
    (
        "lip-sync",
        {"input": {"video_id": "v1", "mode": "text2video", "text": "hello", "voice_id": "girl"}},
    ),
    (
        "lip-sync",
        {
            "input": {
                "video_url": "https://x/v.mp4",
                "mode": "audio2video",
                "audio_type": "url",
                "audio_url": "https://x/a.mp3",
            }
        },
    ),
    ("effects", {"effect_scene": "bloombloom", "input": {"image": URL, "duration": "5"}}),
    ("effects", {"effect_scene": "hug", "input": {"images": [URL, B64]}}),
    ("image-generation", {"prompt": "a lighthouse"}),
    (
        "image-generation",
        {
            "prompt": "a lighthouse",
            "model_name": "kling-v1-5",
            "image": URL,
            "image_reference": "subject",
            "image_fidelity": 0.5,
            "human_fidelity": 1,
            "resolution": "2k",
            "n": 9,
            "aspect_ratio": "21:9",
        },
    ),
    ("virtual-try-on", {"human_image": URL, "cloth_image": B64}),
    ("text-to-video/kling-3.0-turbo", {"prompt": "a fox", "settings": {"duration": 15}}),
    (
        "text-to-video/kling-2.6",
        {"prompt": "a fox", "settings": {"resolution": "1080p", "aspect_ratio": "16:9"}},
    ),
    (
        "image-to-video/kling-3.0",
        {
            "contents": [
                {"type": "prompt", "text": "it waves"},
                {"type": "first_frame", "url": URL},
                {"type": "last_frame", "url": URL},
            ],
            "settings": {"duration": 3, "audio": "native", "multi_shot": False},
            "options": {"watermark_info": {"enabled": False}},
        },
    ),
    ("omni-video/kling-o1", {"contents": [{"type": "prompt", "text": "x"}], "settings": {}}),
    (
        "motion-control/kling-2.6",
        {
            "contents": [{"type": "image", "url": URL}, {"type": "video", "url": URL}],
            "settings": {"character_orientation": "image"},
        },
    ),
    ("text2video", {"prompt": "a fox", "model_name": "kling-v3", "mode": "4k", "duration": "15"}),
    ("effects", {"effect_scene": "bloombloom", "input": {"image": URL, "duration": "3"}}),
]


@pytest.mark.parametrize(("product", "request_"), HAPPY)
def test_every_products_happy_path_validates_to_itself(
    product: str, request_: dict[str, Any]
) -> None:
    body = get_product(product).validate(request_)

    assert body == request_
    assert get_product(product).validate(body) == body


def test_a_product_key_in_the_request_is_not_sent() -> None:
    assert get_product("text2video").validate({"product": "text2video", "prompt": "p"}) == {
        "prompt": "p"
    }


def test_unknown_fields_pass_through_untouched() -> None:
    request = {"prompt": "p", "seed": 42, "new_thing": {"a": [1, None]}, "flag": None}

    assert get_product("text2video").validate(request) == request


# -- normalization -------------------------------------------------------------------------------
@pytest.mark.parametrize("given", [5, "5", 5.0, "5.0", " 5 "])
def test_a_legacy_duration_is_sent_as_the_string_kling_wants(given: Any) -> None:
    body = get_product("text2video").validate({"prompt": "p", "duration": given})

    assert body["duration"] == "5"


@pytest.mark.parametrize("given", [5, "5", 5.0])
def test_a_new_standard_duration_is_sent_as_an_integer(given: Any) -> None:
    body = get_product("text-to-video/kling-2.6").validate({"prompt": "p", "duration": given})

    assert body == {"prompt": "p", "settings": {"duration": 5}}


def test_flat_new_standard_fields_move_where_kling_wants_them() -> None:
    body = get_product("text-to-video/kling-3.0").validate(
        {
            "prompt": "p",
            "duration": 8,
            "resolution": "4k",
            "aspect_ratio": "9:16",
            "audio": "native",
            "callback_url": "https://me.example/cb",
            "external_task_id": "b-1",
            "settings": {"multi_shot": True},
        }
    )

    assert body == {
        "prompt": "p",
        "settings": {
            "multi_shot": True,
            "duration": 8,
            "resolution": "4k",
            "aspect_ratio": "9:16",
            "audio": "native",
        },
        "options": {"callback_url": "https://me.example/cb", "external_task_id": "b-1"},
    }


def test_the_same_setting_given_twice_with_two_values_is_refused() -> None:
    assert problem(
        "text-to-video/kling-2.6", {"prompt": "p", "duration": 5, "settings": {"duration": 10}}
    ) == (
        "invalid text-to-video/kling-2.6 request: duration is given twice "
        "(5 and settings.duration=10); keep one"
    )


def test_a_legacy_body_carries_routing_fields_at_the_top() -> None:
    body = get_product("text2video").body(
        {"prompt": "p", "duration": 5}, external_task_id="b-1", callback_url="https://me/cb"
    )

    assert body == {
        "prompt": "p",
        "duration": "5",
        "external_task_id": "b-1",
        "callback_url": "https://me/cb",
    }


def test_a_new_standard_body_carries_routing_fields_in_options() -> None:
    product = get_product("text-to-video/kling-3.0-turbo")
    body = product.body(
        {"prompt": "p", "options": {"external_task_id": "old", "watermark_info": {"on": 1}}},
        external_task_id="b-1",
        callback_url="https://me/cb",
    )

    assert body == {
        "prompt": "p",
        "options": {
            "external_task_id": "b-1",
            "watermark_info": {"on": 1},
            "callback_url": "https://me/cb",
        },
    }
    assert product.body(body) == body


# -- every rule, with the message the user sees ----------------------------------------------------
RULES = [
    # required fields
    ("text2video", {}, "prompt: is required; describe what to generate"),
    ("text2video", {"prompt": "   "}, "prompt: is empty; describe what to generate"),
    ("text2video", {"prompt": 5}, "prompt: must be a valid string, got 5"),
    (
        "image2video",
        {"prompt": "p"},
        "image2video needs image (or image_tail): a URL or raw Base64",
    ),
    ("image2video", {"image": None}, "image2video needs image (or image_tail)"),
    (
        "multi-image2video",
        {"prompt": "p"},
        'image_list: is required; give 1 to 4 {"image": URL or raw Base64} items',
    ),
    ("video-extend", {}, "video_id: is required; the video id from an earlier Kling video task"),
    ("video-extend", {"video_id": ""}, "video_id: is empty; give a value"),
    ("effects", {"input": {"image": URL}}, "effect_scene: is required; the effect's name"),
    ("virtual-try-on", {"human_image": URL}, "cloth_image: is required; a URL or raw Base64"),
    ("image-generation", {"n": 2}, "prompt: is required"),
    # prompt lengths
    (
        "text2video",
        {"prompt": "x" * 2501},
        "prompt: is 2501 characters; Kling accepts at most 2500",
    ),
    (
        "image2video",
        {"image": URL, "negative_prompt": "x" * 2600},
        "negative_prompt: is 2600 characters; Kling accepts at most 2500: shorten it",
    ),
    (
        "text-to-video/kling-3.0-turbo",
        {"prompt": "x" * 3073},
        "prompt: is 3073 characters; text-to-video/kling-3.0-turbo accepts at most 3072",
    ),
    (
        "image-to-video/kling-3.0",
        {"prompt": "x" * 3073, "contents": [{"type": "first_frame", "url": URL}]},
        "contents.0.text: is 3073 characters; image-to-video/kling-3.0 accepts at most 3072",
    ),
    (
        "omni-video/kling-o1",
        {"contents": [{"type": "prompt", "text": "x" * 2501}]},
        "contents.0.text: is 2501 characters",
    ),
    # durations
    (
        "text2video",
        {"prompt": "p", "duration": "7"},
        'duration: kling-v1 offers "5" or "10" (seconds), got 7',
    ),
    (
        "text2video",
        {"prompt": "p", "model_name": "kling-v3", "duration": 16},
        'duration: kling-v3 offers "3" to "15" (seconds), got 16',
    ),
    ("text2video", {"prompt": "p", "duration": True}, "duration: must be a whole number of"),
    (
        "effects",
        {"effect_scene": "hug", "input": {"image": URL, "duration": 2.5}},
        "input.duration",
    ),
    (
        "text-to-video/kling-2.6",
        {"prompt": "p", "duration": 7},
        "settings.duration: 7 s is not offered by kling-2.6; use 5 or 10",
    ),
    (
        "text-to-video/kling-3.0",
        {"prompt": "p", "duration": 16},
        "settings.duration: 16 s is not offered by kling-3.0; use 3-15",
    ),
    (
        "omni-video/kling-o1",
        {"prompt": "p", "settings": {"duration": 11}},
        "settings.duration: 11 s is not offered by kling-o1; use 3-10",
    ),
    (
        "text-to-video/kling-3.0",
        {"prompt": "p", "duration": 5.5},
        "settings.duration: must be a whole number of seconds (1 or more), got 5.5",
    ),
    (
        "text-to-video/kling-3.0",
        {"prompt": "p", "duration": "inf"},
        "settings.duration: must be a whole number of seconds (1 or more), got 'inf'",
    ),
    (
        "text-to-video/kling-3.0",
        {"prompt": "p", "duration": "five"},
        "settings.duration: must be a whole number of seconds, got 'five'",
    ),
    # enums
    (
        "text2video",
        {"prompt": "p", "mode": "ultra"},
        "mode: must be 'std', 'pro' or '4k', got 'ultra'",
    ),
    (
        "text2video",
        {"prompt": "p", "aspect_ratio": "4:3"},
        "aspect_ratio: must be '16:9', '9:16' or '1:1', got '4:3'",
    ),
    ("text2video", {"prompt": "p", "sound": "loud"}, "sound: must be 'on' or 'off', got 'loud'"),
    (
        "multi-image2video",
        {"prompt": "p", "image_list": [{"image": URL}], "aspect_ratio": "21:9"},
        "aspect_ratio: must be '16:9', '9:16' or '1:1', got '21:9'",
    ),
    (
        "image-generation",
        {"prompt": "p", "aspect_ratio": "5:4"},
        "aspect_ratio: must be '16:9', '9:16', '1:1', '4:3', '3:4', '3:2', '2:3', '21:9' or 'auto'",
    ),
    ("image-generation", {"prompt": "p", "resolution": "4k"}, "resolution: must be '1k' or '2k'"),
    (
        "text-to-video/kling-2.6",
        {"prompt": "p", "resolution": "8k"},
        "settings.resolution: '8k' is not offered by kling-2.6; use '720p' or '1080p'",
    ),
    (
        "text-to-video/kling-2.6",
        {"prompt": "p", "aspect_ratio": "wide"},
        "settings.aspect_ratio: must look like \"16:9\", got 'wide'",
    ),
    (
        "text-to-video/kling-2.6",
        {"prompt": "p", "audio": "loud"},
        "settings.audio: 'loud' is not offered by kling-2.6; use 'native' or 'off'",
    ),
    (
        "lip-sync",
        {"input": {"video_id": "v", "mode": "sing"}},
        "input.mode: must be 'text2video' or 'audio2video', got 'sing'",
    ),
    # numeric ranges
    (
        "text2video",
        {"prompt": "p", "cfg_scale": 1.5},
        "cfg_scale: must be between 0 and 1, got 1.5",
    ),
    ("video-extend", {"video_id": "v", "cfg_scale": -0.1}, "cfg_scale: must be between 0 and 1"),
    ("image-generation", {"prompt": "p", "n": 10}, "n: must be between 1 and 9, got 10"),
    ("image-generation", {"prompt": "p", "n": 0}, "n: must be between 1 and 9, got 0"),
    ("image-generation", {"prompt": "p", "n": True}, "n: must be a number, not true"),
    ("image-generation", {"prompt": "p", "image_fidelity": 2}, "image_fidelity: must be between"),
    ("image-generation", {"prompt": "p", "human_fidelity": -1}, "human_fidelity: must be between"),
    # camera control
    (
        "text2video",
        {"prompt": "p", "camera_control": {"type": "simple", "config": {"zoom": 11}}},
        "camera_control.config.zoom: must be between -10 and 10, got 11",
    ),
    ("text2video", {"prompt": "p", "camera_control": "zoom"}, "camera_control: must be a JSON"),
    # image2video exclusions and list sizes
    (
        "image2video",
        {"image": URL, "dynamic_masks": [{"mask": URL}] * 7},
        "dynamic_masks: has 7 masks; Kling accepts at most 6: remove some",
    ),
    (
        "multi-image2video",
        {"prompt": "p", "image_list": [{"image": URL}] * 5},
        'image_list: needs 1 to 4 {"image": ...} items, got 5',
    ),
    ("multi-image2video", {"prompt": "p", "image_list": []}, "image_list: needs 1 to 4"),
    (
        "effects",
        {"effect_scene": "hug", "input": {"images": [URL]}},
        "input: images takes exactly 2 images, got 1",
    ),
    (
        "effects",
        {"effect_scene": "hug", "input": {"image": URL, "images": [URL, URL]}},
        "input: needs exactly one of image or images (two images)",
    ),
    # lip-sync consistency
    (
        "lip-sync",
        {"input": {"mode": "text2video", "text": "t", "voice_id": "v"}},
        "input: needs exactly one of video_id (an earlier Kling video) or video_url",
    ),
    (
        "lip-sync",
        {"input": {"video_id": "v", "mode": "text2video", "text": "t"}},
        'input: mode "text2video" needs text and voice_id',
    ),
    (
        "lip-sync",
        {"input": {"video_id": "v", "mode": "audio2video"}},
        'input: mode "audio2video" needs audio_file or audio_url',
    ),
    (
        "lip-sync",
        {"input": {"video_id": "v", "mode": "audio2video", "audio_type": "file", "audio_url": "u"}},
        'input: audio_type "file" needs audio_file (raw Base64)',
    ),
    # images: URL or raw Base64
    (
        "image2video",
        {"image": "data:image/png;base64," + B64},
        "image: starts with 'data:image/png;base64,'; Kling wants the raw Base64 only: remove "
        "everything up to and including the first comma",
    ),
    (
        "virtual-try-on",
        {"human_image": URL, "cloth_image": "DATA:image/jpeg;base64,/9j/4AAQ"},
        "cloth_image: starts with 'DATA:image/jpeg;base64,'",
    ),
    (
        "multi-image2video",
        {"prompt": "p", "image_list": [{"image": "data:image/png;base64," + B64}]},
        "image_list.0.image: starts with 'data:image/png;base64,'",
    ),
    (
        "image2video",
        {"image": "./photos/cat.png"},
        "image: './photos/cat.png' looks like a local file path; give an http(s) URL or the "
        "file's raw Base64",
    ),
    ("image2video", {"image": "not an image!"}, "image: must be an http(s) URL or raw Base64"),
    ("image2video", {"image": ""}, "image: image is empty; give an image URL or raw Base64"),
    ("image2video", {"image": "A" * (14 * 1024 * 1024)}, "Kling accepts at most 10 MB"),
    (
        "image2video",
        {"image": _png(64, 400)},
        "image: is 64x400 px; Kling needs at least 300 px on each side: use a larger image",
    ),
    (
        "virtual-try-on",
        {"human_image": URL, "cloth_image": base64.b64encode(b"GIF89a" + bytes(40)).decode()},
        "cloth_image: is a GIF image; Kling takes jpg or png: convert it first",
    ),
    (
        "image-to-video/kling-2.6",
        {"contents": [{"type": "first_frame", "url": "data:image/png;base64," + B64}]},
        "contents.0: starts with 'data:image/png;base64,'",
    ),
    # new-standard structure
    (
        "text-to-video/kling-2.6",
        {"settings": {"duration": 5}},
        "prompt: is required for text-to-video: describe the video to generate",
    ),
    (
        "image-to-video/kling-2.6",
        {"prompt": "p"},
        'contents: image-to-video needs a start image: add {"type": "first_frame", "url": ...}',
    ),
    (
        "omni-video/kling-o1",
        {"contents": [{"type": "prompt", "text": " "}]},
        'contents.0: a {"type": "prompt"} part needs a non-empty "text"',
    ),
    (
        "image-to-video/kling-2.6",
        {"contents": [{"type": "first_frame"}]},
        'contents.0: a {"type": "first_frame"} part needs a "url"',
    ),
    ("omni-video/kling-o1", {"contents": "a fox"}, "contents: must be a list, got 'a fox'"),
    ("text-to-video/kling-2.6", {"prompt": "p", "settings": 5}, "settings: must be a JSON object"),
    ("text2video", ["prompt"], "a request must be a JSON object, got list"),
    # an empty external_task_id is no id; what else is missing is still reported
    ("lip-sync", {"external_task_id": "", "input": {}}, "input.mode: is required"),
]


@pytest.mark.parametrize(("product", "request_", "says"), RULES)
def test_every_rule_refuses_with_a_message_that_says_what_to_fix(
    product: str, request_: Any, says: str
) -> None:
    message = problem(product, request_)

    assert message.startswith(f"invalid {get_product(product).name} request: ")
    assert says in message
    assert "\n" not in message
    assert "Input should be" not in message  # pydantic's wording is translated


def test_every_problem_of_a_request_is_reported_at_once() -> None:
    with pytest.raises(RequestValidationError) as caught:
        get_product("image-generation").validate(
            {"prompt": "p", "n": 10, "image_fidelity": -0.1, "human_fidelity": 3}
        )

    assert [field for field, _ in caught.value.problems] == [
        "n",
        "image_fidelity",
        "human_fidelity",
    ]


def test_rules_across_fields_are_all_reported_once_the_fields_are_valid() -> None:
    with pytest.raises(RequestValidationError) as caught:
        get_product("image-generation").validate(
            {"prompt": "p", "resolution": "4k", "aspect_ratio": "5:4", "image_reference": "face"}
        )

    assert [field for field, _ in caught.value.problems] == [
        "image",
        "resolution",
        "aspect_ratio",
    ]


# -- slots, timings, models ----------------------------------------------------------------------
def test_a_video_takes_one_slot_and_an_image_generation_takes_n() -> None:
    assert get_product("text2video").slot_cost({"prompt": "p"}) == 1
    assert get_product("text-to-video/kling-3.0").slot_cost({"prompt": "p", "n": 4}) == 1
    assert get_product("virtual-try-on").slot_cost({}) == 1
    assert get_product("image-generation").slot_cost({"prompt": "p"}) == 1
    assert get_product("image-generation").slot_cost({"prompt": "p", "n": 9}) == 9
    assert get_product("image-generation").slot_cost({"prompt": "p", "n": "3"}) == 3


def test_cold_start_timings_follow_the_protocols_section_5() -> None:
    std = get_product("text2video").expected_timing({"prompt": "p"})
    pro = get_product("text2video").expected_timing({"prompt": "p", "mode": "pro"})

    assert (std.queue_p50, std.queue_p95) == (10, 30)  # queued 0-30 s
    assert 30 <= std.run_p50 <= std.run_p95 <= 120  # processing 30-120 s (std)
    assert 60 <= pro.run_p50 <= pro.run_p95 <= 300  # processing 60-300 s (pro)
    assert pro.queue_p50 == std.queue_p50
    assert get_product("text2video").expected_timing() == get_product("text2video").timing


def test_longer_and_sharper_videos_are_expected_to_run_longer() -> None:
    product = get_product("text-to-video/kling-3.0")
    five = product.expected_timing({"prompt": "p", "settings": {"duration": 5}})
    ten = product.expected_timing({"prompt": "p", "duration": 10})
    sharp = product.expected_timing({"prompt": "p", "settings": {"resolution": "4k"}})

    assert ten.run_p50 > five.run_p50
    assert sharp.run_p50 > five.run_p50
    effects = get_product("effects")
    assert (
        effects.expected_timing({"input": {"duration": "10"}}).run_p50
        > effects.expected_timing({"input": {"duration": "5"}}).run_p50
    )


def test_image_timings_ignore_the_request() -> None:
    product = get_product("image-generation")

    assert product.expected_timing({"prompt": "p", "n": 9}) == product.timing
    assert isinstance(product.timing, ExpectedTiming)
    assert product.timing.total_p50 == product.timing.queue_p50 + product.timing.run_p50
    assert product.timing.total_p95 == product.timing.queue_p95 + product.timing.run_p95


def test_the_model_of_a_request() -> None:
    assert get_product("text2video").model_of({"model_name": "kling-v2-6"}) == "kling-v2-6"
    assert get_product("text2video").model_of({}) == "kling-v1"
    assert get_product("multi-image2video").model_of({}) == "kling-v1-6"
    assert get_product("text-to-video/kling-2.6").model_of({"model_name": "x"}) == "kling-2.6"
    assert get_product("video-extend").model_of({}) is None


def test_describe_says_what_a_request_needs() -> None:
    assert get_product("text2video").describe() == (
        "text2video: POST /v1/videos/text2video (video pack); needs prompt"
    )
    assert get_product("image2video").describe().endswith("needs image or image_tail")
    assert get_product("text-to-video/kling-2.6").describe() == (
        "text-to-video/kling-2.6: POST /text-to-video/kling-2.6 (video pack, duration 5 or 10 s); "
        "needs prompt"
    )
    assert "duration 3-15 s" in get_product("image-to-video/kling-3.0").describe()
    assert all(isinstance(p.describe(), str) for p in PRODUCTS.values())


# -- properties ------------------------------------------------------------------------------------
_PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_prompt = st.text(min_size=1, max_size=60).filter(lambda s: s.strip() != "")
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
# Keys no product declares: Kling's fields of tomorrow.
_extra_key = st.from_regex(r"x_[a-z]{1,8}", fullmatch=True)
_extras = st.dictionaries(_extra_key, _json, max_size=3)

_legacy_models = ["kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-5-turbo", "kling-v2-6"]


@st.composite
def text2video_requests(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from([None, *_legacy_models]))
    request: dict[str, Any] = {"prompt": draw(_prompt)}
    if model:
        request["model_name"] = model
    optional = {
        "negative_prompt": st.text(max_size=30),
        "mode": st.sampled_from(["std", "pro"]),
        "duration": st.sampled_from(["5", "10", 5, 10, 10.0]),
        "aspect_ratio": st.sampled_from(["16:9", "9:16", "1:1"]),
        "sound": st.just("off"),
        "camera_control": st.sampled_from(["horizontal", "pan", "zoom"]).flatmap(
            lambda axis: st.floats(0.5, 10).map(lambda v: {"type": "simple", "config": {axis: v}})
        ),
    }
    if model is None or model.startswith("kling-v1"):
        optional["cfg_scale"] = st.floats(0, 1)
    for key, strategy in optional.items():
        if draw(st.booleans()):
            request[key] = draw(strategy)
    return request


@st.composite
def image_generation_requests(draw: st.DrawFn) -> dict[str, Any]:
    return draw(
        st.fixed_dictionaries(
            {"prompt": _prompt},
            optional={
                "n": st.integers(1, 9),
                "image": st.sampled_from([URL, B64]),
                "image_fidelity": st.floats(0, 1),
                "human_fidelity": st.floats(0, 1),
                "resolution": st.sampled_from(["1k", "2k"]),
                "aspect_ratio": st.sampled_from(["16:9", "4:3", "21:9"]),
            },
        )
    )


_tasks_names = [n for n, p in PRODUCTS.items() if p.standard is ApiStandard.TASKS]


def _tasks_base(product: Product, prompt: str) -> dict[str, Any]:
    """The smallest body each new-standard kind takes, as its pages show it."""
    kind = product.kind
    if kind == "text-to-video":
        return {"prompt": prompt}
    parts: list[dict[str, Any]] = [{"type": "prompt", "text": prompt}]
    if kind == "image-to-video":
        parts.append({"type": "first_frame", "url": URL})
    if kind == "motion-control":
        parts += [{"type": "image", "url": URL}, {"type": "video", "url": URL}]
        return {"contents": parts, "settings": {"character_orientation": "video"}}
    return {"contents": parts}


@st.composite
def tasks_requests(draw: st.DrawFn) -> tuple[Product, dict[str, Any]]:
    product = PRODUCTS[draw(st.sampled_from(_tasks_names))]
    request = _tasks_base(product, draw(_prompt))
    spec = product.spec
    assert spec is not None
    settings_: dict[str, Any] = dict(request.get("settings", {}))
    for key, values in (
        ("duration", spec.durations),
        ("resolution", spec.resolutions),
        ("aspect_ratio", spec.aspect_ratios),
        ("audio", spec.audio),
    ):
        if values and draw(st.booleans()):
            settings_[key] = draw(st.sampled_from(values))
    if settings_:
        request["settings"] = settings_
    return product, request


_valid = st.one_of(
    text2video_requests().map(lambda r: (PRODUCTS["text2video"], r)),
    image_generation_requests().map(lambda r: (PRODUCTS["image-generation"], r)),
    tasks_requests(),
)


@_PROPS
@given(_valid)
def test_any_valid_request_validates_and_round_trips(pair: tuple[Product, dict[str, Any]]) -> None:
    product, request = pair
    body = product.validate(request)

    assert product.validate(body) == body
    assert set(body) == set(request)
    sent = product.body(request, external_task_id="b-1", callback_url="https://me/cb")
    assert product.body(sent) == sent


@_PROPS
@given(_valid, _extras)
def test_unknown_extra_fields_always_pass_through_unchanged(
    pair: tuple[Product, dict[str, Any]], extras: dict[str, Any]
) -> None:
    product, request = pair
    body = product.validate({**request, **extras})

    assert {k: body[k] for k in extras} == extras


@_PROPS
@given(st.sampled_from(list(PRODUCTS.values())), st.integers(1, 1500))
def test_any_prompt_longer_than_the_limit_is_refused(product: Product, over: int) -> None:
    request: dict[str, Any] = {"prompt": "p" * (product.prompt_max + over)}
    if product.name == "image2video":
        request["image"] = URL
    if product.name == "multi-image2video":
        request["image_list"] = [{"image": URL}]

    if "prompt" not in product.request_model.model_fields:
        return  # this product takes no prompt (lip-sync, effects, try-on)
    with pytest.raises(RequestValidationError) as caught:
        product.validate(request)
    assert ("prompt" in {field for field, _ in caught.value.problems}) or any(
        "at most" in msg for _, msg in caught.value.problems
    )


@_PROPS
@given(
    st.one_of(
        st.integers(-100, 100).filter(lambda n: n not in (5, 10)),
        st.floats(allow_nan=False).filter(lambda f: f not in (5.0, 10.0)),
        st.text(max_size=4).filter(lambda s: s.strip().removesuffix(".0") not in ("5", "10")),
    )
)
def test_any_legacy_duration_but_5_or_10_is_refused(duration: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        PRODUCTS["text2video"].validate({"prompt": "p", "duration": duration})

    assert [field for field, _ in caught.value.problems] == ["duration"]


@_PROPS
@given(st.sampled_from(_tasks_names), st.integers(-50, 100))
def test_any_new_standard_duration_outside_the_models_range_is_refused(
    name: str, duration: int
) -> None:
    product = PRODUCTS[name]
    request = _tasks_base(product, "p")
    request["settings"] = {**request.get("settings", {}), "duration": duration}

    if duration >= 1 and (duration in product.durations or not product.durations):
        assert product.validate(request)["settings"]["duration"] == duration
    else:
        with pytest.raises(RequestValidationError, match=r"settings\.duration: "):
            product.validate(request)


# Field names every product knows, so the fuzzing reaches the rules and not only the extras.
_known_keys = sorted(
    {name for p in PRODUCTS.values() for name in p.request_model.model_fields}
    | {"duration", "resolution", "audio", "mode", "n", "image", "images", "config", "type"}
)
_fuzz_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["5", "10", "inf", "nan", URL, B64, "data:x,y", "on", "simple"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_known_keys) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(PRODUCTS.values())),
    st.dictionaries(st.sampled_from(_known_keys), _fuzz_json, max_size=6),
)
def test_any_json_object_validates_or_is_refused_never_crashes(
    product: Product, request: dict[str, Any]
) -> None:
    refused: RequestValidationError | None = None
    try:
        body = product.validate(request)
    except RequestValidationError as exc:
        refused = exc
    if refused is not None:
        assert refused.problems
        assert all(isinstance(msg, str) and msg for _, msg in refused.problems)
        return
    assert product.validate(body) == body
    assert product.slot_cost(body) >= 1
    assert product.expected_timing(body).run_p95 > 0


# -- what the vendor pages changed ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "path", "family", "outputs"),
    [
        ("avatar", "/v1/videos/avatar/image2video", Family.VIDEO, ("video",)),
        ("advanced-lip-sync", "/v1/videos/advanced-lip-sync", Family.VIDEO, ("video",)),
        ("multi-elements", "/v1/videos/multi-elements", Family.VIDEO, ("video",)),
        ("text-to-audio", "/v1/audio/text-to-audio", Family.VIDEO, ("audio",)),
        ("video-to-audio", "/v1/audio/video-to-audio", Family.VIDEO, ("video", "audio")),
        ("tts", "/v1/audio/tts", Family.VIDEO, ("speech",)),
        ("custom-voices", "/v1/general/custom-voices", Family.VIDEO, ("voice",)),
        ("custom-elements", "/v1/general/advanced-custom-elements", Family.VIDEO, ("element",)),
        ("omni-image", "/v1/images/omni-image", Family.IMAGE, ("image",)),
        ("multi-image2image", "/v1/images/multi-image2image", Family.IMAGE, ("image",)),
        ("image-expand", "/v1/images/editing/expand", Family.IMAGE, ("image",)),
        ("ai-multi-shot", "/v1/general/ai-multi-shot", Family.IMAGE, ("image",)),
    ],
)
def test_every_task_endpoint_the_pages_document_is_registered(
    name: str, path: str, family: Family, outputs: tuple[str, ...]
) -> None:
    product = PRODUCTS[name]

    assert (product.path, product.family, product.outputs) == (path, family, outputs)
    assert product.standard is ApiStandard.LEGACY
    assert product.page is not None
    assert product.page.endswith(".md")
    assert get_product(path) is product


@pytest.mark.parametrize("product", ["text2video", "avatar", "image-generation"])
def test_an_empty_routing_field_is_no_routing_field(product: str) -> None:
    request = {"prompt": "p", "external_task_id": "", "callback_url": ""}
    if product == "avatar":
        request.update(image=URL, sound_file="https://cdn/a.mp3")

    body = get_product(product).validate(request)

    assert "external_task_id" not in body
    assert "callback_url" not in body


def test_an_empty_routing_field_in_options_is_dropped_and_the_rest_kept() -> None:
    body = get_product("text-to-video/kling-3.0-turbo").validate(
        {"prompt": "p", "options": {"external_task_id": "", "watermark_info": {"enabled": True}}}
    )

    assert body == {"prompt": "p", "options": {"watermark_info": {"enabled": True}}}


def test_a_flat_prompt_of_an_image_to_video_request_becomes_its_prompt_part() -> None:
    product = get_product("image-to-video/kling-3.0")
    body = product.validate(
        {"prompt": "it waves", "contents": [{"type": "first_frame", "url": URL}]}
    )

    assert body["contents"] == [
        {"type": "prompt", "text": "it waves"},
        {"type": "first_frame", "url": URL},
    ]
    assert "prompt" not in body
    assert problem(
        "image-to-video/kling-3.0",
        {
            "prompt": "a",
            "contents": [{"type": "prompt", "text": "b"}, {"type": "first_frame", "url": URL}],
        },
    ).endswith('prompt: the prompt is given twice (prompt and a {"type": "prompt"} part); keep one')


@pytest.mark.parametrize(
    ("product", "request_", "slots"),
    [
        (
            "image-expand",
            {
                "image": URL,
                "n": 4,
                **dict.fromkeys(
                    (
                        "up_expansion_ratio",
                        "down_expansion_ratio",
                        "left_expansion_ratio",
                        "right_expansion_ratio",
                    ),
                    0.1,
                ),
            },
            4,
        ),
        ("omni-image", {"prompt": "p", "result_type": "series", "series_amount": 5}, 5),
        ("omni-image", {"prompt": "p", "result_type": "series", "series_amount": "auto"}, 9),
        ("omni-image", {"prompt": "p", "n": 3}, 3),
        ("ai-multi-shot", {"element_frontal_image": URL}, 1),
        ("tts", {"text": "hi", "voice_id": "v"}, 1),
    ],
)
def test_an_image_task_holds_n_slots_and_a_series_its_size(
    product: str, request_: dict[str, Any], slots: int
) -> None:
    body = get_product(product).validate(request_)

    assert get_product(product).slot_cost(body) == slots


def test_the_new_standard_takes_images_up_to_50_mb_and_the_legacy_up_to_10() -> None:
    big = _png(512, 512) + "A" * (20 * 1024 * 1024)  # ~15 MB of Base64 after a PNG header

    assert get_product("image-to-video/kling-2.6").validate(
        {"contents": [{"type": "first_frame", "url": big}]}
    )
    assert "Kling accepts at most 10 MB here" in problem("image2video", {"image": big})


def test_a_video_part_is_taken_by_url_only() -> None:
    assert "a feature_video is taken by http(s) URL only" in problem(
        "omni-video/kling-o1", {"contents": [{"type": "feature_video", "url": B64}]}
    )
