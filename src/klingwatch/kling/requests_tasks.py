"""The new-standard create body (``POST /{product}/{model}``) and each model's documented rules.

One body model, :class:`TasksRequest`, for every kind (``text-to-video``, ``image-to-video``,
``omni-video``, ``motion-control``); what differs per model (durations, resolutions, aspect
ratios, ``settings.audio`` values, which ``contents[].type`` parts it takes, the prompt limit) is
one :class:`TasksSpec` per page in :data:`TASKS_SPECS`. A model klingwatch has no page for gets
only the rules every page shares (:func:`tasks_rules` with ``spec=None``): Kling ships models
often, and refusing one that works would be worse than sending one that does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from klingwatch.kling.inputs import TASKS_IMAGE_MAX_BYTES, check_image, is_url
from klingwatch.kling.request_base import (
    LEGACY_PROMPT_MAX,
    ROUTING_FIELDS,
    Id,
    Problem,
    RequestModel,
    RoutingFields,
    callback_advice,
    choices,
    drop_empty_routing,
    whole_seconds,
)

__all__ = [
    "IMAGE_PARTS",
    "TASKS_PROMPT_MAX_3_0",
    "TASKS_SPECS",
    "VIDEO_PARTS",
    "ContentPart",
    "TasksOptions",
    "TasksRequest",
    "TasksSettings",
    "TasksSpec",
    "move_prompt_into_contents",
    "tasks_rules",
]

#: The prompt limit of the 3.0 models ("cannot exceed 3072 characters": kling-3.0-turbo-t2v.md,
#: kling-omni-3.0-t2v.md, kling-omni-3.0-i2v.md, kling-omni-3.0-ovg.md); 2500 elsewhere.
TASKS_PROMPT_MAX_3_0 = 3072
#: Parts whose ``url`` is an image: URL or raw Base64, up to 50 MB.
IMAGE_PARTS = ("first_frame", "last_frame", "refer_image", "image")
#: Parts whose ``url`` is a video, "provided through URLs" only (kling-omni-3.0-ovg.md).
VIDEO_PARTS = ("feature_video", "base_video", "video")
_SECONDS_3_15 = tuple(range(3, 16))
_ASPECTS = ("16:9", "9:16", "1:1")
_HD = ("720p", "1080p")
_OMNI_PARTS = (
    "prompt",
    "first_frame",
    "last_frame",
    "refer_image",
    "feature_video",
    "base_video",
    "element",
)


@dataclass(frozen=True, slots=True)
class TasksSpec:
    """What one model's page documents. An empty tuple means "not documented: not checked"."""

    page: str
    durations: tuple[int, ...] = ()
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    audio: tuple[str, ...] = ()
    #: the ``contents[].type`` values the model takes (``()``: no ``contents`` documented)
    parts: tuple[str, ...] = ()
    prompt_max: int = LEGACY_PROMPT_MAX
    #: at most this many parts of a type (or of a group of types, joined by "+")
    part_limits: dict[str, int] = field(default_factory=dict)


