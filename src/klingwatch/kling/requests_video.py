"""Legacy ``/v1/videos/...`` request models (the model is chosen by ``model_name``).

``text2video``, ``image2video``, ``multi-image2video``, ``video-extend`` and the old ``lip-sync``
have no page in the vendor snapshot (``aself101/kling-api`` ``docs/api/``): their rules are
KLING_PROTOCOL.md section 3, refusing only enumerations, ranges and required fields, and warning
where the protocol says "not for v2.x" or "mutually exclusive" (the official ComfyUI nodes send
``cfg_scale`` to ``kling-v2-master`` by default, so "not supported" is no proof of a refusal).
``avatar``, ``advanced-lip-sync``, ``effects`` and ``multi-elements`` follow their pages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from klingwatch.kling.request_base import (
    Id,
    ImageInput,
    LegacyPrompt,
    LegacySeconds,
    Mode,
    Problem,
    RequestModel,
    RequiredPrompt,
    Routed,
    Unit,
    between,
    legacy_version,
    no_bool,
    one_of,
)

__all__ = [
    "IMAGE2VIDEO_MODELS",
    "TEXT2VIDEO_MODELS",
    "AdvancedLipSync",
    "Avatar",
    "CameraConfig",
    "CameraControl",
    "DynamicMask",
    "Effects",
    "EffectsInput",
    "FaceChoice",
    "Image2Video",
    "ImageItem",
    "LipSync",
    "LipSyncInput",
    "MultiElements",
    "MultiImage2Video",
    "Text2Video",
    "VideoExtend",
    "legacy_durations",
]

_MAX_DYNAMIC_MASKS = 6  # KLING_PROTOCOL.md section 3: dynamic_masks (<= 6)
_MAX_IMAGE_LIST = 4  # KLING_PROTOCOL.md section 3: image_list (<= 4)
_CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")

#: Legacy video model names klingwatch knows, for "did you mean" warnings only (never refusals):
#: KLING_PROTOCOL.md section 3, kling-updates-api.md (kling-v2-1, kling-v3) and
#: kling-get-started-kling-skills.md ("kling-v3 / kling-v2-6 / kling-v3-omni / kling-video-o1").
TEXT2VIDEO_MODELS = (
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
)
IMAGE2VIDEO_MODELS = (
    "kling-v1",
    "kling-v1-5",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
)

Axis = Annotated[float, BeforeValidator(no_bool), AfterValidator(between(-10, 10))]
Volume = Annotated[float, BeforeValidator(no_bool), AfterValidator(between(0, 2))]
Millis = Annotated[int, BeforeValidator(no_bool), AfterValidator(between(0, 10**12))]
LegacyAspect = Literal["16:9", "9:16", "1:1"]  # KLING_PROTOCOL.md section 3 (text2video)
StdPro = Literal["std", "pro"]  # kling-avatar.md, kling-multi-element-video-editing.md


def legacy_durations(model: str | None) -> tuple[int, ...]:
    """Durations (seconds) a legacy video model offers; ``()`` when klingwatch does not know.

    ``kling-v1`` .. ``kling-v2-6``: 5 or 10 (KLING_PROTOCOL.md section 3; the 2.6 and 2.5 Turbo
    pages, kling-2.6-t2v.md and kling-2.5-turbo-t2v.md, say the same). ``kling-v3*``: 3-15 and
    ``kling-video-o1``: 3-10 (kling-guide-capability-map-video.md, "Generation Range").
    """
    name = model or "kling-v1"  # Kling's default model when none is named
    if name.startswith("kling-video-o1"):
        return tuple(range(3, 11))
    version = legacy_version(name)
    if version is None:
        return ()
    return (5, 10) if version < (3, 0) else tuple(range(3, 16))


def _seconds_text(durations: tuple[int, ...]) -> str:
    if len(durations) > 2:
        return f'"{durations[0]}" to "{durations[-1]}"'
    return " or ".join(f'"{d}"' for d in durations)


# -- camera ------------------------------------------------------------------------------------
class CameraConfig(RequestModel):
    """Camera movement, each axis within [-10, 10] (KLING_PROTOCOL.md section 3)."""

    horizontal: Axis | None = None
    vertical: Axis | None = None
    pan: Axis | None = None
    tilt: Axis | None = None
    roll: Axis | None = None
    zoom: Axis | None = None

    def moving(self) -> list[str]:
        return [axis for axis in _CAMERA_AXES if getattr(self, axis)]


class CameraControl(RequestModel):
    """``{type, config}``: a preset type, or ``simple`` with a config."""

    type: Id
    config: CameraConfig | None = None

    def advice(self) -> list[Problem]:
        # "one non-zero" is the protocol's word, not a page's; ComfyUI's node lets several move.
        if self.type == "simple" and self.config is None:
            return [("camera_control", 'type "simple" moves nothing without a config')]
        if self.config is not None:
            moving = self.config.moving()
            if len(moving) != 1:
                return [
                    (
                        "camera_control.config",
                        "Kling's docs ask for exactly one non-zero axis among "
                        f"{', '.join(_CAMERA_AXES)}; got {len(moving)} "
                        f"({', '.join(moving) or 'none'})",
                    )
                ]
        return []


# -- text and image to video -------------------------------------------------------------------
class _LegacyVideo(Routed):
    prompt: LegacyPrompt | None = None
    negative_prompt: LegacyPrompt | None = None
    model_name: Id | None = None
    mode: Mode | None = None
    duration: LegacySeconds = None
    cfg_scale: Unit | None = None
    camera_control: CameraControl | None = None

    def checks(self) -> list[Problem]:
        allowed = legacy_durations(self.model_name)
        if self.duration is not None and allowed and int(self.duration) not in allowed:
            return [
                (
                    "duration",
                    f"{self.model_name or 'kling-v1'} offers {_seconds_text(allowed)} "
                    f"(seconds), got {self.duration}",
                )
            ]
        return []

    def advice(self) -> list[Problem]:
        out = super().advice()
        version = legacy_version(self.model_name or "kling-v1")
        if self.cfg_scale is not None and version is not None and version[0] == 2:
            out.append(
                (
                    "cfg_scale",
                    f"{self.model_name} may ignore cfg_scale (Kling documents it for kling-v1 "
                    "models); sent as given",
                )
            )
        if self.camera_control is not None:
            out += self.camera_control.advice()
        return out


class Text2Video(_LegacyVideo):
    """``POST /v1/videos/text2video``."""

    prompt: RequiredPrompt
    aspect_ratio: LegacyAspect | None = None
    sound: Literal["on", "off"] | None = None

    def advice(self) -> list[Problem]:
        out = super().advice()
        model = self.model_name or "kling-v1"
        version = legacy_version(model)
        if self.sound == "on" and version is not None and version < (2, 6):
            out.append(("sound", f'"on" is documented for kling-v2-6 and newer, not {model}'))
        return out


class DynamicMask(RequestModel):
    """One motion brush: a mask image and its trajectory points."""

    mask: ImageInput
    trajectories: list[Any] = Field(default_factory=list)


class Image2Video(_LegacyVideo):
    """``POST /v1/videos/image2video``: a start and/or end frame, URL or raw Base64."""

    needs = ("image or image_tail",)
    image_fields = ("image", "image_tail", "static_mask", "dynamic_masks[].mask")

    image: ImageInput | None = None
    image_tail: ImageInput | None = None
    static_mask: ImageInput | None = None
    dynamic_masks: list[DynamicMask] | None = None
    sound: Literal["on", "off"] | None = None
    voice_list: list[Any] | None = None  # kling-updates-api.md 2025-12-16: "prompt and voice_list"
    aspect_ratio: str | None = None  # sent by ComfyUI's node; no rule is documented

    def checks(self) -> list[Problem]:
        out = super().checks()
        if not self.image and not self.image_tail:
            out.append(("", "image2video needs image (or image_tail): a URL or raw Base64"))
        masks = self.dynamic_masks or []
        if len(masks) > _MAX_DYNAMIC_MASKS:
            out.append(
                (
                    "dynamic_masks",
                    f"has {len(masks)} masks; Kling accepts at most {_MAX_DYNAMIC_MASKS}: "
                    "remove some",
                )
            )
        return out

    def advice(self) -> list[Problem]:
        out = super().advice()
        groups = {
            "image_tail": bool(self.image and self.image_tail),
            "static_mask/dynamic_masks": bool(self.static_mask or self.dynamic_masks),
            "camera_control": self.camera_control is not None,
        }
        used = [name for name, on in groups.items() if on]
        if len(used) > 1:
            out.append(
                (
                    "",
                    f"{' and '.join(used)} are documented as mutually exclusive (start+end "
                    "frame, motion brush, camera control); Kling may refuse the combination",
                )
            )
        return out


class ImageItem(RequestModel):
    """One ``image_list`` entry."""

    image: ImageInput


class MultiImage2Video(_LegacyVideo):
    """``POST /v1/videos/multi-image2video``: 1 to 4 reference images and a prompt."""

    image_fields = ("image_list[].image",)

    prompt: RequiredPrompt
    image_list: list[ImageItem]
    aspect_ratio: LegacyAspect | None = None

    def checks(self) -> list[Problem]:
        out = super().checks()
        if not 1 <= len(self.image_list) <= _MAX_IMAGE_LIST:
            out.append(
                (
                    "image_list",
                    f'needs 1 to {_MAX_IMAGE_LIST} {{"image": ...}} items, '
                    f"got {len(self.image_list)}",
                )
            )
        return out


class VideoExtend(Routed):
    """``POST /v1/videos/video-extend``: continue an earlier video task's video."""

    video_id: Id
    prompt: LegacyPrompt | None = None
    negative_prompt: LegacyPrompt | None = None
    cfg_scale: Unit | None = None


