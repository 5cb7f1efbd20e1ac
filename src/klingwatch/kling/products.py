"""The registry of every Kling endpoint that creates a task.

A :class:`Product` knows its path, its API standard, its pack family (which concurrency slots it
takes), how to validate a request before anything is sent, what the request costs in slots, and how
long its tasks usually queue and run (the cold-start defaults the engine's cadence learns from).

Names (used by the client, the CLI's ``--product`` and the ledger)::

    text2video  image2video  multi-image2video  video-extend  lip-sync  effects
    image-generation  virtual-try-on
    text-to-video/<model>  image-to-video/<model>  omni-video/<model>  motion-control/<model>

API paths are accepted as aliases (``/v1/videos/text2video``, ``v1/images/generations``,
``/text-to-video/kling-3.0-turbo``, even a full URL).

Validation is deliberately strict about what Kling refuses (1200/1201 after a round trip) and
deliberately loose about what it does not know: unknown extra fields pass through untouched, because
Kling adds fields often. Every problem is reported as ``(field, message)`` where the message says
what to change; the request models live in :mod:`klingwatch.kling.requests`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from klingwatch.kling.errors import RequestValidationError, UnknownProduct
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.requests import (
    LEGACY_PROMPT_MAX,
    CameraConfig,
    CameraControl,
    ContentPart,
    DynamicMask,
    Effects,
    EffectsInput,
    Image2Video,
    ImageGeneration,
    ImageItem,
    LipSync,
    LipSyncInput,
    MultiImage2Video,
    RequestModel,
    TasksRequest,
    TasksSettings,
    Text2Video,
    VideoExtend,
    VirtualTryOn,
    problems_of,
)

__all__ = [
    "LEGACY_PROMPT_MAX",
    "PRODUCTS",
    "TASKS_PROMPT_MAX_3_0_TEXT",
    "CameraConfig",
    "CameraControl",
    "ContentPart",
    "DynamicMask",
    "Effects",
    "EffectsInput",
    "ExpectedTiming",
    "Family",
    "Image2Video",
    "ImageGeneration",
    "ImageItem",
    "LipSync",
    "LipSyncInput",
    "MultiImage2Video",
    "Product",
    "RequestModel",
    "TasksRequest",
    "TasksSettings",
    "Text2Video",
    "VideoExtend",
    "VirtualTryOn",
    "get_product",
    "product_names",
]

logger = logging.getLogger(__name__)

#: The new standard's prompt limit on 3.0 text-to-video (2500 everywhere else).
TASKS_PROMPT_MAX_3_0_TEXT = 3072


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
_FRAME_PARTS = ("first_frame", "last_frame", "image")


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

    @property
    def query_path(self) -> str:
        """Where single tasks of this product are read (legacy) or ``/tasks`` (new standard)."""
        return self.path if self.standard is ApiStandard.LEGACY else "/tasks"

    def validate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Check a request; return the body to send (:meth:`body` adds the routing fields).

        The body is the request as written, normalized where Kling is particular (a legacy
        ``duration`` of ``5`` becomes ``"5"``; new-standard ``duration``/``resolution``/... given
        flat move into ``settings``; ``callback_url``/``external_task_id`` into ``options``).
        Unknown fields pass through unchanged. Validating the result again gives the same body.

        Raises :class:`RequestValidationError` listing every problem with what to fix.
        """
        if not isinstance(request, Mapping):
            raise RequestValidationError(
                self.name, [("", f"a request must be a JSON object, got {type(request).__name__}")]
            )
        body = {k: v for k, v in request.items() if k != "product"}
        try:
            model = self.request_model.model_validate(body)
        except ValidationError as exc:
            raise RequestValidationError(self.name, problems_of(exc)) from None
        out = model.model_dump(mode="json", exclude_unset=True)
        problems = (
            self._check_tasks(out)
            if self.standard is ApiStandard.TASKS
            else self._check_legacy(out)
        )
        if problems:
            raise RequestValidationError(self.name, problems)
        return out

    def _check_legacy(self, out: dict[str, Any]) -> list[tuple[str, str]]:
        model = out.get("model_name")
        # Only video models moved to the new standard; images stay on /v1/images.
        if self.family is not Family.VIDEO:
            return []
        if isinstance(model, str) and re.fullmatch(r"kling-(\d+\.\d+|o\d)(-[a-z0-9.]+)?", model):
            kind = "image-to-video" if self.name == "image2video" else "text-to-video"
            return [
                (
                    "model_name",
                    f"{model!r} is a new-standard model; use product '{kind}/{model}' "
                    "(legacy names look like 'kling-v2-6')",
                )
            ]
        return []

    def _check_tasks(self, out: dict[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        prompt = out.get("prompt")
        parts = [p for p in out.get("contents") or [] if isinstance(p, dict)]
        texts: list[tuple[str, str]] = [("prompt", prompt)] if isinstance(prompt, str) else []
        for i, part in enumerate(out.get("contents") or []):
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and part.get("type") == "prompt":
                texts.append((f"contents.{i}.text", text))
        for field, text in texts:
            if len(text) > self.prompt_max:
                problems.append(
                    (
                        field,
                        f"is {len(text)} characters; {self.name} accepts at most "
                        f"{self.prompt_max}: shorten it",
                    )
                )
        has_prompt = any(t.strip() for _, t in texts)
        kind = self.name.partition("/")[0]
        if kind == "text-to-video" and not has_prompt:
            problems.append(
                ("prompt", "is required for text-to-video: describe the video to generate")
            )
        if kind == "image-to-video" and not any(p.get("type") in _FRAME_PARTS for p in parts):
            problems.append(
                (
                    "contents",
                    'image-to-video needs a start image: add {"type": "first_frame", "url": ...}',
                )
            )
        duration = (out.get("settings") or {}).get("duration")
        if isinstance(duration, int) and self.durations and duration not in self.durations:
            problems.append(
                (
                    "settings.duration",
                    f"{duration} s is not offered by {self.model}; use {_allowed(self.durations)}",
                )
            )
        return problems

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
            n = request.get("n", 1)
            if isinstance(n, bool):
                return 1
            try:
                return max(1, int(n or 1))
            except (TypeError, ValueError, OverflowError):
                return 1
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
        if self.name.startswith("text-to-video/"):
            required = ["prompt"]
        elif self.name.startswith("image-to-video/"):
            required = ["contents[first_frame]"]
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
    family: Family,
    model: type[RequestModel],
    timing: ExpectedTiming,
    default_model: str | None,
) -> Product:
    return Product(
        name=name,
        path=path,
        standard=ApiStandard.LEGACY,
        family=family,
        request_model=model,
        timing=timing,
        default_model=default_model,
    )


def _tasks_product(kind: str, model: str) -> Product:
    prompt_max = (
        TASKS_PROMPT_MAX_3_0_TEXT
        if kind == "text-to-video" and model.startswith("kling-3.0")
        else LEGACY_PROMPT_MAX
    )
    return Product(
        name=f"{kind}/{model}",
        path=f"/{kind}/{model}",
        standard=ApiStandard.TASKS,
        family=Family.VIDEO,
        request_model=TasksRequest,
        timing=_VIDEO_STD,
        model=model,
        # A model this version does not know gets no duration rule: Kling ships models often.
        durations=_DURATIONS.get(model, ()),
        prompt_max=prompt_max,
    )


PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        _legacy(
            "text2video", "/v1/videos/text2video", Family.VIDEO, Text2Video, _VIDEO_STD, "kling-v1"
        ),
        _legacy(
            "image2video",
            "/v1/videos/image2video",
            Family.VIDEO,
            Image2Video,
            _VIDEO_STD,
            "kling-v1",
        ),
        _legacy(
            "multi-image2video",
            "/v1/videos/multi-image2video",
            Family.VIDEO,
            MultiImage2Video,
            _VIDEO_STD,
            "kling-v1-6",
        ),
        _legacy(
            "video-extend", "/v1/videos/video-extend", Family.VIDEO, VideoExtend, _VIDEO_STD, None
        ),
        _legacy("lip-sync", "/v1/videos/lip-sync", Family.VIDEO, LipSync, _LIP_SYNC, None),
        _legacy("effects", "/v1/videos/effects", Family.VIDEO, Effects, _VIDEO_STD, None),
        _legacy(
            "image-generation",
            "/v1/images/generations",
            Family.IMAGE,
            ImageGeneration,
            _IMAGE,
            "kling-v1",
        ),
        _legacy(
            "virtual-try-on",
            "/v1/images/kolors-virtual-try-on",
            Family.TRY_ON,
            VirtualTryOn,
            _IMAGE,
            "kolors-virtual-try-on-v1",
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