TASKS_SPECS: dict[str, TasksSpec] = {
    "text-to-video/kling-3.0-turbo": TasksSpec(
        "kling-3.0-turbo-t2v.md", _SECONDS_3_15, _HD, _ASPECTS, prompt_max=TASKS_PROMPT_MAX_3_0
    ),
    "text-to-video/kling-3.0": TasksSpec(
        "kling-omni-3.0-t2v.md",
        _SECONDS_3_15,
        (*_HD, "4k"),
        _ASPECTS,
        ("native", "off"),
        prompt_max=TASKS_PROMPT_MAX_3_0,
    ),
    "text-to-video/kling-2.6": TasksSpec(
        "kling-2.6-t2v.md", (5, 10), _HD, _ASPECTS, ("native", "off")
    ),
    "text-to-video/kling-2.5-turbo": TasksSpec("kling-2.5-turbo-t2v.md", (5, 10), _HD, _ASPECTS),
    "image-to-video/kling-3.0-turbo": TasksSpec(
        # "Currently, only First Frame is supported. First Frame + Last Frame and Last Frame-only
        # are not supported yet"; contents[].type enum: prompt, first_frame.
        "kling-3.0-turbo-i2v.md",
        _SECONDS_3_15,
        _HD,
        parts=("prompt", "first_frame"),
    ),
    "image-to-video/kling-3.0": TasksSpec(
        "kling-omni-3.0-i2v.md",
        _SECONDS_3_15,
        (*_HD, "4k"),
        audio=("native", "off"),
        parts=("prompt", "first_frame", "last_frame", "element"),
        prompt_max=TASKS_PROMPT_MAX_3_0,
        part_limits={"element": 3},  # "Up to 3 Elements can be specified."
    ),
    "image-to-video/kling-2.6": TasksSpec(
        "kling-2.6-i2v.md",
        (5, 10),
        _HD,
        audio=("native", "off"),
        parts=("prompt", "first_frame", "last_frame", "voice"),
        part_limits={"voice": 2},  # "At most 2 voices can be referenced."
    ),
    "image-to-video/kling-2.5-turbo": TasksSpec(
        "kling-2.5-turbo-i2v.md", (5, 10), _HD, parts=("prompt", "first_frame", "last_frame")
    ),
    "omni-video/kling-3.0-omni": TasksSpec(
        "kling-omni-3.0-ovg.md",
        _SECONDS_3_15,
        (*_HD, "4k"),
        _ASPECTS,
        ("native", "original", "off"),
        _OMNI_PARTS,
        TASKS_PROMPT_MAX_3_0,
        {"feature_video+base_video": 1},  # "Maximum 1 reference video."
    ),
    "omni-video/kling-o1": TasksSpec(
        "kling-o1-video.md",
        tuple(range(3, 11)),
        _HD,
        _ASPECTS,
        ("original", "off"),
        _OMNI_PARTS,
        part_limits={"feature_video+base_video": 1},  # "Add at most one reference video."
    ),
    "motion-control/kling-3.0": TasksSpec(
        "kling-motion-control-3.0.md",
        resolutions=_HD,
        audio=("original", "off"),
        parts=("prompt", "image", "video", "element"),
        part_limits={"element": 1, "image": 1, "video": 1},  # "At most 1 element"
    ),
    "motion-control/kling-2.6": TasksSpec(
        "kling-motion-control-2.6.md",
        resolutions=_HD,
        audio=("original", "off"),
        parts=("prompt", "image", "video"),
        part_limits={"image": 1, "video": 1},
    ),
}


def _audio_value(value: Any) -> Any:
    # Every page types settings.audio as a string enum ("native", "original", "off").
    if isinstance(value, bool) or (value is not None and not isinstance(value, str)):
        raise ValueError(f'must be a string such as "native" or "off", got {value!r}')
    return value


class TasksSettings(RequestModel):
    """``settings`` of a new-standard create."""

    resolution: str | None = None
    aspect_ratio: Annotated[str, Field(pattern=r"^\d{1,2}:\d{1,2}$")] | None = None
    duration: Annotated[int | None, BeforeValidator(whole_seconds)] = None
    audio: Annotated[str | None, BeforeValidator(_audio_value)] = None
    multi_shot: bool | None = None
    #: motion control: required, "image" or "video" (kling-motion-control-2.6.md)
    character_orientation: Literal["image", "video"] | None = None
    #: omni: "set shot_type to intelligence" (kling-updates-api.md 2026-06-17)
    shot_type: str | None = None


class ContentPart(RequestModel):
    """One ``contents[]`` part: ``{type: "prompt", text}``, ``{type: "first_frame", url}``,
    ``{type: "element", element_id, id}``, ``{type: "voice", voice_id, id}``, ..."""

    type: Id
    text: str | None = None
    url: str | None = None
    id: str | None = None
    element_id: str | int | None = None
    voice_id: str | None = None

    def problems(self, where: str) -> list[Problem]:
        kind = self.type
        if kind == "prompt" and not (self.text and self.text.strip()):
            return [(where, 'a {"type": "prompt"} part needs a non-empty "text"')]
        if kind in IMAGE_PARTS + VIDEO_PARTS and not self.url:
            return [(where, f'a {{"type": "{kind}"}} part needs a "url"')]
        if kind in IMAGE_PARTS:
            try:
                check_image(self.url or "", f"{kind}.url", max_bytes=TASKS_IMAGE_MAX_BYTES)
            except ValueError as exc:
                return [(where, str(exc))]
        if kind in VIDEO_PARTS and not is_url(self.url or ""):
            return [(where, f"a {kind} is taken by http(s) URL only, got {self.url!r:.60}")]
        # element and voice parts: "element_id ... required", "id ... required"
        key = {"element": "element_id", "voice": "voice_id"}.get(kind)
        if key is not None and getattr(self, key) in (None, ""):
            return [(where, f'a {{"type": "{kind}"}} part needs "{key}"')]
        if key is not None and not self.id:
            return [(where, f'a {{"type": "{kind}"}} part needs an "id" to name it in the prompt')]
        return []


