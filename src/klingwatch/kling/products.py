"""The registry of every Kling endpoint that creates a task.

A :class:`Product` knows its path, its API standard, its pack family (which concurrency slots it
takes), how to validate a request before anything is sent, what the request costs in slots, and how
long its tasks usually queue and run (the cold-start defaults the engine's cadence learns from).

Names (used by the client, the CLI's ``--product`` and the ledger)::

    text2video  image2video  multi-image2video  video-extend  lip-sync  effects
    image-generation  virtual-try-on
    text-to-video/<model>  image-to-video/<model>  omni-video/<model>  motion-control/<model>

API paths are accepted as aliases (``/v1/videos/text2video``, ``/v1/images/generations``, ...).

Validation is deliberately strict about what Kling refuses (1200/1201 after a round trip) and
deliberately loose about what it does not know: unknown extra fields pass through untouched, because
Kling adds fields often.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from klingwatch.kling.errors import RequestValidationError
from klingwatch.kling.models import ApiStandard

__all__ = [
    "PRODUCTS",
    "ExpectedTiming",
    "Family",
    "Product",
    "get_product",
    "product_names",
]

LEGACY_PROMPT_MAX = 2500


class Family(StrEnum):
    """Resource-pack type: each has its own concurrency slots (``product_type`` in ``/tasks``)."""

    VIDEO = "video"
    IMAGE = "image"
    TRY_ON = "try_on"


@dataclass(frozen=True, slots=True)
class ExpectedTiming:
    """Typical seconds a task spends queued (``submitted``) and running (``processing``)."""

    queue_p50: float
    queue_p95: float
    run_p50: float
    run_p95: float

    @property
    def total_p50(self) -> float:
        return self.queue_p50 + self.run_p50

    @property
    def total_p95(self) -> float:
        return self.queue_p95 + self.run_p95


# -- shared field rules ------------------------------------------------------------------------
_DATA_URL = re.compile(r"^data:[^,]{0,100},", re.IGNORECASE)
_B64 = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}$")


def _check_image(value: str, field: str) -> str:
    """An image input: an http(s) URL or raw Base64 (no ``data:`` prefix)."""
    text = value.strip()
    if not text:
        raise ValueError(f"{field} is empty; give an image URL or raw Base64")
    if _DATA_URL.match(text):
        raise ValueError(
            f"{field} starts with a 'data:...;base64,' prefix; Kling wants the raw Base64 only: "
            "remove everything up to and including the comma"
        )
    if text.startswith(("http://", "https://")):
        return text
    if len(text) >= 16 and _B64.match(text[:4096]):
        return text
    raise ValueError(f"{field} must be an http(s) URL or raw Base64 image data")


class _Request(BaseModel):
    """Base of every request model: unknown fields pass through."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False)


def _prompt_len(value: str | None, limit: int, field: str = "prompt") -> str | None:
    if value is not None and len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters; Kling accepts at most {limit}")
    return value


