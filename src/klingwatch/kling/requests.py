"""Request models: what each Kling create endpoint accepts (KLING_PROTOCOL.md sections 3 and 10).

One pydantic model per request body. Each checks what Kling would refuse with 1200/1201 (required
fields, prompt lengths, durations, enums, ranges, mutual exclusions, Base64 sent as a ``data:``
URL) and lets everything else through: ``extra="allow"`` on every model, because Kling adds fields
often. Checks that depend on the endpoint rather than the body (the new standard's per-model
durations and prompt limits) live in :class:`klingwatch.kling.products.Product`.

Every message says what to change: it reaches users as ``FILE:LINE: <field>: <message>``.
:func:`problems_of` turns a pydantic ``ValidationError`` into those ``(field, message)`` pairs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from klingwatch.kling.inputs import IMAGE_MAX_BYTES, check_image

__all__ = [
    "IMAGE_MAX_BYTES",
    "LEGACY_PROMPT_MAX",
    "CameraConfig",
    "CameraControl",
    "ContentPart",
    "DynamicMask",
    "Effects",
    "EffectsInput",
    "Image2Video",
    "ImageGeneration",
    "ImageItem",
    "LipSync",
    "LipSyncInput",
    "MultiImage2Video",
    "RequestModel",
    "TasksRequest",
    "TasksSettings",
    "Text2Video",
    "VideoExtend",
    "VirtualTryOn",
    "check_image",
    "problems_of",
]

#: Prompt and negative-prompt limit of every legacy endpoint (characters).
LEGACY_PROMPT_MAX = 2500
_MAX_DYNAMIC_MASKS = 6
_MAX_IMAGE_LIST = 4
_CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")


# -- field rules -------------------------------------------------------------------------------
def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    return value


def _between(low: float, high: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return check


def _max_chars(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(
                f"is {len(value)} characters; Kling accepts at most {limit}: shorten it"
            )
        return value

    return check


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; describe what to generate")
    return value


def _legacy_duration(value: Any) -> Any:
    """Legacy durations are the strings "5" or "10"; 5, 5.0 and "5.0" are read as "5"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f'must be "5" or "10" (seconds, as a string), got {value!r}')
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if text not in ("5", "10"):
        raise ValueError(f'must be "5" or "10" (seconds, as a string), got {value!r}')
    return text


def _whole_seconds(value: Any) -> Any:
    """New-standard durations are integers; 5, 5.0 and "5" are read as 5."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a whole number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a whole number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise ValueError(f"must be a whole number of seconds (1 or more), got {value!r}")
    return int(number)


def _image_field(value: str | None, info: ValidationInfo) -> str | None:
    return None if value is None else check_image(value, info.field_name or "image")


Unit = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_between(0, 1))]
Axis = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_between(-10, 10))]
LegacyPrompt = Annotated[str, AfterValidator(_max_chars(LEGACY_PROMPT_MAX))]
RequiredPrompt = Annotated[
    str, AfterValidator(_not_blank), AfterValidator(_max_chars(LEGACY_PROMPT_MAX))
]
LegacyDuration = Annotated[str | None, BeforeValidator(_legacy_duration)]
ImageInput = Annotated[str, AfterValidator(lambda v: check_image(v, "image"))]
Mode = Literal["std", "pro"]
LegacyAspect = Literal["16:9", "9:16", "1:1"]


class RequestModel(BaseModel):
    """Base of every request model: unknown fields pass through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False)
    #: What a request must contain, for listings, when the required fields do not say it all.
    needs: ClassVar[tuple[str, ...]] = ()


def _legacy_version(model: str) -> tuple[int, int] | None:
    """``kling-v2-6`` -> (2, 6); ``kling-v2-master`` -> (2, 0); not a legacy name -> None."""
    match = re.fullmatch(r"kling-v(\d+)(?:-(\d+))?(?:-[a-z]+)*", model)
    if not match:
        return None
    return int(match[1]), int(match[2] or 0)


CallbackUrl = Annotated[str, Field(pattern=r"^https?://")]
ExternalId = Annotated[str, Field(min_length=1)]


class _Routed(RequestModel):
    # Every legacy create takes these at the top level (the new standard: in ``options``).
    callback_url: CallbackUrl | None = None
    external_task_id: ExternalId | None = None