class TasksOptions(RoutingFields):
    """``options`` of a new-standard create: routing fields and the watermark switch."""


_SETTINGS_KEYS = tuple(k for k in TasksSettings.model_fields)
_OPTION_KEYS = (*ROUTING_FIELDS, "watermark_info")


class TasksRequest(RequestModel):
    """A new-standard create body. Given flat, ``duration``, ``resolution``, ... move into
    ``settings`` and ``callback_url``/``external_task_id`` into ``options``."""

    needs = ("prompt or contents",)
    image_fields = ("contents[type=first_frame|last_frame|refer_image|image].url",)
    also_known = (*_SETTINGS_KEYS, *_OPTION_KEYS)

    prompt: str | None = None
    contents: list[ContentPart] | None = None
    settings: TasksSettings | None = None
    options: TasksOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(drop_empty_routing(data))
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

    def parts(self, kind: str) -> list[ContentPart]:
        return [p for p in self.contents or [] if p.type == kind]


def move_prompt_into_contents(data: Any) -> Any:
    """For the kinds whose pages take the prompt as a ``contents`` part (image-to-video,
    omni-video, motion-control), a flat ``prompt`` becomes that part, first in the list."""
    if not isinstance(data, Mapping) or not isinstance(data.get("prompt"), str):
        return data
    contents = data.get("contents")
    if contents is not None and not isinstance(contents, list):
        return data  # the field's own check reports it
    parts = list(contents or [])
    if any(isinstance(p, Mapping) and p.get("type") == "prompt" for p in parts):
        raise ValueError(
            'the prompt is given twice (prompt and a {"type": "prompt"} part); keep one'
        )
    out = {k: v for k, v in data.items() if k != "prompt"}
    out["contents"] = [{"type": "prompt", "text": data["prompt"]}, *parts]
    return out


def _count(body: TasksRequest, group: str) -> int:
    return sum(len(body.parts(kind)) for kind in group.split("+"))


def _setting(where: str, value: Any, allowed: tuple[Any, ...], model: str) -> list[Problem]:
    if value is None or not allowed or value in allowed:
        return []
    if where == "settings.duration":
        offered = (
            f"{allowed[0]}-{allowed[-1]}" if len(allowed) > 2 else " or ".join(map(str, allowed))
        )
        return [(where, f"{value} s is not offered by {model}; use {offered}")]
    return [(where, f"{value!r} is not offered by {model}; use {choices(allowed)}")]


def tasks_rules(
    kind: str, model: str, spec: TasksSpec | None, body: TasksRequest
) -> tuple[list[Problem], list[Problem]]:
    """``(problems, warnings)`` of a validated body for ``kind``/``model`` (``spec`` its page)."""
    problems: list[Problem] = []
    contents = body.contents or []
    for i, part in enumerate(contents):
        problems += part.problems(f"contents.{i}")
    limit = spec.prompt_max if spec else TASKS_PROMPT_MAX_3_0
    texts = [("prompt", body.prompt)] + [
        (f"contents.{i}.text", p.text) for i, p in enumerate(contents) if p.type == "prompt"
    ]
    for where, text in texts:
        if text is not None and len(text) > limit:
            problems.append(
                (where, f"is {len(text)} characters; {kind}/{model} accepts at most {limit}")
            )
    has_prompt = any(t and t.strip() for _, t in texts)
    if kind == "text-to-video" and not has_prompt:  # "prompt | string | Yes"
        problems.append(("prompt", "is required for text-to-video: describe the video to generate"))
    if kind != "text-to-video" and not contents:  # "contents | array | Yes"
        problems.append(("contents", f"is required for {kind}: a list of typed parts"))
    first, last = body.parts("first_frame"), body.parts("last_frame")
    if kind == "image-to-video" and not first:  # "Required in the first_frame"
        problems.append(
            (
                "contents",
                'image-to-video needs a start image: add {"type": "first_frame", "url": ...}',
            )
        )
    elif last and not first:  # "last-frame-only video generation is not supported"
        problems.append(
            (
                "contents",
                "a last_frame needs a first_frame: Kling makes no video from a last frame alone",
            )
        )
    if kind == "motion-control":
        problems += _motion_rules(body)
    ids = Counter(p.id for p in contents if p.id)
    for ident, n in ids.items():
        if n > 1:  # "the current parameters in the same task must not be duplicated"
            problems.append(
                ("contents", f"the part id {ident!r} is used {n} times; ids must differ")
            )
    if spec is not None:
        problems += _spec_rules(model, spec, body)
    options = body.options
    warnings = callback_advice(options.callback_url if options else None, "options.callback_url")
    warnings += _model_advice(f"{kind}/{model}", body)
    return problems, warnings


