"""Request models: what each Kling create endpoint accepts, one pydantic model per body.

This module gathers them; they live by family:

* :mod:`~klingwatch.kling.request_base`: the base model, field rules, routing fields, errors;
* :mod:`~klingwatch.kling.requests_video`: legacy video (text2video, image2video, avatar, ...);
* :mod:`~klingwatch.kling.requests_image`: images (generations, omni-image, expand, try-on, ...);
* :mod:`~klingwatch.kling.requests_general`: audio, voices and elements;
* :mod:`~klingwatch.kling.requests_tasks`: the new standard and each model's page rules.

Every model refuses only what Kling's pages say Kling refuses and lets everything else through
(``extra="allow"``); what a page merely calls unsupported is a warning (``advice()``). The client
and the sandbox validate with these same models, so a rule is fixed once for both.
docs/validation.md lists every refusal and the page that states it.
"""

from __future__ import annotations

from klingwatch.kling.inputs import IMAGE_MAX_BYTES, TASKS_IMAGE_MAX_BYTES, check_image
from klingwatch.kling.request_base import (
    LEGACY_PROMPT_MAX,
    Problem,
    RequestModel,
    Routed,
    Watermark,
    problems_of,
)
from klingwatch.kling.requests_general import (
    CustomElement,
    CustomVoice,
    TextToAudio,
    TextToSpeech,
    VideoToAudio,
)
from klingwatch.kling.requests_image import (
    IMAGE_MODELS,
    AiMultiShot,
    ImageExpand,
    ImageGeneration,
    MultiImage2Image,
    OmniImage,
    VirtualTryOn,
)
from klingwatch.kling.requests_tasks import (
    TASKS_SPECS,
    ContentPart,
    TasksOptions,
    TasksRequest,
    TasksSettings,
    TasksSpec,
)
from klingwatch.kling.requests_video import (
    IMAGE2VIDEO_MODELS,
    TEXT2VIDEO_MODELS,
    AdvancedLipSync,
    Avatar,
    CameraConfig,
    CameraControl,
    DynamicMask,
    Effects,
    EffectsInput,
    FaceChoice,
    Image2Video,
    ImageItem,
    LipSync,
    LipSyncInput,
    MultiElements,
    MultiImage2Video,
    Text2Video,
    VideoExtend,
)

__all__ = [
    "IMAGE2VIDEO_MODELS",
    "IMAGE_MAX_BYTES",
    "IMAGE_MODELS",
    "LEGACY_PROMPT_MAX",
    "TASKS_IMAGE_MAX_BYTES",
    "TASKS_SPECS",
    "TEXT2VIDEO_MODELS",
    "AdvancedLipSync",
    "AiMultiShot",
    "Avatar",
    "CameraConfig",
    "CameraControl",
    "ContentPart",
    "CustomElement",
    "CustomVoice",
    "DynamicMask",
    "Effects",
    "EffectsInput",
    "FaceChoice",
    "Image2Video",
    "ImageExpand",
    "ImageGeneration",
    "ImageItem",
    "LipSync",
    "LipSyncInput",
    "MultiElements",
    "MultiImage2Image",
    "MultiImage2Video",
    "OmniImage",
    "Problem",
    "RequestModel",
    "Routed",
    "TasksOptions",
    "TasksRequest",
    "TasksSettings",
    "TasksSpec",
    "Text2Video",
    "TextToAudio",
    "TextToSpeech",
    "VideoExtend",
    "VideoToAudio",
    "VirtualTryOn",
    "Watermark",
    "check_image",
    "problems_of",
]
