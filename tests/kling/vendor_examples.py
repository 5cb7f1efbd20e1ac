"""Kling's own request and response examples, and the official clients' default requests.

Written from the vendor pages copied in the public repository ``aself101/kling-api`` under
``docs/api/`` (each example names its page), from Kuaishou's ``KwaiVGI/ComfyUI-KLingAI-API``
(``py/nodes.py``) and from ComfyUI's ``comfy_api_nodes`` Kling nodes. Requests are copied as the
pages print them, ``"external_task_id": ""`` and all; where a page prints a placeholder that is not
JSON or not an image (``"xxx"``, ``string``), a real value of the same kind stands in, and the
response examples' ``"status": "string"`` placeholders are real statuses.

``VALID`` must be accepted by the client and the sandbox alike; ``REFUSED`` are requests a page
says Kling refuses (a value outside its enumeration or range, a missing required field, a limit),
each with what the refusal must say.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from klingwatch.sandbox.media import png

__all__ = ["REFUSED", "RESPONSES", "VALID", "Example", "Refused", "Response"]

GIRL = "A girl sat on the train, looking out the window with a melancholic expression, her head swaying with the train."  # noqa: E501
IMG25 = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-tob-release_note/image_25.png"
IMG71 = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-tob-release_note/image_7.1.png"
VID71 = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-tob-release_note/video_7.1.mp4"
PARROT = "Change the color of the parrot’s feathers to match the reference image. Keep all other elements of the video unchanged."  # noqa: E501
DANCE_IMG = "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/35d77e27300cf5e8995704cd858d759c.png"
DANCE_VID = "https://v4-kling.kechuangai.com/kcdn/cdn-kcdn112452/kling-qa-test/dance_10s.mp4"
GO = "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/go-to-world.mp3"
DOG = "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/dog.png"
MULTI = "https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test"
#: What ComfyUI's nodes send for an image: a real picture's raw Base64 (they encode JPEG/PNG).
PICTURE = base64.b64encode(png(320, 320, (40, 90, 160))).decode()
CB = "https://xxx/callback"


@dataclass(frozen=True)
class Example:
    """A request Kling accepts: ``product`` (a klingwatch product name) and the body sent."""

    source: str
    product: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        from klingwatch.kling.products import get_product

        return get_product(self.product).path


@dataclass(frozen=True)
class Refused:
    """A request a page says Kling refuses, and the words the refusal must contain."""

    source: str
    product: str
    body: dict[str, Any]
    says: str


@dataclass(frozen=True)
class Response:
    """A response example: the ``data`` of an answer (or a bare callback body)."""

    source: str
    data: dict[str, Any]
    status: str
    urls: int


def _opts(**extra: Any) -> dict[str, Any]:
    return {"callback_url": CB, "external_task_id": "", **extra}


def _omni(text: str, *parts: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """An omni-video body as kling-omni-3.0-ovg.md and kling-o1-video.md print them."""
    contents = [{"type": "prompt", "text": text}, *parts]
    return {"contents": contents, "settings": settings, "options": _opts()}


def _part(kind: str, url: str, ident: str) -> dict[str, Any]:
    return {"type": kind, "url": url, "id": ident}


_WM_ON = {"watermark_info": {"enabled": True}}
_WM_OFF = {"watermark_info": {"enabled": False}}

VALID: list[Example] = [
    # -- the new standard ------------------------------------------------------------------
    Example(
        "kling-3.0-turbo-t2v.md",
        "text-to-video/kling-3.0-turbo",
        {
            "prompt": GIRL,
            "options": {"callback_url": CB, **_WM_OFF, "external_task_id": ""},
            "settings": {"duration": 3, "resolution": "720p", "aspect_ratio": "9:16"},
        },
    ),
    Example(
        "kling-3.0-turbo-i2v.md",
        "image-to-video/kling-3.0-turbo",
        {
            "contents": [{"type": "prompt", "text": GIRL}, {"type": "first_frame", "url": IMG25}],
            "settings": {"resolution": "1080p", "duration": 10},
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-2.6-t2v.md",
        "text-to-video/kling-2.6",
        {
            "prompt": GIRL,
            "settings": {"resolution": "1080p", "aspect_ratio": "9:16", "duration": 10},
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-2.6-i2v.md",
        "image-to-video/kling-2.6",
        {
            "contents": [
                {"type": "prompt", "text": GIRL.removesuffix(".") + ", @1 whispers softly."},
                {"type": "first_frame", "url": IMG25},
                {"type": "voice", "voice_id": "891495440020668439", "id": "1"},
            ],
            "settings": {"audio": "native", "resolution": "1080p", "duration": 5},
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-2.5-turbo-t2v.md",
        "text-to-video/kling-2.5-turbo",
        {
            "prompt": GIRL,
            "settings": {"resolution": "1080p", "aspect_ratio": "9:16", "duration": 10},
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-2.5-turbo-i2v.md",
        "image-to-video/kling-2.5-turbo",
        {
            "contents": [{"type": "prompt", "text": GIRL}, {"type": "first_frame", "url": IMG25}],
            "settings": {"resolution": "1080p", "duration": 5},
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-omni-3.0-t2v.md",
        "text-to-video/kling-3.0",
        {
            "prompt": GIRL,
            "settings": {
                "resolution": "4k",
                "aspect_ratio": "16:9",
                "duration": 15,
                "audio": "off",
                "multi_shot": True,
            },
            "options": _opts(**_WM_OFF),
        },
    ),
    Example(
        "kling-omni-3.0-i2v.md (only first_frame)",
        "image-to-video/kling-3.0",
        {
            "contents": [{"type": "prompt", "text": GIRL}, {"type": "first_frame", "url": IMG25}],
            "settings": {"resolution": "4k", "duration": 10, "audio": "off", "multi_shot": False},
            "options": _opts(**_WM_OFF),
        },
    ),
    Example(
        "kling-omni-3.0-i2v.md (first_frame & last_frame & element)",
        "image-to-video/kling-3.0",
        {
            "contents": [
                {"type": "prompt", "text": GIRL},
                {"type": "first_frame", "url": IMG25},
                {"type": "last_frame", "url": IMG25},
                {"type": "element", "element_id": "163", "id": "element_1"},
            ],
            "settings": {
                "resolution": "1080p",
                "duration": 10,
                "audio": "native",
                "multi_shot": False,
            },
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-omni-3.0-ovg.md (only prompt)",
        "omni-video/kling-3.0-omni",
        _omni(PARROT, resolution="1080p", duration=5, audio="native", multi_shot=False),
    ),
    Example(
        "kling-omni-3.0-ovg.md (first_frame & refer_image)",
        "omni-video/kling-3.0-omni",
        _omni(
            PARROT,
            _part("first_frame", IMG71, "image_1"),
            _part("refer_image", IMG71, "image_2"),
            resolution="1080p",
            duration=5,
            audio="native",
            multi_shot=False,
        ),
    ),
    Example(
        "kling-omni-3.0-ovg.md (first_frame & last_frame & element)",
        "omni-video/kling-3.0-omni",
        _omni(
            PARROT,
            _part("first_frame", IMG71, "image_1"),
            _part("last_frame", IMG71, "image_2"),
            {"type": "element", "element_id": "162", "id": "element_1"},
            {"type": "element", "element_id": "163", "id": "element_2"},
            resolution="1080p",
            duration=5,
            audio="native",
            multi_shot=True,
        ),
    ),
    Example(
        "kling-omni-3.0-ovg.md (feature_video)",
        "omni-video/kling-3.0-omni",
        _omni(
            PARROT,
            _part("feature_video", VID71, "video_1"),
            resolution="4k",
            audio="off",
            multi_shot=True,
        ),
    ),
    Example(
        "kling-omni-3.0-ovg.md (base_video)",
        "omni-video/kling-3.0-omni",
        _omni(
            PARROT,
            _part("base_video", VID71, "video_1"),
            resolution="1080p",
            audio="original",
            multi_shot=False,
        ),
    ),
    Example(
        "kling-o1-video.md (first_frame & refer_image)",
        "omni-video/kling-o1",
        _omni(
            GIRL,
            _part("first_frame", IMG25, "image_1"),
            _part("refer_image", IMG25, "image_2"),
            resolution="1080p",
            duration=3,
            audio="off",
        ),
    ),
    Example(
        "kling-o1-video.md (first_frame & multi-image_elements & feature_video)",
        "omni-video/kling-o1",
        _omni(
            PARROT,
            {"type": "element", "element_id": "161", "id": "element_1"},
            _part("first_frame", IMG71, "image_1"),
            _part("feature_video", VID71, "video_1"),
            resolution="1080p",
            aspect_ratio="16:9",
            audio="off",
        ),
    ),
    Example(
        "kling-o1-video.md (base_video & refer_image)",
        "omni-video/kling-o1",
        _omni(
            PARROT,
            _part("refer_image", IMG71, "image_1"),
            _part("base_video", VID71, "video_1"),
            resolution="1080p",
            aspect_ratio="16:9",
            audio="off",
        ),
    ),
    Example(
        "kling-motion-control-2.6.md",
        "motion-control/kling-2.6",
        {
            "contents": [
                {
                    "type": "prompt",
                    "text": "The girl is wearing a loose gray T-shirt and denim shorts",
                },
                {"type": "image", "url": DANCE_IMG},
                {"type": "video", "url": DANCE_VID},
            ],
            "settings": {
                "character_orientation": "video",
                "audio": "original",
                "resolution": "1080p",
            },
            "options": _opts(**_WM_ON),
        },
    ),
    Example(
        "kling-motion-control-3.0.md",
        "motion-control/kling-3.0",
        {
            "contents": [
                {
                    "type": "prompt",
                    "text": "The girl is wearing a loose gray T-shirt and denim shorts",
                },
                {"type": "image", "url": DANCE_IMG},
                {"type": "video", "url": DANCE_VID},
            ],
            "settings": {
                "character_orientation": "video",
                "resolution": "1080p",
                "audio": "original",
            },
            "options": _opts(),
        },
    ),
    # -- legacy-style endpoints with a page -------------------------------------------------
    Example(
        "kling-avatar.md",
        "avatar",
        {
            "image": "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/pink_boy.png",
            "sound_file": GO,
            "prompt": "While talking, excitedly shaking head, finally reaching out and making a "
            "fist, deciding to set off, hopping happily",
            "mode": "std",
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-lip-sync.md",
        "advanced-lip-sync",
        {
            "session_id": "850508686686064678",
            "face_choose": [
                {
                    "face_id": "0",
                    "sound_file": GO,
                    "sound_insert_time": 1000,
                    "sound_start_time": 0,
                    "sound_end_time": 3000,
                    "sound_volume": 2,
                    "original_audio_volume": 2,
                }
            ],
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-effects-video-effects.md",
        "effects",
        {
            "effect_scene": "color_mixing",
            "input": {
                "image": "https://p4-kling.klingai.com/kcdn/cdn-kcdn112452/kling-op/effects_raw_pic/color_mixing.jpeg"
            },
        },
    ),
    Example(
        "kling-effects-video-effects.md (single-image)",
        "effects",
        {
            "effect_scene": "pet_lion_pro",
            "input": {
                "image": "https://p4-kling.klingai.com/bs2/upload-ylab-stunt/c54e463c95816d959602f1f2541c62b2.png?x-kcdn-pid=112452"
            },
        },
    ),
    Example(
        "kling-effects-video-effects.md (dual-character)",
        "effects",
        {
            "effect_scene": "hug_pro",
            "input": {
                "images": ["https://example.com/image1.jpg", "https://example.com/image2.jpg"]
            },
        },
    ),
    Example(
        "kling-multi-element-video-editing.md",
        "multi-elements",
        {
            "session_id": "847570360458960960",
            "edit_mode": "removal",
            "image_list": [],
            "prompt": "Delete the chick from <<<video_1>>>",
            "negative_prompt": "",
            "mode": "std",
            "duration": "5",
            "callback_url": "",
            "external_task_id": "",
        },
    ),
    Example(
        "kling-text-to-audio.md",
        "text-to-audio",
        {
            "prompt": "Fireworks sound during Chinese New Year celebration",
            "duration": 3,
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-video-to-audio.md",
        "video-to-audio",
        {
            "video_url": "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/20fps-7s.mov",
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-text-to-speech.md",
        "tts",
        {
            "text": "Throughout my time in college, several memorable event left a significant "
            "impact on my life",
            "voice_id": "oversea_male1",
            "voice_language": "en",
            "voice_speed": 1,
        },
    ),
    Example(
        "kling-2.6-voice-mgt.md",
        "custom-voices",
        {
            "video_id": "",
            "voice_url": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/out.mp3",
            "voice_name": "Custom Voice",
            "callback_url": "",
        },
    ),
    Example(
        # The page prints "xxx" for names and URLs and `string` (not JSON) for the voice id.
        "kling-o1-element-mgt.md (Create Multi-Image Elements)",
        "custom-elements",
        {
            "element_name": "Grace",
            "element_description": "A girl in a red coat",
            "reference_type": "image_refer",
            "element_image_list": {
                "frontal_image": f"{MULTI}/multi-1.png",
                "refer_images": [{"image_url": f"{MULTI}/multi-2.png"}, {"image_url": DOG}],
            },
            "element_voice_id": "850087542757535834",
            "callback_url": CB,
            "external_task_id": "",
            "tag_list": [{"tag_id": "o_102"}],
        },
    ),
    Example(
        "kling-o1-element-mgt.md (Create Video Character Elements)",
        "custom-elements",
        {
            "element_name": "Armored Youth",
            "element_description": "A boy in armour",
            "reference_type": "video_refer",
            "element_video_list": {"refer_videos": [{"video_url": VID71}]},
            "callback_url": CB,
            "external_task_id": "",
            "tag_list": [{"tag_id": "o_102"}],
        },
    ),
    Example(
        "kling-image-2.1-generation.md",
        "image-generation",
        {
            "model_name": "kling-v2-1",
            "prompt": "Generate a Pixar-style puppy",
            "negative_prompt": "",
            "image": DOG,
            "n": 2,
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-image-o1-generation.md",
        "omni-image",
        {
            "model_name": "kling-image-o1",
            "prompt": "Merge all the people in the images into the <<<object_1>>> image",
            "element_list": [{"element_id": 829836802793406551}],
            "image_list": [
                {"image": f"{MULTI}/multi-4.png"},
                {
                    "image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/1.png"
                },
                {
                    "image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/4.png"
                },
            ],
            "resolution": "2k",
            "n": 1,
            "aspect_ratio": "3:2",
        },
    ),
    Example(
        # The page's "Image Generation with Element" posts to /v1/images/generations.
        "kling-image-o1-generation.md (Image Generation with Element)",
        "image-generation",
        {
            "model_name": "kling-v3-omni",
            "prompt": "Generate a recommended cover for each subject <<element_1>> based on the "
            "style of the reference image <<image_1>>",
            "element_list": [{"element_id": 160}, {"element_id": 161}],
            "image_list": [{"image": f"{MULTI}/multi-1.png"}, {"image": f"{MULTI}/multi-2.png"}],
            "resolution": "2k",
            "result_type": "series",
            "series_amount": 2,
            "aspect_ratio": "auto",
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    Example(
        "kling-image-2.1-multi-image-to-image.md",
        "multi-image2image",
        {
            "model_name": "kling-v2-1",
            "prompt": "Wearing a flowing red dress on the grassland, in Ghibli style.",
            "negative_prompt": "",
            "subject_image_list": [
                {"subject_image": f"{MULTI}/multi-1.png"},
                {"subject_image": f"{MULTI}/multi-2.png"},
            ],
            "scene_image": f"{MULTI}/background.jpeg",
            "style_image": f"{MULTI}/16x9_jipuli.png",
            "n": 2,
            "aspect_ratio": "9:16",
        },
    ),
    Example(
        "kling-image-common-outpainting.md",
        "image-expand",
        {
            "up_expansion_ratio": 0.1495,
            "down_expansion_ratio": 0.1495,
            "left_expansion_ratio": 0.6547,
            "right_expansion_ratio": 0.6547,
            "prompt": "",
            "image": DOG,
            "n": 2,
            "external_task_id": "",
        },
    ),
    Example(
        "kling-image-common-subject-completion.md",
        "ai-multi-shot",
        {
            "element_frontal_image": f"{MULTI}/multi-1.png",
            "external_task_id": "",
            "callback_url": "",
        },
    ),
    # -- the official clients' default requests ---------------------------------------------
    Example(
        "KwaiVGI/ComfyUI-KLingAI-API py/nodes.py Text2VideoNode defaults",
        "text2video",
        {
            "model_name": "kling-v1",
            "prompt": "a fox in the snow",
            "negative_prompt": "",
            "cfg_scale": 0.5,
            "mode": "std",
            "aspect_ratio": "16:9",
            "duration": "5",
            "camera_control": {"type": "simple", "config": {"horizontal": 0.5}},
        },
    ),
    Example(
        "KwaiVGI/ComfyUI-KLingAI-API py/nodes.py Text2VideoNode (older, `model` field)",
        "text2video",
        {
            "model": "kling-v1",
            "prompt": "a fox in the snow",
            "negative_prompt": "",
            "cfg_scale": 0.5,
            "mode": "std",
            "aspect_ratio": "16:9",
            "duration": "5",
            "camera_control": {"type": "down_back"},
        },
    ),
    Example(
        "KwaiVGI/ComfyUI-KLingAI-API py/nodes.py Image2VideoNode defaults",
        "image2video",
        {
            "model_name": "kling-v1-6",
            "image": PICTURE,
            "image_tail": None,
            "prompt": "",
            "negative_prompt": "",
            "cfg_scale": 0.5,
            "mode": "std",
            "duration": "5",
        },
    ),
    Example(
        "KwaiVGI/ComfyUI-KLingAI-API py/nodes.py ImageGeneratorNode defaults",
        "image-generation",
        {
            "model_name": "kling-v1",
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "",
            "image": None,
            "image_fidelity": 0.5,
            "aspect_ratio": "16:9",
            "n": 1,
        },
    ),
    Example(
        "KwaiVGI/ComfyUI-KLingAI-API py/nodes.py KolorsVirtualTryOnNode",
        "virtual-try-on",
        {"model_name": "kolors-virtual-try-on-v1", "human_image": PICTURE, "cloth_image": PICTURE},
    ),
    Example(
        "comfy_api_nodes KlingText2VideoRequest defaults (kling-v2-master + cfg_scale 0.5)",
        "text2video",
        {
            "model_name": "kling-v2-master",
            "prompt": "a fox in the snow",
            "multi_shot": False,
            "negative_prompt": None,
            "cfg_scale": 0.5,
            "mode": "std",
            "sound": None,
            "camera_control": {
                "type": "simple",
                "config": {
                    "horizontal": 0,
                    "vertical": 0,
                    "pan": 0.5,
                    "tilt": 0,
                    "roll": 0,
                    "zoom": 0,
                },
            },
            "aspect_ratio": "16:9",
            "duration": "5",
            "watermark_info": None,
            "callback_url": None,
            "external_task_id": None,
        },
    ),
    Example(
        "comfy_api_nodes KlingImage2VideoRequest defaults (kling-v2-master + cfg_scale 0.5)",
        "image2video",
        {
            "model_name": "kling-v2-master",
            "image": PICTURE,
            "image_tail": None,
            "prompt": "it turns around",
            "cfg_scale": 0.5,
            "mode": "std",
            "aspect_ratio": "16:9",
            "duration": "5",
        },
    ),
]


def _t2v(**settings: Any) -> dict[str, Any]:
    return {"prompt": GIRL, "settings": settings, "options": _opts()}


def _frames(*kinds: str, **settings: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "prompt", "text": GIRL}]
    parts += [{"type": kind, "url": IMG25} for kind in kinds]
    return {"contents": parts, "settings": settings, "options": _opts()}


REFUSED: list[Refused] = [
    Refused(
        "kling-3.0-turbo-t2v.md: settings.resolution enum 720p, 1080p",
        "text-to-video/kling-3.0-turbo",
        _t2v(resolution="4k"),
        "settings.resolution: '4k' is not offered by kling-3.0-turbo; use '720p' or '1080p'",
    ),
    Refused(
        "kling-3.0-turbo-t2v.md: settings.aspect_ratio enum 16:9, 9:16, 1:1",
        "text-to-video/kling-3.0-turbo",
        _t2v(aspect_ratio="4:3"),
        "settings.aspect_ratio: '4:3' is not offered by kling-3.0-turbo",
    ),
    Refused(
        "kling-3.0-turbo-t2v.md: duration 3-15",
        "text-to-video/kling-3.0-turbo",
        _t2v(duration=16),
        "settings.duration: 16 s is not offered by kling-3.0-turbo; use 3-15",
    ),
    Refused(
        "kling-3.0-turbo-t2v.md: prompt cannot exceed 3072 characters",
        "text-to-video/kling-3.0-turbo",
        {"prompt": "x" * 3073},
        "prompt: is 3073 characters; text-to-video/kling-3.0-turbo accepts at most 3072",
    ),
    Refused(
        "kling-3.0-turbo-i2v.md: only First Frame is supported (type enum prompt, first_frame)",
        "image-to-video/kling-3.0-turbo",
        _frames("first_frame", "last_frame"),
        "contents.2.type: 'last_frame' is not a part kling-3.0-turbo takes",
    ),
    Refused(
        "kling-3.0-turbo-i2v.md: Last Frame-only is not supported",
        "image-to-video/kling-3.0-turbo",
        _frames("last_frame"),
        "image-to-video needs a start image",
    ),
    Refused(
        "kling-3.0-turbo-i2v.md: text cannot exceed 2500 characters",
        "image-to-video/kling-3.0-turbo",
        {
            "contents": [
                {"type": "prompt", "text": "x" * 2501},
                {"type": "first_frame", "url": IMG25},
            ]
        },
        "contents.0.text: is 2501 characters; image-to-video/kling-3.0-turbo accepts at most 2500",
    ),
    Refused(
        "kling-omni-3.0-i2v.md: last-frame-only video generation is not supported",
        "image-to-video/kling-3.0",
        _frames("last_frame"),
        "image-to-video needs a start image",
    ),
    Refused(
        'kling-omni-3.0-ovg.md: "Last frame only" is not supported yet',
        "omni-video/kling-3.0-omni",
        _frames("last_frame"),
        "a last_frame needs a first_frame",
    ),
    Refused(
        'kling-o1-video.md: "Last frame only" is not supported yet',
        "omni-video/kling-o1",
        _frames("last_frame"),
        "a last_frame needs a first_frame",
    ),
    Refused(
        "kling-2.6-i2v.md: last-frame-only video generation is not supported",
        "image-to-video/kling-2.6",
        _frames("last_frame"),
        "image-to-video needs a start image",
    ),
    Refused(
        "kling-2.5-turbo-i2v.md: last-frame-only video generation is not supported",
        "image-to-video/kling-2.5-turbo",
        _frames("last_frame", resolution="1080p"),
        "image-to-video needs a start image",
    ),
    Refused(
        "kling-2.6-t2v.md: settings.duration enum 5, 10",
        "text-to-video/kling-2.6",
        _t2v(duration=7),
        "settings.duration: 7 s is not offered by kling-2.6; use 5 or 10",
    ),
    Refused(
        "kling-omni-3.0-t2v.md: settings.audio enum native, off",
        "text-to-video/kling-3.0",
        _t2v(audio="original"),
        "settings.audio: 'original' is not offered by kling-3.0; use 'native' or 'off'",
    ),
    Refused(
        "kling-o1-video.md: settings.audio enum original, off",
        "omni-video/kling-o1",
        {"contents": [{"type": "prompt", "text": GIRL}], "settings": {"audio": "native"}},
        "settings.audio: 'native' is not offered by kling-o1; use 'original' or 'off'",
    ),
    Refused(
        "kling-o1-video.md: settings.resolution enum 720p, 1080p",
        "omni-video/kling-o1",
        {"contents": [{"type": "prompt", "text": GIRL}], "settings": {"resolution": "4k"}},
        "settings.resolution: '4k' is not offered by kling-o1",
    ),
    Refused(
        "kling-2.6-t2v.md: settings.audio is a string enum (native, off)",
        "text-to-video/kling-2.6",
        _t2v(audio=True),
        'settings.audio: must be a string such as "native" or "off", got True',
    ),
    Refused(
        "kling-2.6-i2v.md: at most 2 voices",
        "image-to-video/kling-2.6",
        {
            "contents": [
                {"type": "first_frame", "url": IMG25},
                *({"type": "voice", "voice_id": f"v{i}", "id": str(i)} for i in range(3)),
            ],
            "settings": {"audio": "native", "resolution": "1080p"},
        },
        "3 voice parts; kling-2.6 takes at most 2",
    ),
    Refused(
        "kling-motion-control-2.6.md: settings.character_orientation is required",
        "motion-control/kling-2.6",
        {"contents": [{"type": "image", "url": DANCE_IMG}, {"type": "video", "url": DANCE_VID}]},
        "settings.character_orientation: is required for motion control",
    ),
    Refused(
        "kling-motion-control-3.0.md: a motion video is a URL",
        "motion-control/kling-3.0",
        {
            "contents": [{"type": "image", "url": DANCE_IMG}, {"type": "video", "url": PICTURE}],
            "settings": {"character_orientation": "image"},
        },
        "a video is taken by http(s) URL only",
    ),
    Refused(
        "kling-avatar.md: audio_id and sound_file are mutually exclusive",
        "avatar",
        {"image": DOG, "audio_id": "a1", "sound_file": GO},
        "avatar needs exactly one of audio_id (from TTS) or sound_file",
    ),
    Refused(
        "kling-avatar.md: no data: prefix on Base64",
        "avatar",
        {"image": "data:image/png;base64," + PICTURE, "sound_file": GO},
        "image: starts with 'data:image/png;base64,'",
    ),
    Refused(
        "kling-lip-sync.md: the cropped sound must not be shorter than 2 seconds",
        "advanced-lip-sync",
        {
            "session_id": "s",
            "face_choose": [
                {
                    "face_id": "0",
                    "audio_id": "a",
                    "sound_start_time": 0,
                    "sound_end_time": 1500,
                    "sound_insert_time": 0,
                }
            ],
        },
        "must be at least 2000 ms",
    ),
    Refused(
        "kling-effects-video-effects.md: input.images array length must be 2",
        "effects",
        {"effect_scene": "hug_pro", "input": {"images": [DOG]}},
        "input: images takes exactly 2 images, got 1",
    ),
    Refused(
        "kling-multi-element-video-editing.md: swap takes 1 image only",
        "multi-elements",
        {
            "session_id": "s",
            "edit_mode": "swap",
            "image_list": [{"image": DOG}, {"image": DOG}],
            "prompt": "swap",
        },
        'image_list: edit_mode "swap" takes exactly 1 image, got 2',
    ),
    Refused(
        "kling-multi-element-video-editing.md: duration enum 5, 10",
        "multi-elements",
        {"session_id": "s", "edit_mode": "removal", "prompt": "remove it", "duration": "7"},
        'duration: must be "5" or "10"',
    ),
    Refused(
        "kling-text-to-audio.md: prompt cannot exceed 200 characters",
        "text-to-audio",
        {"prompt": "x" * 201, "duration": 5},
        "prompt: is 201 characters; Kling accepts at most 200",
    ),
    Refused(
        "kling-text-to-audio.md: duration 3.0s - 10.0s",
        "text-to-audio",
        {"prompt": "rain", "duration": 11},
        "duration: must be between 3 and 10, got 11",
    ),
    Refused(
        "kling-video-to-audio.md: video_id and video_url cannot both have a value",
        "video-to-audio",
        {"video_id": "v1", "video_url": "https://x/v.mp4"},
        "video-to-audio needs exactly one of video_id or video_url",
    ),
    Refused(
        "kling-text-to-speech.md: text at most 1000 characters",
        "tts",
        {"text": "x" * 1001, "voice_id": "oversea_male1", "voice_language": "en"},
        "text: is 1001 characters; Kling accepts at most 1000",
    ),
    Refused(
        "kling-text-to-speech.md: voice_language enum zh, en",
        "tts",
        {"text": "hello", "voice_id": "oversea_male1", "voice_language": "fr"},
        "voice_language: must be 'zh' or 'en', got 'fr'",
    ),
    Refused(
        "kling-o1-element-mgt.md: element_image_list is required for image_refer",
        "custom-elements",
        {"element_name": "n", "element_description": "d", "reference_type": "image_refer"},
        'element_image_list: is required when reference_type is "image_refer"',
    ),
    Refused(
        "kling-o1-element-mgt.md: element_name must not exceed 20 characters",
        "custom-elements",
        {
            "element_name": "x" * 21,
            "element_description": "d",
            "reference_type": "video_refer",
            "element_video_list": {"refer_videos": [{"video_url": VID71}]},
        },
        "element_name: is 21 characters; Kling accepts at most 20",
    ),
    Refused(
        "kling-image-2.1-generation.md: n value range [1, 9]",
        "image-generation",
        {"prompt": "p", "n": 10},
        "n: must be between 1 and 9, got 10",
    ),
    Refused(
        "kling-image-2.1-generation.md: aspect_ratio enum",
        "image-generation",
        {"prompt": "p", "aspect_ratio": "5:4"},
        "aspect_ratio: must be '16:9', '9:16', '1:1', '4:3', '3:4', '3:2', '2:3', '21:9' or 'auto'",
    ),
    Refused(
        "kling-image-2.1-generation.md: image is required when image_reference is set",
        "image-generation",
        {"prompt": "p", "image_reference": "face"},
        "image: is required when image_reference is set",
    ),
    Refused(
        "kling-image-o1-generation.md: reference elements + images must not exceed 10",
        "omni-image",
        {
            "prompt": "p",
            "image_list": [{"image": DOG}] * 6,
            "element_list": [{"element_id": 1}] * 5,
        },
        "11 reference images and elements; Kling takes at most 10 together",
    ),
    Refused(
        "kling-image-2.1-multi-image-to-image.md: up to 4 subject images",
        "multi-image2image",
        {"subject_image_list": [{"subject_image": DOG}] * 5},
        "subject_image_list: needs 1 to 4 subject images, got 5",
    ),
    Refused(
        "kling-image-common-outpainting.md: expansion ratios within [0, 2]",
        "image-expand",
        {
            "image": DOG,
            "up_expansion_ratio": 2.5,
            "down_expansion_ratio": 0,
            "left_expansion_ratio": 0,
            "right_expansion_ratio": 0,
        },
        "up_expansion_ratio: must be between 0 and 2, got 2.5",
    ),
    Refused(
        "kling-image-common-outpainting.md: at most 3 times the original area",
        "image-expand",
        {
            "image": DOG,
            "up_expansion_ratio": 0.5,
            "down_expansion_ratio": 0.5,
            "left_expansion_ratio": 0.5,
            "right_expansion_ratio": 0.5,
        },
        "the expanded image would be 4.00 times the original's area; Kling allows at most 3",
    ),
    Refused(
        "kling-image-common-subject-completion.md: element_frontal_image is required",
        "ai-multi-shot",
        {"external_task_id": "", "callback_url": ""},
        "element_frontal_image: is required",
    ),
]

_BILLING = [
    {
        "charge_type": "unit",
        "amount": "1.5",
        "package_type": "video",
    },
    {
        "charge_type": "cash",
        "cash_type": "balance",
        "amount": "0.21",
        "currency": "USD",
        "list_price": "0.3",
    },
]
#: kling-3.0-turbo-t2v.md, "Query Task (By task ID)": every output type the page lists.
_TASKS_TASK = {
    "id": "893605946402811985",
    "status": "succeeded",
    "message": "",
    "create_time": 1781080778802,
    "update_time": 1781080794151,
    "external_id": "my-id",
    "outputs": [
        {
            "type": "video",
            "id": "v1",
            "url": "https://cdn/v.mp4",
            "watermark_url": "https://cdn/vw.mp4",
            "duration": "5.1",
        },
        {
            "type": "image",
            "url": "https://cdn/i.png",
            "watermark_url": "https://cdn/iw.png",
            "group_id": "g1",
        },
        {
            "type": "audio",
            "id": "a1",
            "mp3_url": "https://cdn/a.mp3",
            "wav_url": "https://cdn/a.wav",
            "mp3_duration": "3.0",
            "wav_duration": "3.0",
        },
        {
            "type": "voice",
            "id": "vo1",
            "name": "voice",
            "url": "https://cdn/vo.mp3",
            "owned_by": "kling",
            "status": "succeeded",
        },
        {
            "type": "element",
            "id": "e1",
            "name": "Grace",
            "description": "d",
            "element_type": "multi_image_elements",
            "references": [{"type": "image", "role": "frontal", "url": "https://cdn/f.png"}],
            "owned_by": "kling",
            "status": "succeeded",
            "tags": [{"id": 1, "name": "Character", "description": ""}],
        },
    ],
    "billing": _BILLING,
}
_DEDUCTION = {"quota": "0.21", "list_price": "0.3"}

RESPONSES: list[Response] = [
    Response(
        "kling-3.0-turbo-t2v.md, Create Task",
        {
            "id": "893605946402811985",
            "status": "submitted",
            "create_time": 1781080778802,
            "update_time": 1781080794151,
            "external_id": "",
        },
        "submitted",
        0,
    ),
    Response("kling-3.0-turbo-t2v.md, Query Task (By task ID)", _TASKS_TASK, "succeed", 3),
    Response(
        "kling-get-started-callbacks.md, Test Callback Request Body",
        {
            "id": "913827032734642185",
            "status": "submitted",
            "outputs": [],
            "message": "",
            "create_time": 1785901861504,
            "update_time": 1785901861504,
        },
        "submitted",
        0,
    ),
    Response(
        "kling-get-started-callbacks.md, Legacy Callback Function",
        {
            "task_id": "866889456698785798",
            "task_status": "succeed",
            "task_status_msg": "",
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
            "final_unit_deduction": "1",
            "final_balance_deduction": _DEDUCTION,
            "task_info": {
                "parent_video": {"id": "p1", "url": "https://cdn/p.mp4", "duration": "5.1"},
                "external_task_id": "x",
            },
            "task_result": {
                "images": [{"index": 0, "url": "https://cdn/i.png"}],
                "videos": [{"id": "v1", "url": "https://cdn/v.mp4", "duration": "9.1"}],
            },
        },
        "succeed",
        2,
    ),
    Response(
        "kling-avatar.md, Query Task (Single)",
        {
            "task_id": "t1",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "videos": [
                    {
                        "id": "v",
                        "url": "https://cdn/v.mp4",
                        "watermark_url": "https://cdn/w.mp4",
                        "duration": "12.4",
                    }
                ]
            },
            "watermark_info": {"enabled": True},
            "final_unit_deduction": "4.96",
            "final_balance_deduction": _DEDUCTION,
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        1,
    ),
    Response(
        "kling-text-to-audio.md, Query Task (Single)",
        {
            "task_id": "t2",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "audios": [
                    {
                        "id": "a",
                        "url_mp3": "https://cdn/a.mp3",
                        "url_wav": "https://cdn/a.wav",
                        "duration_mp3": "3.0",
                        "duration_wav": "3.0",
                    }
                ]
            },
            "final_unit_deduction": "0.25",
            "final_balance_deduction": _DEDUCTION,
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        1,
    ),
    Response(
        "kling-video-to-audio.md, Query Task (Single)",
        {
            "task_id": "t3",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {
                "external_task_id": "x",
                "parent_video": {"id": "p", "url": "https://cdn/p.mp4", "duration": "7.0"},
            },
            "task_result": {
                "videos": [{"id": "v", "url": "https://cdn/v.mp4", "duration": "7.0"}],
                "audios": [
                    {
                        "id": "a",
                        "url_mp3": "https://cdn/a.mp3",
                        "url_wav": "https://cdn/a.wav",
                        "duration_mp3": "7.0",
                        "duration_wav": "7.0",
                    }
                ],
            },
            "final_unit_deduction": "0.25",
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        2,
    ),
    Response(
        "kling-text-to-speech.md, Create Task (answers with the result)",
        {
            "task_id": "t4",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_result": {"audios": [{"id": "a", "url": "https://cdn/o.mp3", "duration": "4.2"}]},
            "final_unit_deduction": "0.05",
            "final_balance_deduction": _DEDUCTION,
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        1,
    ),
    Response(
        "kling-2.6-voice-mgt.md, Query Custom Voice (Single)",
        {
            "task_id": "t5",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "voices": [
                    {
                        "voice_id": "v",
                        "voice_name": "n",
                        "trial_url": "https://cdn/t.mp3",
                        "owned_by": "kling",
                    }
                ]
            },
            "final_unit_deduction": "0.05",
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        0,
    ),
    Response(
        "kling-o1-element-mgt.md, Query Custom Element (Single)",
        {
            "task_id": "t6",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "elements": [
                    {
                        "element_id": 0,
                        "element_name": "n",
                        "element_description": "d",
                        "reference_type": "video_refer",
                        "element_image_list": {},
                        "element_video_list": {},
                        "element_voice_info": {},
                        "tag_list": [],
                        "owned_by": "kling",
                        "status": "succeed",
                    }
                ]
            },
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        0,
    ),
    Response(
        "kling-image-o1-generation.md, Query Task (Single)",
        {
            "task_id": "t7",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "result_type": "series",
                "images": [
                    {"index": 0, "url": "https://cdn/0.png", "watermark_url": "https://cdn/0w.png"}
                ],
                "series_images": [
                    {"index": 0, "url": "https://cdn/s0.png"},
                    {"index": 1, "url": "https://cdn/s1.png"},
                ],
            },
            "watermark_info": {"enabled": True},
            "final_unit_deduction": "24",
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        3,
    ),
    Response(
        "kling-image-common-subject-completion.md, Query Task (Single)",
        {
            "task_id": "t8",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "x"},
            "task_result": {
                "images": [
                    {
                        "index": 0,
                        "url_1": "https://cdn/1.png",
                        "url_2": "https://cdn/2.png",
                        "url_3": "https://cdn/3.png",
                    }
                ]
            },
            "final_unit_deduction": "20",
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "succeed",
        3,
    ),
    Response(
        "kling-image-common-outpainting.md, Query Task (Single)",
        {
            "task_id": "t9",
            "task_status": "failed",
            "task_status_msg": "Image pixel is invalid",
            "task_info": {"external_task_id": "x"},
            "task_result": {},
            "watermark_info": {"enabled": False},
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        },
        "failed",
        0,
    ),
]