# -- legacy video ------------------------------------------------------------------------------
class CameraConfig(RequestModel):
    """Camera movement: exactly one axis non-zero, each within [-10, 10]."""

    horizontal: Axis = 0
    vertical: Axis = 0
    pan: Axis = 0
    tilt: Axis = 0
    roll: Axis = 0
    zoom: Axis = 0

    @model_validator(mode="after")
    def _one_axis(self) -> CameraConfig:
        moving = [axis for axis in _CAMERA_AXES if getattr(self, axis) != 0]
        if len(moving) != 1:
            raise ValueError(
                "needs exactly one non-zero axis among "
                f"{', '.join(_CAMERA_AXES)}; got {len(moving)} ({', '.join(moving) or 'none'})"
            )
        return self


class CameraControl(RequestModel):
    """``{type, config}``; type ``simple`` needs a config."""

    type: Annotated[str, Field(min_length=1)]
    config: CameraConfig | None = None

    @model_validator(mode="after")
    def _simple_needs_config(self) -> CameraControl:
        if self.type == "simple" and self.config is None:
            raise ValueError(
                'type "simple" needs a config with one non-zero axis, e.g. {"zoom": 5}'
            )
        return self


class _LegacyVideo(_Routed):
    prompt: LegacyPrompt | None = None
    negative_prompt: LegacyPrompt | None = None
    model_name: Annotated[str, Field(min_length=1)] | None = None
    mode: Mode | None = None
    duration: LegacyDuration = None
    cfg_scale: Unit | None = None

    @model_validator(mode="after")
    def _cfg_not_for_v2(self) -> _LegacyVideo:
        version = _legacy_version(self.model_name or "kling-v1")
        if self.cfg_scale is not None and version is not None and version[0] == 2:
            raise ValueError(
                f"cfg_scale is not supported by {self.model_name}; remove it "
                "(kling-v2 models do not take it)"
            )
        return self


class Text2Video(_LegacyVideo):
    """``POST /v1/videos/text2video``."""

    prompt: RequiredPrompt
    aspect_ratio: LegacyAspect | None = None
    sound: Literal["on", "off"] | None = None
    camera_control: CameraControl | None = None

    @model_validator(mode="after")
    def _sound_needs_v2_6(self) -> Text2Video:
        model = self.model_name or "kling-v1"
        version = _legacy_version(model)
        if self.sound == "on" and version is not None and version < (2, 6):
            raise ValueError(
                f'sound "on" needs kling-v2-6 or newer, not {model}; set model_name or remove sound'
            )
        return self


class DynamicMask(RequestModel):
    """One motion brush: a mask image and its trajectory points."""

    mask: Annotated[str, AfterValidator(lambda v: check_image(v, "mask"))]
    trajectories: list[dict[str, Any]] = Field(default_factory=list)


class Image2Video(_LegacyVideo):
    """``POST /v1/videos/image2video``: a start and/or end frame, URL or raw Base64."""

    needs = ("image or image_tail",)

    image: str | None = None
    image_tail: str | None = None
    static_mask: str | None = None
    dynamic_masks: list[DynamicMask] | None = None
    camera_control: CameraControl | None = None

    _images = field_validator("image", "image_tail", "static_mask")(_image_field)

    @field_validator("dynamic_masks")
    @classmethod
    def _at_most_six(cls, value: list[DynamicMask] | None) -> list[DynamicMask] | None:
        if value is not None and len(value) > _MAX_DYNAMIC_MASKS:
            raise ValueError(
                f"has {len(value)} masks; Kling accepts at most {_MAX_DYNAMIC_MASKS}: remove some"
            )
        return value

    @model_validator(mode="after")
    def _exclusions(self) -> Image2Video:
        if not self.image and not self.image_tail:
            raise ValueError("image2video needs image (or image_tail): a URL or raw Base64")
        groups = {
            "image_tail": bool(self.image_tail),
            "static_mask/dynamic_masks": bool(self.static_mask or self.dynamic_masks),
            "camera_control": self.camera_control is not None,
        }
        used = [name for name, on in groups.items() if on]
        if len(used) > 1:
            raise ValueError(
                f"{' and '.join(used)} cannot be combined; keep only one of image_tail, "
                "the masks, or camera_control"
            )
        return self


class ImageItem(RequestModel):
    """One ``image_list`` entry."""

    image: ImageInput