def _legacy_duration(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if text not in ("5", "10"):
        raise ValueError(f'duration must be "5" or "10" (seconds, sent as a string), got {value!r}')
    return text


class CameraConfig(_Request):
    horizontal: float = 0
    vertical: float = 0
    pan: float = 0
    tilt: float = 0
    roll: float = 0
    zoom: float = 0

    @model_validator(mode="after")
    def _one_axis(self) -> CameraConfig:
        axes = {
            k: getattr(self, k) for k in ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
        }
        for name, v in axes.items():
            if not -10 <= v <= 10:
                raise ValueError(f"camera_control.config.{name} must be within [-10, 10], got {v}")
        if sum(1 for v in axes.values() if v != 0) != 1:
            raise ValueError("camera_control.config needs exactly one non-zero axis")
        return self


class CameraControl(_Request):
    type: str
    config: CameraConfig | None = None

    @model_validator(mode="after")
    def _simple_needs_config(self) -> CameraControl:
        if self.type == "simple" and self.config is None:
            raise ValueError('camera_control of type "simple" needs a config')
        return self


class _LegacyVideo(_Request):
    prompt: str | None = None
    negative_prompt: str | None = None
    model_name: str | None = None
    mode: Literal["std", "pro"] | None = None
    duration: str | None = None
    cfg_scale: float | None = Field(default=None, ge=0, le=1)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str | None:
        return _legacy_duration(v)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _length(cls, v: str | None) -> str | None:
        return _prompt_len(v, LEGACY_PROMPT_MAX)

    @model_validator(mode="after")
    def _cfg_not_for_v2(self) -> _LegacyVideo:
        if self.cfg_scale is not None and (self.model_name or "").startswith("kling-v2"):
            raise ValueError(f"cfg_scale is not supported by {self.model_name}; remove it")
        return self


class Text2Video(_LegacyVideo):
    prompt: str
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None
    sound: Literal["on", "off"] | None = None
    camera_control: CameraControl | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is empty; describe the video to generate")
        return v


class DynamicMask(_Request):
    mask: str
    trajectories: list[dict[str, Any]] = Field(default_factory=list)


class Image2Video(_LegacyVideo):
    image: str | None = None
    image_tail: str | None = None
    static_mask: str | None = None
    dynamic_masks: list[DynamicMask] | None = Field(default=None, max_length=6)
    camera_control: CameraControl | None = None

    @field_validator("image", "image_tail")
    @classmethod
    def _image(cls, v: str | None, info: Any) -> str | None:
        return None if v is None else _check_image(v, info.field_name)

    @model_validator(mode="after")
    def _exclusions(self) -> Image2Video:
        if not self.image and not self.image_tail:
            raise ValueError("image2video needs image (or image_tail): a URL or raw Base64")
        groups = {
            "image+image_tail": bool(self.image and self.image_tail),
            "static_mask/dynamic_masks": bool(self.static_mask or self.dynamic_masks),
            "camera_control": self.camera_control is not None,
        }
        used = [name for name, on in groups.items() if on]
        if len(used) > 1:
            raise ValueError(f"{' and '.join(used)} cannot be combined; use only one of them")
        return self


class ImageItem(_Request):
    image: str

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        return _check_image(v, "image_list[].image")


class MultiImage2Video(_LegacyVideo):
    prompt: str
    image_list: list[ImageItem] = Field(min_length=1, max_length=4)
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None


class VideoExtend(_Request):
    video_id: str = Field(min_length=1)
    prompt: str | None = None
    negative_prompt: str | None = None
    cfg_scale: float | None = Field(default=None, ge=0, le=1)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _length(cls, v: str | None) -> str | None:
        return _prompt_len(v, LEGACY_PROMPT_MAX)


class LipSyncInput(_Request):
    video_id: str | None = None
    video_url: str | None = None
    mode: Literal["text2video", "audio2video"]
    text: str | None = None
    voice_id: str | None = None
    voice_language: str | None = None
    voice_speed: float | None = Field(default=None, ge=0.8, le=2.0)
    audio_type: Literal["file", "url"] | None = None
    audio_file: str | None = None
    audio_url: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LipSyncInput:
        if bool(self.video_id) == bool(self.video_url):
            raise ValueError("input needs exactly one of video_id or video_url")
        if self.mode == "text2video" and not (self.text and self.voice_id):
            raise ValueError('mode "text2video" needs input.text and input.voice_id')
        if self.mode == "audio2video" and not (self.audio_file or self.audio_url):
            raise ValueError('mode "audio2video" needs input.audio_file or input.audio_url')
        return self


class LipSync(_Request):
    input: LipSyncInput


class EffectsInput(_Request):
    image: str | None = None
    images: list[str] | None = Field(default=None, min_length=2, max_length=2)
    duration: str | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str | None:
        return _legacy_duration(v)

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return None if v is None else _check_image(v, "input.image")

    @model_validator(mode="after")
    def _one(self) -> EffectsInput:
        if bool(self.image) == bool(self.images):
            raise ValueError("input needs exactly one of image or images (two images)")
        return self


class Effects(_Request):
    effect_scene: str = Field(min_length=1)
    input: EffectsInput


class ImageGeneration(_Request):
    prompt: str
    negative_prompt: str | None = None
    model_name: str | None = None
    image: str | None = None
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: float | None = Field(default=None, ge=0, le=1)
    human_fidelity: float | None = Field(default=None, ge=0, le=1)
    resolution: Literal["1k", "2k"] | None = None
    n: int = Field(default=1, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] | None = None

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _length(cls, v: str | None) -> str | None:
        return _prompt_len(v, LEGACY_PROMPT_MAX)

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return None if v is None else _check_image(v, "image")


class VirtualTryOn(_Request):
    model_name: str | None = None
    human_image: str
    cloth_image: str

    @field_validator("human_image", "cloth_image")
    @classmethod
    def _image(cls, v: str, info: Any) -> str:
        return _check_image(v, info.field_name)


# -- the new standard ---------------------------------------------------------------------------
class TasksSettings(_Request):
    resolution: Literal["720p", "1080p", "4k"] | None = None
    aspect_ratio: str | None = None
    duration: int | None = None
    audio: bool | None = None
    multi_shot: bool | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _int_duration(cls, v: Any) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool):
            raise ValueError("duration must be an integer number of seconds")
        try:
            as_float = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"duration must be an integer number of seconds, got {v!r}") from None
        if as_float != int(as_float):
            raise ValueError(f"duration must be a whole number of seconds, got {v!r}")
        return int(as_float)