# -- lip sync ----------------------------------------------------------------------------------
class LipSyncInput(RequestModel):
    """The ``input`` object of a (legacy) lip-sync request."""

    video_id: str | None = None
    video_url: str | None = None
    mode: Literal["text2video", "audio2video"]
    text: str | None = None
    voice_id: str | None = None
    voice_language: str | None = None
    voice_speed: Annotated[float, BeforeValidator(no_bool)] | None = None
    audio_type: Literal["file", "url"] | None = None
    audio_file: str | None = None
    audio_url: str | None = None

    def checks(self) -> list[Problem]:
        out = one_of(
            self,
            ("video_id", "video_url"),
            "needs exactly one of video_id (an earlier Kling video) or video_url",
            "input",
        )
        if self.mode == "text2video" and not (self.text and self.voice_id):
            out.append(("input", 'mode "text2video" needs text and voice_id'))
        if self.mode == "audio2video":
            if not (self.audio_file or self.audio_url):
                out.append(("input", 'mode "audio2video" needs audio_file or audio_url'))
            elif self.audio_type == "file" and not self.audio_file:
                out.append(("input", 'audio_type "file" needs audio_file (raw Base64)'))
            elif self.audio_type == "url" and not self.audio_url:
                out.append(("input", 'audio_type "url" needs audio_url'))
        return out

    def advice(self) -> list[Problem]:
        # kling-text-to-speech.md: speeds outside [0.8, 2.0] "will be automatically rounded".
        if self.voice_speed is not None and not 0.8 <= self.voice_speed <= 2.0:
            return [
                ("input.voice_speed", f"{self.voice_speed:g} is outside 0.8-2.0; Kling rounds it")
            ]
        return []


