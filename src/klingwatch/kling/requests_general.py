"""Audio, voice and element request models (legacy-style ``/v1/audio/...`` and ``/v1/general/...``).

Pages: kling-text-to-audio.md, kling-video-to-audio.md, kling-text-to-speech.md,
kling-2.6-voice-mgt.md (≡ kling-omni-3.0-voice-mgt.md), kling-o1-element-mgt.md
(≡ kling-omni-3.0-element-mgt.md, kling-image-o1-elements.md, kling-image-omni-3.0-elements.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from klingwatch.kling.request_base import (
    Id,
    ImageInput,
    Problem,
    RequestModel,
    Routed,
    between,
    exactly_one,
    max_chars,
    no_bool,
    one_of,
)

__all__ = [
    "CustomElement",
    "CustomVoice",
    "ElementImages",
    "ElementVideos",
    "TextToAudio",
    "TextToSpeech",
    "VideoToAudio",
]


Text200 = Annotated[str, AfterValidator(max_chars(200))]
Required20 = Annotated[Id, AfterValidator(max_chars(20))]
Required100 = Annotated[Id, AfterValidator(max_chars(100))]
Required200 = Annotated[Id, AfterValidator(max_chars(200))]
Required1000 = Annotated[Id, AfterValidator(max_chars(1000))]


class TextToAudio(Routed):
    """``POST /v1/audio/text-to-audio``: a sound from a prompt."""

    prompt: Required200  # "Cannot exceed 200 characters"
    # "Value range: 3.0s - 10.0s, supports one decimal place precision"
    duration: Annotated[float, BeforeValidator(no_bool), AfterValidator(between(3, 10))]

    def advice(self) -> list[Problem]:
        out = super().advice()
        if round(self.duration, 1) != self.duration:
            out.append(
                ("duration", f"{self.duration:g} has more than one decimal; Kling uses 0.1 s")
            )
        return out


class VideoToAudio(Routed):
    """``POST /v1/audio/video-to-audio``: sound effects and music for a video."""

    video_id: str | None = None
    video_url: str | None = None
    sound_effect_prompt: Text200 | None = None
    bgm_prompt: Text200 | None = None
    asmr_mode: bool | None = None

    def checks(self) -> list[Problem]:
        # "Either the video_id parameter or the video_url parameter, cannot be empty or have a
        # value at the same time."
        return one_of(
            self,
            ("video_id", "video_url"),
            "video-to-audio needs exactly one of video_id or video_url",
        )


class TextToSpeech(RequestModel):
    """``POST /v1/audio/tts``. Its page documents no callback or external id; it answers with
    the result in the create answer."""

    text: Required1000  # "maximum length ... 1000"
    voice_id: Id
    voice_language: Literal["zh", "en"] | None = None  # "Required", but with a default (zh)
    voice_speed: Annotated[float, BeforeValidator(no_bool)] | None = None
    callback_url: str | None = None
    external_task_id: str | None = None

    def advice(self) -> list[Problem]:
        # "values outside this range will be automatically rounded": not a refusal.
        if self.voice_speed is not None and not 0.8 <= self.voice_speed <= 2.0:
            return [("voice_speed", f"{self.voice_speed:g} is outside 0.8-2.0; Kling rounds it")]
        return []


class CustomVoice(Routed):
    """``POST /v1/general/custom-voices``: a voice from an audio file or an earlier video."""

    voice_name: Required20  # "maximum length ... 20"
    voice_url: str | None = None
    video_id: str | None = None

    def advice(self) -> list[Problem]:
        out = super().advice()
        if exactly_one(self, "voice_url", "video_id") == 0:
            out.append(("", "give voice_url (an audio or video file) or video_id to take it from"))
        return out


class ReferImage(RequestModel):
    image_url: ImageInput


class ElementImages(RequestModel):
    """``element_image_list``: a frontal image and 1 to 3 more angles."""

    frontal_image: ImageInput
    refer_images: list[ReferImage] | None = None


class ReferVideo(RequestModel):
    video_url: Id


class ElementVideos(RequestModel):
    """``element_video_list``: at most one reference video."""

    refer_videos: list[ReferVideo]


class CustomElement(Routed):
    """``POST /v1/general/advanced-custom-elements``: a reusable character or object."""

    image_fields = (
        "element_image_list.frontal_image",
        "element_image_list.refer_images[].image_url",
    )

    element_name: Required20  # "Must not exceed 20"
    element_description: Required100  # "... 100 characters"
    reference_type: Literal["video_refer", "image_refer"]
    element_image_list: ElementImages | None = None
    element_video_list: ElementVideos | None = None
    element_voice_id: str | None = None
    tag_list: list[Any] | None = None

    def checks(self) -> list[Problem]:
        out: list[Problem] = []
        images, videos = self.element_image_list, self.element_video_list
        if self.reference_type == "image_refer":
            # "When reference_type is image_refer, this parameter is required."
            if images is None:
                out.append(
                    ("element_image_list", 'is required when reference_type is "image_refer"')
                )
            elif not 1 <= len(images.refer_images or []) <= 3:
                n = len(images.refer_images or [])
                out.append(
                    ("element_image_list.refer_images", f"needs 1 to 3 more angles, got {n}")
                )
        if self.reference_type == "video_refer":
            # "Required when referencing videos"; "At most 1 video"
            if videos is None:
                out.append(
                    ("element_video_list", 'is required when reference_type is "video_refer"')
                )
            elif len(videos.refer_videos) != 1:
                n = len(videos.refer_videos)
                out.append(("element_video_list.refer_videos", f"takes exactly 1 video, got {n}"))
        return out