def _spec_rules(model: str, spec: TasksSpec, body: TasksRequest) -> list[Problem]:
    out: list[Problem] = []
    if spec.parts:
        for i, part in enumerate(body.contents or []):
            if part.type not in spec.parts:
                out.append(
                    (
                        f"contents.{i}.type",
                        f"{part.type!r} is not a part {model} takes; use {choices(spec.parts)}",
                    )
                )
    for group, most in spec.part_limits.items():
        n = _count(body, group)
        if n > most:
            out.append(("contents", f"{n} {group} parts; {model} takes at most {most}"))
    s = body.settings or TasksSettings()
    out += _setting("settings.duration", s.duration, spec.durations, model)
    out += _setting("settings.resolution", s.resolution, spec.resolutions, model)
    out += _setting("settings.aspect_ratio", s.aspect_ratio, spec.aspect_ratios, model)
    out += _setting("settings.audio", s.audio, spec.audio, model)
    return out


def _motion_rules(body: TasksRequest) -> list[Problem]:
    out: list[Problem] = []
    s = body.settings or TasksSettings()
    if s.character_orientation is None:  # "settings.character_orientation | string | Yes"
        out.append(
            ("settings.character_orientation", 'is required for motion control: "image" or "video"')
        )
    # "both reference images and reference videos need to be uploaded" (kling-updates-api.md
    # 2025-12-22); an element can stand in for the image (kling-motion-control-3.0.md).
    if not body.parts("video"):
        out.append(("contents", 'motion control needs a {"type": "video", "url": ...} to copy'))
    if not body.parts("image") and not body.parts("element"):
        out.append(("contents", 'motion control needs a {"type": "image", "url": ...} character'))
    return out


def _model_advice(name: str, body: TasksRequest) -> list[Problem]:
    """What a page says is "only supported" in some combination: warnings, never refusals."""
    s = body.settings or TasksSettings()
    out: list[Problem] = []
    first, last = body.parts("first_frame"), body.parts("last_frame")
    kling_2_6 = name in ("text-to-video/kling-2.6", "image-to-video/kling-2.6")
    if kling_2_6 and s.audio == "native" and s.resolution != "1080p":
        out.append(("settings.resolution", "kling-2.6 makes native audio in 1080p only"))
    frames_1080 = name in ("image-to-video/kling-2.6", "image-to-video/kling-2.5-turbo")
    if frames_1080 and first and last and s.resolution != "1080p":
        out.append(("settings.resolution", "first + last frame videos come in 1080p only"))
    if name == "image-to-video/kling-2.6" and body.parts("voice") and s.audio != "native":
        out.append(("settings.audio", 'a voice part needs audio "native" (it cannot be off)'))
    if name == "omni-video/kling-3.0-omni":
        if body.parts("base_video") and (first or last):
            out.append(("contents", "a base_video cannot take a first or last frame"))
        if body.parts("base_video") and (s.audio == "native" or s.multi_shot):
            out.append(("settings", "a base_video edit takes no native audio and no multi-shot"))
        if body.parts("feature_video") and (s.audio == "native" or s.multi_shot is False):
            out.append(("settings", "a feature_video takes audio off/original and multi_shot true"))
    if name == "omni-video/kling-o1":
        if first and last and (body.parts("refer_image") or body.parts("element")):
            out.append(("contents", "with first and last frames, kling-o1 takes no other images"))
        others = body.parts("refer_image") + body.parts("feature_video") + body.parts("base_video")
        if first and not others and s.duration not in (None, 5, 10):
            out.append(("settings.duration", "kling-o1 makes 5 or 10 s from a first frame alone"))
    return out
