"""The registry of every Kling endpoint that creates a task.

A :class:`Product` knows its path, its API standard, its pack family (which concurrency slots it
takes), how to validate a request before anything is sent, what the request costs in slots, what
its tasks produce, and how long they usually queue and run (the cold-start defaults the engine's
cadence learns from).

Names (used by the client, the CLI's ``--product`` and the ledger)::

    text2video  image2video  multi-image2video  video-extend  lip-sync  advanced-lip-sync
    avatar  effects  multi-elements  text-to-audio  video-to-audio  tts  custom-voices
    custom-elements  image-generation  omni-image  multi-image2image  image-expand
    ai-multi-shot  virtual-try-on
    text-to-video/<model>  image-to-video/<model>  omni-video/<model>  motion-control/<model>

API paths are accepted as aliases (``/v1/videos/text2video``, ``v1/images/generations``,
``/text-to-video/kling-3.0-turbo``, even a full URL).

Validation refuses only what Kling's own pages say Kling refuses, and warns about the rest
(:meth:`Product.check` returns the warnings; docs/validation.md lists every rule and its page).
Unknown fields pass through untouched, because Kling adds fields often. Every problem is reported
as ``(field, message)`` where the message says what to change; the request models live in
:mod:`klingwatch.kling.requests`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from klingwatch.kling import requests as rq
from klingwatch.kling.advice import model_advice, unknown_fields
from klingwatch.kling.errors import RequestValidationError, UnknownProduct
from klingwatch.kling.inputs import IMAGE_MAX_BYTES, TASKS_IMAGE_MAX_BYTES
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.request_base import Problem
from klingwatch.kling.requests import (
    LEGACY_PROMPT_MAX,
    TASKS_SPECS,
    RequestModel,
    TasksRequest,
    TasksSpec,
    problems_of,
)
from klingwatch.kling.requests_image import image_slots
from klingwatch.kling.requests_tasks import (
    TASKS_PROMPT_MAX_3_0,
    move_prompt_into_contents,
    tasks_rules,
)

__all__ = [
    "LEGACY_PROMPT_MAX",
    "PRODUCTS",
    "TASKS_PROMPT_MAX_3_0_TEXT",
    "CheckedRequest",
    "ExpectedTiming",
    "Family",
    "Product",
    "get_product",
    "has_legacy_list",
    "product_names",
]

logger = logging.getLogger(__name__)

#: The new standard's prompt limit on the 3.0 models (2500 on the others).
TASKS_PROMPT_MAX_3_0_TEXT = TASKS_PROMPT_MAX_3_0


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


# Cold-start timings from KLING_PROTOCOL.md section 5: queued 0-30 s; processing 30-120 s (std),
# 60-300 s (pro); longer for 10 s videos. The engine replaces these with what it measures.
_VIDEO_STD = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=120)
_PRO_P50, _PRO_P95 = 2.0, 2.5  # pro: 75 -> 150 s typical, 120 -> 300 s slow
_LIP_SYNC = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=45, run_p95=120)
_IMAGE = ExpectedTiming(queue_p50=5, queue_p95=30, run_p50=20, run_p95=60)

_AUDIO = ExpectedTiming(queue_p50=5, queue_p95=30, run_p50=20, run_p95=60)
# kling-updates-api.md 2025-11-03: avatar videos now take "10 minutes+" (was hours).
_AVATAR = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=600, run_p95=1800)
# kling-get-started-kling-skills.md: "element creation around 30 seconds-2 minutes".
_ELEMENT = ExpectedTiming(queue_p50=5, queue_p95=30, run_p50=60, run_p95=120)

#: The new-standard models with a page, per kind (TASKS_SPECS holds their rules).
_TASKS_PRODUCTS: dict[str, tuple[str, ...]] = {
    "text-to-video": ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo"),
    "image-to-video": ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo"),
    "omni-video": ("kling-3.0-omni", "kling-o1"),
    "motion-control": ("kling-3.0", "kling-2.6"),
}
#: Kinds whose pages take the prompt as a ``contents`` part, not a ``prompt`` field.
_CONTENTS_KINDS = ("image-to-video", "omni-video", "motion-control")

_NEW_STANDARD_NAME = re.compile(r"kling-(\d+\.\d+|o\d)(-[a-z0-9.]+)?")


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request Kling would accept: the body to send and the warnings worth showing."""

    body: dict[str, Any]
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Product:
    """One task-creating endpoint."""

    name: str
    path: str
    standard: ApiStandard
    family: Family
    request_model: type[RequestModel]
    timing: ExpectedTiming
    #: new standard only: the model in the path, and its allowed durations (empty: any)
    model: str | None = None
    durations: tuple[int, ...] = ()
    prompt_max: int = LEGACY_PROMPT_MAX
    #: the model Kling uses when a legacy request names none
    default_model: str | None = None
    #: legacy ``model_name`` values klingwatch knows (others get a "did you mean" warning)
    known_models: tuple[str, ...] = ()
    #: what a task produces: ``video``, ``image``, ``audio``, ``voice``, ``element``
    outputs: tuple[str, ...] = ("video",)
    #: the vendor page (in aself101/kling-api docs/api/) that documents this endpoint
    page: str | None = None
    #: new standard: the model's page rules (``None`` for a model with no page yet)
    spec: TasksSpec | None = None

    @property
    def query_path(self) -> str:
        """Where single tasks of this product are read (legacy) or ``/tasks`` (new standard)."""
        return self.path if self.standard is ApiStandard.LEGACY else "/tasks"

    @property
    def kind(self) -> str:
        """``text2video``, ..., or the new standard's ``text-to-video``, ``omni-video``, ..."""
        return self.name.partition("/")[0]

    @property
    def image_max_bytes(self) -> int:
        """The largest image input this endpoint takes (10 MB legacy, 50 MB new standard)."""
        return TASKS_IMAGE_MAX_BYTES if self.standard is ApiStandard.TASKS else IMAGE_MAX_BYTES

    def validate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request; return the body to send (:meth:`body` adds the routing fields).

        Raises :class:`RequestValidationError` listing every problem with what to fix; see
        :meth:`check` for what is normalized and for the warnings.
        """
        return self.check(request).body

    def check(self, request: Mapping[str, Any]) -> CheckedRequest:
        """Check a request: the body to send and the warnings (typos, unsupported combinations).

        The body is the request as written, normalized where Kling is particular (a legacy
        ``duration`` of ``5`` becomes ``"5"``; new-standard ``duration``/``resolution``/... given
        flat move into ``settings``, ``callback_url``/``external_task_id`` into ``options``, and a
        flat ``prompt`` of an image-to-video/omni/motion request into ``contents``; an empty
        ``callback_url`` or ``external_task_id`` is dropped). Unknown fields pass through
        unchanged. Checking the result again gives the same body.

        Raises :class:`RequestValidationError` listing every problem with what to fix.
        """
        if not isinstance(request, Mapping):
            raise RequestValidationError(
                self.name, [("", f"a request must be a JSON object, got {type(request).__name__}")]
            )
        body: Any = {k: v for k, v in request.items() if k != "product"}
        if self.standard is ApiStandard.TASKS and self.kind in _CONTENTS_KINDS:
            try:
                body = move_prompt_into_contents(body)
            except ValueError as exc:
                raise RequestValidationError(self.name, [("prompt", str(exc))]) from None
        try:
            model = self.request_model.model_validate(body)
        except ValidationError as exc:
            raise RequestValidationError(self.name, problems_of(exc)) from None
        if isinstance(model, TasksRequest):
            problems, warnings = tasks_rules(self.kind, self.model or "", self.spec, model)
            warnings += self._tasks_model_advice()
        else:
            problems, warnings = model.checks(), model.advice() + self._legacy_model_advice(model)
        if problems:
            raise RequestValidationError(self.name, problems)
        out = model.model_dump(mode="json", exclude_unset=True)
        warnings = unknown_fields(body, self.request_model) + warnings
        return CheckedRequest(out, warnings)

    def _legacy_model_advice(self, model: RequestModel) -> list[Problem]:
        name = getattr(model, "model_name", None)
        if not isinstance(name, str) or not name:
            return []
        if self.family is Family.VIDEO and _NEW_STANDARD_NAME.fullmatch(name):
            kind = "image-to-video" if self.name == "image2video" else "text-to-video"
            return [
                (
                    "model_name",
                    f"{name!r} is a new-standard model; Kling takes it as product "
                    f"'{kind}/{name}' (legacy names look like 'kling-v2-6')",
                )
            ]
        return model_advice(name, self.known_models, self.name)

    def _tasks_model_advice(self) -> list[Problem]:
        if self.spec is not None or self.model is None:
            return []
        return model_advice(self.model, _TASKS_PRODUCTS.get(self.kind, ()), self.kind, field="")

    def body(
        self,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """The validated body to POST, routing fields placed where this standard wants them.

        Legacy products take ``external_task_id``/``callback_url`` at the top level; the new
        standard takes them in ``options``. Arguments given here win over the request's own.
        """
        checked = self.check(request)
        for where, message in checked.warnings:
            logger.info("%s request: %s: %s", self.name, where or "(request)", message)
        body = checked.body
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
        """Concurrency slots a task of this request holds (an image task takes ``n``)."""
        # kling-get-started-concurrency-rules.md: "Image generation tasks: The concurrency used
        # equals the n value"; video and try-on tasks take one slot.
        if self.family is Family.IMAGE:
            return image_slots(dict(request))
        return 1

    def expected_timing(self, request: Mapping[str, Any] | None = None) -> ExpectedTiming:
        """Cold-start timing for this request: pro, 1080p/4k and longer videos take longer."""
        t = self.timing
        if request is None or self.family is not Family.VIDEO:
            return t
        p50 = p95 = 1.0
        if _setting(request, "mode") == "pro" or _setting(request, "resolution") in (
            "1080p",
            "4k",
        ):
            p50, p95 = _PRO_P50, _PRO_P95
        duration = _setting(request, "duration")
        if isinstance(duration, Mapping):  # effects: input.duration
            duration = None
        duration = duration if duration is not None else _setting(request, "input", "duration")
        try:
            seconds = float(duration) if duration is not None else 5.0
        except (TypeError, ValueError):
            seconds = 5.0
        if not math.isfinite(seconds):
            seconds = 5.0
        if seconds > 5:
            # A 10 s video runs ~1.6x a 5 s one, not 2x: part of the run is fixed overhead.
            longer = seconds / 5 * 0.8
            p50, p95 = p50 * longer, p95 * longer
        return ExpectedTiming(t.queue_p50, t.queue_p95, t.run_p50 * p50, t.run_p95 * p95)

    def model_of(self, request: Mapping[str, Any]) -> str | None:
        """The model a request runs on (the path's model, ``model_name``, or Kling's default)."""
        if self.model is not None:
            return self.model
        name = request.get("model_name")
        return str(name) if name else self.default_model

    def describe(self) -> str:
        """One line for listings: name, path, family and what the request must contain."""
        required = list(self.request_model.needs) or [
            name for name, field in self.request_model.model_fields.items() if field.is_required()
        ]
        required = {
            "text-to-video": ["prompt"],
            "image-to-video": ["contents[first_frame]"],
            "omni-video": ["contents"],
            "motion-control": ["contents[image, video]", "settings.character_orientation"],
        }.get(self.kind, required)
        extra = f", duration {_allowed(self.durations)} s" if self.durations else ""
        needs = ", ".join(required) or "nothing"
        return f"{self.name}: POST {self.path} ({self.family} pack{extra}); needs {needs}"


def _allowed(durations: tuple[int, ...]) -> str:
    if len(durations) > 2 and durations == tuple(range(durations[0], durations[-1] + 1)):
        return f"{durations[0]}-{durations[-1]}"
    return " or ".join(map(str, durations))


def _setting(request: Mapping[str, Any], key: str, sub: str | None = None) -> Any:
    """A value given flat or under ``settings`` (or, with ``sub``, ``request[key][sub]``)."""
    if sub is not None:
        inner = request.get(key)
        return inner.get(sub) if isinstance(inner, Mapping) else None
    if key in request:
        return request[key]
    settings = request.get("settings")
    return settings.get(key) if isinstance(settings, Mapping) else None


def _legacy(
    name: str,
    path: str,
    model: type[RequestModel],
    page: str | None,
    *,
    family: Family = Family.VIDEO,
    timing: ExpectedTiming = _VIDEO_STD,
    default_model: str | None = None,
    known_models: tuple[str, ...] = (),
    outputs: tuple[str, ...] | None = None,
) -> Product:
    if outputs is None:
        outputs = ("image",) if family is not Family.VIDEO else ("video",)
    return Product(
        name=name,
        path=path,
        standard=ApiStandard.LEGACY,
        family=family,
        request_model=model,
        timing=timing,
        default_model=default_model,
        known_models=known_models,
        outputs=outputs,
        page=page,
    )


def _tasks_product(kind: str, model: str) -> Product:
    spec = TASKS_SPECS.get(f"{kind}/{model}")
    return Product(
        name=f"{kind}/{model}",
        path=f"/{kind}/{model}",
        standard=ApiStandard.TASKS,
        family=Family.VIDEO,
        request_model=TasksRequest,
        timing=_VIDEO_STD,
        model=model,
        # A model this version does not know gets no duration rule: Kling ships models often.
        durations=spec.durations if spec else (),
        prompt_max=spec.prompt_max if spec else TASKS_PROMPT_MAX_3_0,
        page=spec.page if spec else None,
        spec=spec,
    )


_IMG = Family.IMAGE
PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        # KLING_PROTOCOL.md section 3 (no page in the vendor snapshot for these six)
        _legacy(
            "text2video",
            "/v1/videos/text2video",
            rq.Text2Video,
            None,
            default_model="kling-v1",
            known_models=rq.TEXT2VIDEO_MODELS,
        ),
        _legacy(
            "image2video",
            "/v1/videos/image2video",
            rq.Image2Video,
            None,
            default_model="kling-v1",
            known_models=rq.IMAGE2VIDEO_MODELS,
        ),
        _legacy(
            "multi-image2video",
            "/v1/videos/multi-image2video",
            rq.MultiImage2Video,
            None,
            default_model="kling-v1-6",
            known_models=("kling-v1-6",),
        ),
        _legacy("video-extend", "/v1/videos/video-extend", rq.VideoExtend, None),
        _legacy("lip-sync", "/v1/videos/lip-sync", rq.LipSync, None, timing=_LIP_SYNC),
        _legacy(
            "advanced-lip-sync",
            "/v1/videos/advanced-lip-sync",
            rq.AdvancedLipSync,
            "kling-lip-sync.md",
            timing=_LIP_SYNC,
        ),
        _legacy(
            "avatar", "/v1/videos/avatar/image2video", rq.Avatar, "kling-avatar.md", timing=_AVATAR
        ),
        _legacy("effects", "/v1/videos/effects", rq.Effects, "kling-effects-video-effects.md"),
        _legacy(
            "multi-elements",
            "/v1/videos/multi-elements",
            rq.MultiElements,
            "kling-multi-element-video-editing.md",
        ),
        # Audio, voices and elements are billed from the video pack (kling-pricing-video.md).
        _legacy(
            "text-to-audio",
            "/v1/audio/text-to-audio",
            rq.TextToAudio,
            "kling-text-to-audio.md",
            timing=_AUDIO,
            outputs=("audio",),
        ),
        _legacy(
            "video-to-audio",
            "/v1/audio/video-to-audio",
            rq.VideoToAudio,
            "kling-video-to-audio.md",
            timing=_AUDIO,
            outputs=("video", "audio"),
        ),
        _legacy(
            "tts",
            "/v1/audio/tts",
            rq.TextToSpeech,
            "kling-text-to-speech.md",
            timing=_AUDIO,
            outputs=("speech",),
        ),
        _legacy(
            "custom-voices",
            "/v1/general/custom-voices",
            rq.CustomVoice,
            "kling-2.6-voice-mgt.md",
            timing=_ELEMENT,
            outputs=("voice",),
        ),
        _legacy(
            "custom-elements",
            "/v1/general/advanced-custom-elements",
            rq.CustomElement,
            "kling-o1-element-mgt.md",
            timing=_ELEMENT,
            outputs=("element",),
        ),
        _legacy(
            "image-generation",
            "/v1/images/generations",
            rq.ImageGeneration,
            "kling-image-2.1-generation.md",
            family=_IMG,
            timing=_IMAGE,
            default_model="kling-v1",
            known_models=rq.IMAGE_MODELS,
        ),
        _legacy(
            "omni-image",
            "/v1/images/omni-image",
            rq.OmniImage,
            "kling-image-o1-generation.md",
            family=_IMG,
            timing=_IMAGE,
            default_model="kling-image-o1",
            known_models=("kling-image-o1", "kling-v3-omni"),
        ),
        _legacy(
            "multi-image2image",
            "/v1/images/multi-image2image",
            rq.MultiImage2Image,
            "kling-image-2.1-multi-image-to-image.md",
            family=_IMG,
            timing=_IMAGE,
            default_model="kling-v2-1",
            known_models=("kling-v2-1",),
        ),
        _legacy(
            "image-expand",
            "/v1/images/editing/expand",
            rq.ImageExpand,
            "kling-image-common-outpainting.md",
            family=_IMG,
            timing=_IMAGE,
        ),
        _legacy(
            "ai-multi-shot",
            "/v1/general/ai-multi-shot",
            rq.AiMultiShot,
            "kling-image-common-subject-completion.md",
            family=_IMG,
            timing=_IMAGE,
        ),
        # The model names are the ones Kuaishou's ComfyUI-KLingAI-API nodes offer.
        _legacy(
            "virtual-try-on",
            "/v1/images/kolors-virtual-try-on",
            rq.VirtualTryOn,
            None,
            family=Family.TRY_ON,
            timing=_IMAGE,
            default_model="kolors-virtual-try-on-v1",
            known_models=("kolors-virtual-try-on-v1", "kolors-virtual-try-on-v1-5"),
        ),
        *(_tasks_product(kind, m) for kind, models in _TASKS_PRODUCTS.items() for m in models),
    )
}

_ALIASES: dict[str, str] = {p.path.strip("/"): p.name for p in PRODUCTS.values()}
_URL_PREFIX = re.compile(r"^https?://[^/]+", re.IGNORECASE)


def product_names() -> list[str]:
    """Every registered product name."""
    return list(PRODUCTS)


def get_product(name: str) -> Product:
    """Look a product up by name or API path (``/v1/videos/text2video``, a full URL, ...).

    A new-standard path with a model not in the registry yet (``text-to-video/kling-4.0``) is
    accepted with the generic new-standard rules, since Kling ships new models often. Anything
    else raises :class:`UnknownProduct` (a ``KeyError``) listing the known names.
    """
    if not isinstance(name, str):
        raise UnknownProduct(name, product_names())
    key = _URL_PREFIX.sub("", name.strip()).strip("/").lower()
    if key in PRODUCTS:
        return PRODUCTS[key]
    if key in _ALIASES:
        return PRODUCTS[_ALIASES[key]]
    kind, _, model = key.partition("/")
    if kind in _TASKS_PRODUCTS and re.fullmatch(r"kling-[a-z0-9][a-z0-9.\-]*", model):
        logger.debug("product %s: model %s not in the registry; generic rules", kind, model)
        return _tasks_product(kind, model)
    raise UnknownProduct(name, product_names())


def has_legacy_list(product: str) -> bool:
    """Whether ``product`` is a known legacy product, whose tasks a list page reads 500 at a
    time (new-standard products are listed with ``POST /tasks`` only)."""
    try:
        return get_product(product).standard is ApiStandard.LEGACY
    except KeyError:
        return False