class LipSync(Routed):
    """``POST /v1/videos/lip-sync`` (the older lip-sync, still sent by ComfyUI's nodes)."""

    input: LipSyncInput

    def checks(self) -> list[Problem]:
        return self.input.checks()

    def advice(self) -> list[Problem]:
        return super().advice() + self.input.advice()


class FaceChoice(RequestModel):
    """One ``face_choose[]`` item of an advanced lip-sync (kling-lip-sync.md)."""

    face_id: Id
    audio_id: str | None = None
    sound_file: str | None = None
    sound_start_time: Millis
    sound_end_time: Millis
    sound_insert_time: Millis
    sound_volume: Volume | None = None  # "Value range: [0, 2]"
    original_audio_volume: Volume | None = None


class AdvancedLipSync(Routed):
    """``POST /v1/videos/advanced-lip-sync`` (kling-lip-sync.md): a face from identify-face."""

    session_id: Id
    face_choose: list[FaceChoice] = Field(min_length=1)

    def checks(self) -> list[Problem]:
        out: list[Problem] = []
        for i, face in enumerate(self.face_choose):
            where = f"face_choose.{i}"
            # "Either audio_id or sound_file must be provided (mutually exclusive; cannot be
            # empty or both populated)"
            out += one_of(
                face,
                ("audio_id", "sound_file"),
                "needs exactly one of audio_id (from TTS) or sound_file",
                where,
            )
            # "the cropped sound must not be shorter than 2 seconds"
            if face.sound_end_time - face.sound_start_time < 2000:
                out.append(
                    (
                        where,
                        "sound_end_time - sound_start_time must be at least 2000 ms (the cropped "
                        "sound must not be shorter than 2 seconds)",
                    )
                )
        return out

    def advice(self) -> list[Problem]:
        out = super().advice()
        if len(self.face_choose) > 1:  # "Currently only supports one person lip-sync."
            out.append(("face_choose", "Kling currently lip-syncs one face per request"))
        return out


