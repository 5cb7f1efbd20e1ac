"""Image request models: every image endpoint is legacy-style (``/v1/images/...``).

Pages: kling-image-2.1-generation.md (≡ kling-image-omni-3.0-generation.md),
kling-image-o1-generation.md (≡ kling-image-omni-3.0-image-omni.md),
kling-image-2.1-multi-image-to-image.md, kling-image-common-outpainting.md,
kling-image-common-subject-completion.md. Virtual try-on has no page in the snapshot
(KLING_PROTOCOL.md section 3). An image task holds ``n`` concurrency slots
(kling-get-started-concurrency-rules.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from klingwatch.kling.request_base import (
    ImageInput,
    LegacyPrompt,
    Problem,
    RequestModel,
    RequiredPrompt,
    Routed,
    Unit,
    between,
    choices,
    no_bool,
)

__all__ = [
    "IMAGE_MODELS",
    "AiMultiShot",
    "ElementRef",
    "ImageExpand",
    "ImageGeneration",
    "MultiImage2Image",
    "OmniImage",
    "SubjectImage",
    "VirtualTryOn",
    "image_slots",
]

#: Image model names klingwatch knows, for warnings only: kling-image-2.1-generation.md (kling-v2-1,
#: kling-v3), kling-image-o1-generation.md's example (kling-v3-omni to /v1/images/generations),
#: older names from KLING_PROTOCOL.md section 3 and kling-updates-api.md (kling-v2-new).
IMAGE_MODELS = (
    "kling-v1",
    "kling-v1-5",
    "kling-v2",
    "kling-v2-new",
    "kling-v2-1",
    "kling-v3",
    "kling-v3-omni",
)

#: kling-image-2.1-generation.md, ``aspect_ratio`` enum.
IMAGE_ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
#: "n: Value range: [1, 9]" on every image page.
Count = Annotated[int, BeforeValidator(no_bool), AfterValidator(between(1, 9))]
Ratio = Annotated[float, BeforeValidator(no_bool), AfterValidator(between(0, 2))]
#: "The sum of reference elements and reference images must not exceed 10"
_MAX_REFERENCES = 10
#: "series_amount" enum 2-9 or "auto" (kling-image-o1-generation.md)
_SERIES = tuple(range(2, 10))
#: An ``auto`` series "will occupy a concurrency amount corresponding to the actual generated
#: quantity" (kling-updates-api.md 2026-04-27): reserve the most it can be.
_AUTO_SERIES_SLOTS = 9


def image_slots(request: dict[str, Any]) -> int:
    """Slots an image request holds: ``n``, or the series size for ``result_type: series``."""
    if request.get("result_type") == "series":
        amount = request.get("series_amount", 4)  # the page's default
        return (
            amount
            if isinstance(amount, int) and not isinstance(amount, bool)
            else (_AUTO_SERIES_SLOTS)
        )
    n = request.get("n", 1)
    if isinstance(n, bool):
        return 1
    try:
        return max(1, int(n or 1))
    except (TypeError, ValueError, OverflowError):
        return 1


def _aspect(value: str | None, allowed: tuple[str, ...], field: str) -> list[Problem]:
    if value is not None and value not in allowed:
        return [(field, f"must be {choices(allowed)}, got {value!r}")]
    return []


class ElementRef(RequestModel):
    """``element_list[]``: ``{"element_id": long}``."""

    element_id: int | str


class ImageItem(RequestModel):
    """``image_list[]``: ``{"image": URL or Base64}``."""

    image: ImageInput


class _Series(Routed):
    """What the omni image models take (kling-image-o1-generation.md)."""

    image_list: list[ImageItem] | None = None
    element_list: list[ElementRef] | None = None
    result_type: Literal["single", "series"] | None = None
    series_amount: int | str | None = None
    n: Count = 1

    def checks(self) -> list[Problem]:
        out: list[Problem] = []
        refs = len(self.image_list or []) + len(self.element_list or [])
        if refs > _MAX_REFERENCES:
            out.append(
                (
                    "",
                    f"{refs} reference images and elements; Kling takes at most "
                    f"{_MAX_REFERENCES} together",
                )
            )
        amount = self.series_amount
        if amount is not None and amount != "auto" and amount not in _SERIES:
            out.append(("series_amount", f'must be 2 to 9 or "auto", got {amount!r}'))
        return out


class ImageGeneration(_Series):
    """``POST /v1/images/generations``; ``n`` images take ``n`` concurrency slots."""

    image_fields = ("image", "image_list[].image")

    prompt: RequiredPrompt
    negative_prompt: LegacyPrompt | None = None
    model_name: str | None = None
    image: ImageInput | None = None
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: Unit | None = None
    human_fidelity: Unit | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None

    def checks(self) -> list[Problem]:
        out = super().checks()
        if self.image_reference is not None and not self.image:
            # "image: Required when image_reference parameter is not empty"
            out.append(("image", "is required when image_reference is set"))
        # 4k and "auto" belong to the omni models, which kling-image-o1-generation.md's own
        # example sends to this endpoint ("model_name": "kling-v3-omni", "aspect_ratio": "auto").
        omni = "omni" in (self.model_name or "")
        resolutions = ("1k", "2k", "4k") if omni else ("1k", "2k")
        if self.resolution is not None and self.resolution not in resolutions:
            out.append(("resolution", f"must be {choices(resolutions)}, got {self.resolution!r}"))
        return out + _aspect(self.aspect_ratio, (*IMAGE_ASPECTS, "auto"), "aspect_ratio")

    def advice(self) -> list[Problem]:
        out = super().advice()
        if self.image and self.negative_prompt:
            # "In the Image-to-Image scenario ... negative prompts are not supported."
            out.append(("negative_prompt", "Kling ignores a negative prompt with an image"))
        if self.aspect_ratio == "auto" and "omni" not in (self.model_name or ""):
            out.append(("aspect_ratio", '"auto" is documented for the omni image models only'))
        return out


class OmniImage(_Series):
    """``POST /v1/images/omni-image`` (kling-image-o1-generation.md)."""

    image_fields = ("image_list[].image",)

    prompt: RequiredPrompt
    model_name: str | None = None
    resolution: Literal["1k", "2k", "4k"] | None = None

    aspect_ratio: str | None = None

    def checks(self) -> list[Problem]:
        return super().checks() + _aspect(
            self.aspect_ratio, (*IMAGE_ASPECTS, "auto"), "aspect_ratio"
        )


class SubjectImage(RequestModel):
    """``subject_image_list[]``: ``{"subject_image": URL or Base64}``."""

    subject_image: ImageInput


class MultiImage2Image(Routed):
    """``POST /v1/images/multi-image2image`` (kling-image-2.1-multi-image-to-image.md)."""

    image_fields = ("subject_image_list[].subject_image", "scene_image", "style_image")

    model_name: str | None = None
    prompt: LegacyPrompt | None = None
    negative_prompt: LegacyPrompt | None = None  # sent by the page's own example
    subject_image_list: list[SubjectImage]
    scene_image: ImageInput | None = None
    style_image: ImageInput | None = None
    n: Count = 1
    aspect_ratio: str | None = None

    def checks(self) -> list[Problem]:
        out = _aspect(self.aspect_ratio, IMAGE_ASPECTS, "aspect_ratio")
        n = len(self.subject_image_list)
        if not 1 <= n <= 4:  # "Support up to 4 images, at least 1 image"
            out.append(("subject_image_list", f"needs 1 to 4 subject images, got {n}"))
        return out


class ImageExpand(Routed):
    """``POST /v1/images/editing/expand`` (kling-image-common-outpainting.md)."""

    image_fields = ("image",)

    image: ImageInput
    up_expansion_ratio: Ratio
    down_expansion_ratio: Ratio
    left_expansion_ratio: Ratio
    right_expansion_ratio: Ratio
    prompt: LegacyPrompt | None = None
    n: Count = 1

    def checks(self) -> list[Problem]:
        # "The total area of the new image must not exceed 3 times that of the original image"
        tall = 1 + self.up_expansion_ratio + self.down_expansion_ratio
        wide = 1 + self.left_expansion_ratio + self.right_expansion_ratio
        if tall * wide > 3 + 1e-9:
            return [
                (
                    "",
                    f"the expanded image would be {tall * wide:.2f} times the original's area; "
                    "Kling allows at most 3: lower the expansion ratios",
                )
            ]
        return []


class VirtualTryOn(Routed):
    """``POST /v1/images/kolors-virtual-try-on`` (KLING_PROTOCOL.md section 3)."""

    image_fields = ("human_image", "cloth_image")

    model_name: str | None = None
    human_image: ImageInput
    cloth_image: ImageInput


class AiMultiShot(Routed):
    """``POST /v1/general/ai-multi-shot`` (kling-image-common-subject-completion.md): three
    more angles of an element from its front view."""

    image_fields = ("element_frontal_image",)

    element_frontal_image: ImageInput