class MultiImage2Video(_LegacyVideo):
    """``POST /v1/videos/multi-image2video``: 1 to 4 reference images and a prompt."""

    prompt: RequiredPrompt
    image_list: list[ImageItem]
    aspect_ratio: LegacyAspect | None = None

    @field_validator("image_list")
    @classmethod
    def _one_to_four(cls, value: list[ImageItem]) -> list[ImageItem]:
        if not 1 <= len(value) <= _MAX_IMAGE_LIST:
            raise ValueError(
                f'needs 1 to {_MAX_IMAGE_LIST} {{"image": ...}} items, got {len(value)}'
            )
        return value


class VideoExtend(_Routed):
    """``POST /v1/videos/video-extend``: continue an earlier video task's video."""

    video_id: Annotated[str, Field(min_length=1)]
    prompt: LegacyPrompt | None = None
    negative_prompt: LegacyPrompt | None = None
    cfg_scale: Unit | None = None


class LipSyncInput(RequestModel):
    """The ``input`` object of a lip-sync request."""

    video_id: str | None = None
    video_url: str | None = None
    mode: Literal["text2video", "audio2video"]
    text: str | None = None
    voice_id: str | None = None
    voice_language: str | None = None
    voice_speed: Annotated[float, BeforeValidator(_no_bool), AfterValidator(_between(0.8, 2))] | (
        None
    ) = None
    audio_type: Literal["file", "url"] | None = None
    audio_file: str | None = None
    audio_url: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LipSyncInput:
        if bool(self.video_id) == bool(self.video_url):
            raise ValueError("needs exactly one of video_id (an earlier Kling video) or video_url")
        if self.mode == "text2video" and not (self.text and self.voice_id):
            raise ValueError('mode "text2video" needs text and voice_id')
        if self.mode == "audio2video":
            if not (self.audio_file or self.audio_url):
                raise ValueError('mode "audio2video" needs audio_file or audio_url')
            if self.audio_type == "file" and not self.audio_file:
                raise ValueError('audio_type "file" needs audio_file (raw Base64)')
            if self.audio_type == "url" and not self.audio_url:
                raise ValueError('audio_type "url" needs audio_url')
        return self


class LipSync(_Routed):
    """``POST /v1/videos/lip-sync``."""

    input: LipSyncInput


class EffectsInput(RequestModel):
    """The ``input`` object of an effects request: one image, or two for a two-person scene."""

    image: ImageInput | None = None
    images: list[ImageInput] | None = None
    duration: LegacyDuration = None

    @model_validator(mode="after")
    def _one(self) -> EffectsInput:
        if self.images is not None and len(self.images) != 2:
            raise ValueError(f"images takes exactly 2 images, got {len(self.images)}")
        if bool(self.image) == bool(self.images):
            raise ValueError("needs exactly one of image or images (two images)")
        return self


class Effects(_Routed):
    """``POST /v1/videos/effects``."""

    effect_scene: Annotated[str, Field(min_length=1)]
    input: EffectsInput


# -- legacy images -----------------------------------------------------------------------------
class ImageGeneration(_Routed):
    """``POST /v1/images/generations``; ``n`` images take ``n`` concurrency slots."""

    prompt: RequiredPrompt
    negative_prompt: LegacyPrompt | None = None
    model_name: Annotated[str, Field(min_length=1)] | None = None
    image: ImageInput | None = None
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: Unit | None = None
    human_fidelity: Unit | None = None
    resolution: Literal["1k", "2k"] | None = None
    n: Annotated[int, BeforeValidator(_no_bool), AfterValidator(_between(1, 9))] = 1
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] | None = None


class VirtualTryOn(_Routed):
    """``POST /v1/images/kolors-virtual-try-on``."""

    model_name: Annotated[str, Field(min_length=1)] | None = None
    human_image: str
    cloth_image: str

    _images = field_validator("human_image", "cloth_image")(_image_field)


# -- the new standard --------------------------------------------------------------------------
def _on_off_or_bool(value: Any) -> Any:
    # The protocol does not say whether ``audio`` is a boolean or "on"/"off": take either, as is.
    if value is None or isinstance(value, bool) or value in ("on", "off"):
        return value
    raise ValueError(f'must be true/false (or "on"/"off"), got {value!r}')