class ContentPart(_Request):
    type: str = Field(min_length=1)
    text: str | None = None
    url: str | None = None


class TasksRequest(_Request):
    """A new-standard create body; flat ``duration``, ``resolution``, ... move into ``settings``."""

    prompt: str | None = None
    contents: list[ContentPart] | None = None
    settings: TasksSettings = Field(default_factory=TasksSettings)
    options: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_settings(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        settings = dict(data.get("settings") or {})
        for key in ("resolution", "aspect_ratio", "duration", "audio", "multi_shot"):
            if key in data:
                settings.setdefault(key, data.pop(key))
        data["settings"] = settings
        return data


_DURATIONS: dict[str, tuple[int, ...]] = {
    "kling-3.0-turbo": tuple(range(3, 16)),
    "kling-3.0": tuple(range(3, 16)),
    "kling-3.0-omni": tuple(range(3, 16)),
    "kling-o1": tuple(range(3, 11)),
    "kling-2.6": (5, 10),
    "kling-2.5-turbo": (5, 10),
}
_TASKS_PRODUCTS: dict[str, tuple[str, ...]] = {
    "text-to-video": ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo"),
    "image-to-video": ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo"),
    "omni-video": ("kling-3.0-omni", "kling-o1"),
    "motion-control": ("kling-3.0", "kling-2.6"),
}


# -- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Product:
    """One task-creating endpoint."""

    name: str
    path: str
    standard: ApiStandard
    family: Family
    request_model: type[_Request]
    timing: ExpectedTiming
    #: new standard only: the model in the path, and its allowed durations
    model: str | None = None
    durations: tuple[int, ...] = ()
    prompt_max: int = LEGACY_PROMPT_MAX

    @property
    def query_path(self) -> str:
        """Where single tasks of this product are read (legacy) or ``/tasks`` (new standard)."""
        return self.path if self.standard is ApiStandard.LEGACY else "/tasks"

    def validate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request; return the body to send (without routing fields).

        Raises :class:`RequestValidationError` listing every problem with a hint.
        """
        if not isinstance(request, Mapping):
            raise RequestValidationError(
                self.name, [("", f"a request must be a JSON object, got {type(request).__name__}")]
            )
        body = {k: v for k, v in request.items() if k not in ("product",)}
        try:
            model = self.request_model.model_validate(body)
        except ValidationError as exc:
            raise RequestValidationError(self.name, _problems(exc)) from None
        out = model.model_dump(mode="json", exclude_none=True, exclude_unset=False)
        if self.standard is ApiStandard.TASKS:
            self._check_tasks(out)
        return _prune_defaults(out, model)

    def _check_tasks(self, out: dict[str, Any]) -> None:
        problems: list[tuple[str, str]] = []
        prompt = out.get("prompt")
        if prompt is not None and len(prompt) > self.prompt_max:
            problems.append(
                (
                    "prompt",
                    f"{len(prompt)} characters; {self.name} accepts at most {self.prompt_max}",
                )
            )
        parts = out.get("contents") or []
        if self.name.startswith("text-to-video/") and not (prompt or parts):
            problems.append(("prompt", "text-to-video needs a prompt"))
        if self.name.startswith("image-to-video/") and not any(
            p.get("type") in ("first_frame", "last_frame", "image") for p in parts
        ):
            problems.append(
                ("contents", 'image-to-video needs a {"type": "first_frame", "url": ...} part')
            )
        duration = out.get("settings", {}).get("duration")
        if duration is not None and self.durations and duration not in self.durations:
            allowed = (
                f"{self.durations[0]}-{self.durations[-1]}"
                if len(self.durations) > 2
                else " or ".join(map(str, self.durations))
            )
            problems.append(
                ("settings.duration", f"{duration} s is not offered by {self.model}; use {allowed}")
            )
        if problems:
            raise RequestValidationError(self.name, problems)

    def body(
        self,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """The validated body to POST, routing fields placed where this standard wants them."""
        body = self.validate(request)
        if self.standard is ApiStandard.LEGACY:
            if external_task_id is not None:
                body["external_task_id"] = external_task_id
            if callback_url is not None:
                body["callback_url"] = callback_url
        else:
            options = dict(body.get("options") or {})
            if external_task_id is not None:
                options["external_task_id"] = external_task_id
            if callback_url is not None:
                options["callback_url"] = callback_url
            if options:
                body["options"] = options
        return body

    def slot_cost(self, request: Mapping[str, Any]) -> int:
        """Concurrency slots a task of this request holds (an image generation takes ``n``)."""
        if self.family is Family.IMAGE:
            try:
                return max(1, int(request.get("n", 1) or 1))
            except (TypeError, ValueError):
                return 1
        return 1

    def expected_timing(self, request: Mapping[str, Any] | None = None) -> ExpectedTiming:
        """Cold-start timing for this request: pro and longer videos take longer."""
        t = self.timing
        if request is None or self.family is not Family.VIDEO:
            return t
        factor = 1.0
        if request.get("mode") == "pro" or _setting(request, "resolution") in ("1080p", "4k"):
            factor *= 2.0
        duration = _setting(request, "duration")
        try:
            if duration is not None and float(duration) > 5:
                factor *= float(duration) / 5 * 0.8
        except (TypeError, ValueError):
            pass
        return ExpectedTiming(t.queue_p50, t.queue_p95, t.run_p50 * factor, t.run_p95 * factor)

    def model_of(self, request: Mapping[str, Any]) -> str | None:
        """The model a request runs on (``model_name`` or the path's model)."""
        if self.model is not None:
            return self.model
        name = request.get("model_name")
        return str(name) if name else None


def _setting(request: Mapping[str, Any], key: str) -> Any:
    if key in request:
        return request[key]
    settings = request.get("settings")
    return settings.get(key) if isinstance(settings, Mapping) else None


def _prune_defaults(out: dict[str, Any], model: _Request) -> dict[str, Any]:
    """Drop defaults the user did not set (e.g. ``n=1``) so the body stays what they wrote."""
    for name in type(model).model_fields:
        if name in out and name not in model.model_fields_set and name != "settings":
            del out[name]
    if out.get("settings") == {}:
        del out["settings"]
    return out


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        problems.append((loc, msg))
    return problems


_VIDEO_STD = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=180)
_IMAGE = ExpectedTiming(queue_p50=5, queue_p95=20, run_p50=20, run_p95=60)


def _legacy(
    name: str, path: str, family: Family, model: type[_Request], t: ExpectedTiming
) -> Product:
    return Product(
        name=name,
        path=path,
        standard=ApiStandard.LEGACY,
        family=family,
        request_model=model,
        timing=t,
    )


def _tasks_product(kind: str, model: str) -> Product:
    prompt_max = 3072 if kind == "text-to-video" and model.startswith("kling-3.0") else 2500
    return Product(
        name=f"{kind}/{model}",
        path=f"/{kind}/{model}",
        standard=ApiStandard.TASKS,
        family=Family.VIDEO,
        request_model=TasksRequest,
        timing=_VIDEO_STD,
        model=model,
        durations=_DURATIONS.get(model, tuple(range(3, 16))),
        prompt_max=prompt_max,
    )


PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        _legacy("text2video", "/v1/videos/text2video", Family.VIDEO, Text2Video, _VIDEO_STD),
        _legacy("image2video", "/v1/videos/image2video", Family.VIDEO, Image2Video, _VIDEO_STD),
        _legacy(
            "multi-image2video",
            "/v1/videos/multi-image2video",
            Family.VIDEO,
            MultiImage2Video,
            _VIDEO_STD,
        ),
        _legacy("video-extend", "/v1/videos/video-extend", Family.VIDEO, VideoExtend, _VIDEO_STD),
        _legacy(
            "lip-sync",
            "/v1/videos/lip-sync",
            Family.VIDEO,
            LipSync,
            ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=45, run_p95=120),
        ),
        _legacy("effects", "/v1/videos/effects", Family.VIDEO, Effects, _VIDEO_STD),
        _legacy(
            "image-generation", "/v1/images/generations", Family.IMAGE, ImageGeneration, _IMAGE
        ),
        _legacy(
            "virtual-try-on",
            "/v1/images/kolors-virtual-try-on",
            Family.TRY_ON,
            VirtualTryOn,
            _IMAGE,
        ),
        *(_tasks_product(kind, m) for kind, models in _TASKS_PRODUCTS.items() for m in models),
    )
}

_ALIASES: dict[str, str] = {p.path.strip("/"): p.name for p in PRODUCTS.values()}


def product_names() -> list[str]:
    """Every registered product name."""
    return list(PRODUCTS)


def get_product(name: str) -> Product:
    """Look a product up by name or API path.

    A new-standard path with a model not in the registry yet (``text-to-video/kling-4.0``) is
    accepted with the generic new-standard rules, since Kling ships new models often.
    """
    key = name.strip().strip("/")
    if key in PRODUCTS:
        return PRODUCTS[key]
    if key in _ALIASES:
        return PRODUCTS[_ALIASES[key]]
    kind, _, model = key.partition("/")
    if kind in _TASKS_PRODUCTS and re.fullmatch(r"kling-[a-z0-9.\-]+", model):
        return _tasks_product(kind, model)
    known = ", ".join(PRODUCTS)
    raise KeyError(f"unknown product {name!r}; known products: {known}")