# -- avatar, effects, multi-element editing ---------------------------------------------------
class Avatar(Routed):
    """``POST /v1/videos/avatar/image2video`` (kling-avatar.md): a photo made to speak."""

    image_fields = ("image",)

    image: ImageInput
    audio_id: str | None = None
    sound_file: str | None = None
    prompt: LegacyPrompt | None = None
    mode: StdPro | None = None

    def checks(self) -> list[Problem]:
        # "Either audio_id or sound_file must be provided (mutually exclusive)"
        return one_of(
            self,
            ("audio_id", "sound_file"),
            "avatar needs exactly one of audio_id (from TTS) or sound_file",
        )


class EffectsInput(RequestModel):
    """The ``input`` of an effects request: one image, or two for a two-person scene."""

    image: ImageInput | None = None
    images: list[ImageInput] | None = None
    duration: LegacySeconds = None  # KLING_PROTOCOL.md section 3; no longer on the page

    def checks(self) -> list[Problem]:
        out: list[Problem] = []
        if self.images is not None and len(self.images) != 2:
            # kling-effects-video-effects.md: "Array length must be 2"
            out.append(("input", f"images takes exactly 2 images, got {len(self.images)}"))
        if bool(self.image) == bool(self.images):
            out.append(("input", "needs exactly one of image or images (two images)"))
        return out


class Effects(Routed):
    """``POST /v1/videos/effects`` (kling-effects-video-effects.md). The scene list grows every
    week, so ``effect_scene`` is not checked against it."""

    image_fields = ("input.image", "input.images[]")

    effect_scene: Id
    input: EffectsInput

    def checks(self) -> list[Problem]:
        return self.input.checks()


class MultiElements(Routed):
    """``POST /v1/videos/multi-elements`` (kling-multi-element-video-editing.md): add, swap or
    remove an element of a video prepared with init-selection."""

    image_fields = ("image_list[].image",)

    session_id: Id
    edit_mode: Literal["addition", "swap", "removal"]
    image_list: list[ImageItem] | None = None
    prompt: RequiredPrompt
    negative_prompt: LegacyPrompt | None = None
    mode: StdPro | None = None
    duration: Annotated[LegacySeconds, AfterValidator(lambda v: _five_or_ten(v))] = None

    def checks(self) -> list[Problem]:
        n = len(self.image_list or [])
        # "For adding video elements: ... upload 1-2 images"; "swapping: upload 1 image only"
        if self.edit_mode == "addition" and not 1 <= n <= 2:
            return [("image_list", f'edit_mode "addition" takes 1 or 2 images, got {n}')]
        if self.edit_mode == "swap" and n != 1:
            return [("image_list", f'edit_mode "swap" takes exactly 1 image, got {n}')]
        return []


def _five_or_ten(value: str | None) -> str | None:
    # kling-multi-element-video-editing.md: duration enum "5", "10"
    if value is not None and value not in ("5", "10"):
        raise ValueError(f'must be "5" or "10" (seconds), got "{value}"')
    return value