class TasksSettings(RequestModel):
    """``settings`` of a new-standard create."""

    resolution: Literal["720p", "1080p", "4k"] | None = None
    aspect_ratio: Annotated[str, Field(pattern=r"^\d{1,2}:\d{1,2}$")] | None = None
    duration: Annotated[int | None, BeforeValidator(_whole_seconds)] = None
    audio: Annotated[bool | str | None, BeforeValidator(_on_off_or_bool)] = None
    multi_shot: Annotated[bool | None, BeforeValidator(_on_off_or_bool)] = None


class ContentPart(RequestModel):
    """One ``contents[]`` part: ``{type: "prompt", text}`` or ``{type: "first_frame", url}``..."""

    type: Annotated[str, Field(min_length=1)]
    text: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _needs_payload(self) -> ContentPart:
        if self.type == "prompt" and not (self.text and self.text.strip()):
            raise ValueError('a {"type": "prompt"} part needs a non-empty "text"')
        if self.type in ("first_frame", "last_frame", "image"):
            if not self.url:
                raise ValueError(f'a {{"type": "{self.type}"}} part needs a "url"')
            check_image(self.url, f"{self.type}.url")
        return self


class TasksOptions(RequestModel):
    """``options`` of a new-standard create: routing fields and the watermark switch."""

    callback_url: CallbackUrl | None = None
    external_task_id: ExternalId | None = None


_SETTINGS_KEYS = ("resolution", "aspect_ratio", "duration", "audio", "multi_shot")
_OPTION_KEYS = ("callback_url", "external_task_id")


class TasksRequest(RequestModel):
    """A new-standard create body. Given flat, ``duration``, ``resolution``, ... move into
    ``settings`` and ``callback_url``/``external_task_id`` into ``options``."""

    needs = ("prompt or contents",)

    prompt: str | None = None
    contents: list[ContentPart] | None = None
    settings: TasksSettings | None = None
    options: TasksOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for target, keys in (("settings", _SETTINGS_KEYS), ("options", _OPTION_KEYS)):
            flat = {k: data.pop(k) for k in keys if k in data}
            if not flat:
                continue
            nested = data.get(target)
            if nested is not None and not isinstance(nested, Mapping):
                data[target] = nested  # let the field's own check report it
                continue
            merged = dict(nested or {})
            for key, value in flat.items():
                if key in merged and merged[key] != value:
                    raise ValueError(
                        f"{key} is given twice ({value!r} and {target}.{key}={merged[key]!r}); "
                        "keep one"
                    )
                merged[key] = value
            data[target] = merged
        return data


# -- errors ------------------------------------------------------------------------------------
_MISSING_HINTS = {
    "prompt": "describe what to generate",
    "image_list": 'give 1 to 4 {"image": URL or raw Base64} items',
    "video_id": "the video id from an earlier Kling video task",
    "input": "an object; see the lip-sync/effects docs",
    "mode": 'use "text2video" or "audio2video"',
    "effect_scene": 'the effect\'s name, e.g. "hug"',
    "human_image": "a URL or raw Base64 of the person",
    "cloth_image": "a URL or raw Base64 of the garment",
    "type": 'e.g. "simple"',
}


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """A pydantic error as ``(dotted field, what to fix)`` pairs, in Kling's field names."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        # pydantic names union/annotated branches in the location; they mean nothing to users.
        loc = ".".join(
            p for p in parts if not p.startswith(("function-", "lax-", "literal[")) and p != "str"
        )
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        given = err.get("input")
        if kind == "missing":
            hint = _MISSING_HINTS.get(parts[-1] if parts else "")
            msg = "is required" + (f"; {hint}" if hint else "")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            msg = f"must be a JSON object, got {given!r:.60}"
        elif kind == "list_type":
            msg = f"must be a list, got {given!r:.60}"
        elif kind == "string_too_short":
            msg = "is empty; give a value"
        elif kind == "string_pattern_mismatch":
            msg = _pattern_hint(loc, given)
        elif msg.startswith("Input should be "):
            msg = "must be " + msg.removeprefix("Input should be ")
            if isinstance(given, str | int | float | bool):
                msg += f", got {given!r:.60}"
        problems.append((loc, msg))
    return problems


def _pattern_hint(loc: str, given: Any) -> str:
    if loc.endswith("aspect_ratio"):
        return f'must look like "16:9", got {given!r:.60}'
    if loc.endswith("callback_url"):
        return f"must be an http(s) URL, got {given!r:.60}"
    return f"has the wrong form: {given!r:.60}"
