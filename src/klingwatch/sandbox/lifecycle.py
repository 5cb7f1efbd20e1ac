"""How a sandbox task lives: drawn once at creation, read off the clock ever after.

When a task is created, one seeded draw fixes how long it queues, how long it runs, whether it
ends ``succeed`` or ``failed`` (and why), what it costs and what it produces. Its status at any
moment is then a pure function of the clock (:meth:`SandboxTask.status_at`): no timers, no
background work, so ten thousand tasks cost nothing while they wait.

Durations come from the product registry's expected timing for the request (pro and longer videos
take longer) unless the config overrides them; each is a log-normal draw through p50 and p95, and
a few stragglers run 5-20 times longer, as seen live.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from klingwatch.clock import Clock
from klingwatch.kling.models import ApiStandard, TaskStatus, Video
from klingwatch.kling.products import Family, Product
from klingwatch.sandbox.config import SandboxConfig, TimingSpec

__all__ = [
    "Draw",
    "Lifecycle",
    "SandboxTask",
    "prompt_text",
    "units_for",
]

# Failure reasons seen on the live API (task_status_msg of a failed task).
_CONTENT_REASONS = (
    "Failure to pass the risk control system",
    "The content you uploaded may involve sensitive information, please modify and try again",
    "The output may contain risky content, please adjust the prompt and try again",
)
_IMAGE_REASONS = ("Image pixel is invalid", "Image aspect ratio is invalid")
_INTERNAL_REASONS = ("Task failed due to an internal error, please try again later",)

_Z95 = 1.6448536269514722  # standard normal quantile of 0.95

# Units per call of the products billed by the request (kling-pricing-video.md).
_FLAT_UNITS = {
    "lip-sync": Decimal("0.5"),
    "advanced-lip-sync": Decimal("0.5"),
    "text-to-audio": Decimal("0.25"),
    "video-to-audio": Decimal("0.25"),
    "tts": Decimal("0.05"),
    "custom-voices": Decimal("0.05"),
    "custom-elements": Decimal("0.05"),
}
#: An AI multi-shot returns three images in one item (kling-image-common-subject-completion.md).
MULTI_SHOT_IMAGES = 3


@dataclass(slots=True)
class SandboxTask:
    """One task on the sandbox account: its request and its whole (pre-drawn) timeline.

    Times are sandbox-clock Unix seconds; ``started``/``finished`` lie in the future until the
    clock passes them.
    """

    seq: int
    task_id: str
    product: Product
    request: dict[str, Any]
    external_id: str | None
    callback_url: str | None
    base_url: str
    created: float
    started: float
    finished: float
    outcome: TaskStatus
    fail_reason: str
    slot_cost: int
    units: Decimal
    #: seconds of the produced video ("5.1"), for video products
    video_duration: str | None = None
    video_id: str | None = None
    #: seconds of the produced audio ("3.0"), for audio products
    audio_duration: str | None = None
    n_images: int = 0
    parent_video: Video | None = None
    reads: int = 0
    single_reads: int = 0
    callbacks: dict[str, int] = field(default_factory=dict)

    @property
    def standard(self) -> ApiStandard:
        return self.product.standard

    @property
    def family(self) -> Family:
        return self.product.family

    @property
    def model(self) -> str | None:
        return self.product.model_of(self.request)

    @property
    def mode(self) -> str | None:
        mode = self.request.get("mode")
        if mode is None and isinstance(self.request.get("settings"), dict):
            mode = self.request["settings"].get("resolution")
        return None if mode is None else str(mode)

    def status_at(self, now: float) -> TaskStatus:
        """The task's status at sandbox time ``now``."""
        if now < self.started:
            return TaskStatus.SUBMITTED
        if now < self.finished:
            return TaskStatus.PROCESSING
        return self.outcome

    def updated_at(self, now: float) -> float:
        """When the status seen at ``now`` began."""
        if now < self.started:
            return self.created
        if now < self.finished:
            return self.started
        return self.finished

    def transitions(self) -> list[tuple[float, TaskStatus]]:
        """Every (time, status) the task passes through, in order."""
        return [
            (self.created, TaskStatus.SUBMITTED),
            (self.started, TaskStatus.PROCESSING),
            (self.finished, self.outcome),
        ]


@dataclass(frozen=True, slots=True)
class Draw:
    """What a creation fixes about a task's future (durations in sandbox-clock seconds)."""

    queue: float
    run: float
    outcome: TaskStatus
    reason: str


def prompt_text(request: dict[str, Any]) -> str:
    """Every prompt of a request, either standard (``prompt`` or ``contents[]`` prompt parts)."""
    texts = [str(request.get("prompt") or ""), str(request.get("negative_prompt") or "")]
    for part in request.get("contents") or []:
        if isinstance(part, dict) and part.get("type") == "prompt":
            texts.append(str(part.get("text") or ""))
    return "\n".join(texts)


def _settings(request: dict[str, Any]) -> dict[str, Any]:
    """The new standard's ``settings`` object ({} for legacy requests)."""
    value = request.get("settings")
    return value if isinstance(value, dict) else {}


def units_for(product: Product, request: dict[str, Any]) -> Decimal:
    """Resource-pack units a task of this request deducts when it succeeds."""
    if product.family is Family.IMAGE:
        return Decimal("0.25") * product.slot_cost(request)
    if product.family is Family.TRY_ON:
        return Decimal(1)
    if product.name in _FLAT_UNITS:
        return _FLAT_UNITS[product.name]
    settings = _settings(request)
    quality = request.get("mode") or settings.get("resolution")
    base = {"pro": Decimal("2.5"), "1080p": Decimal("2.5"), "4k": Decimal(5)}.get(
        str(quality), Decimal("1.5")
    )
    duration = request.get("duration", settings.get("duration")) or 5
    try:
        seconds = Decimal(str(duration))
    except ArithmeticError:
        seconds = Decimal(5)
    return (base * seconds / 5).normalize()


def _lognormal(rng: random.Random, p50: float, p95: float) -> float:
    if p50 <= 0:
        return rng.random() * max(p95, 0.0)
    sigma = math.log(p95 / p50) / _Z95 if p95 > p50 else 0.0
    return p50 * math.exp(rng.gauss(0.0, sigma)) if sigma else p50


class Lifecycle:
    """Seeded draws for new tasks: durations, outcome, ids."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(f"lifecycle:{self.config.seed}")
        self._ids: set[str] = set()

    def new_task_id(self) -> str:
        """A fresh 18-digit numeric task id (Kling's current form)."""
        while True:
            candidate = str(self._rng.randrange(700_000_000_000_000_000, 900_000_000_000_000_000))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def timing(self, product: Product, request: dict[str, Any]) -> TimingSpec:
        override = self.config.timing_for(
            product.name,
            product.model_of(request),
            str(request.get("mode")) if request.get("mode") else None,
            product.family,
        )
        return override or TimingSpec.of(product.expected_timing(request))

    def draw(self, product: Product, request: dict[str, Any]) -> Draw:
        """Queue time, run time (sandbox-clock seconds), outcome and failure reason."""
        spec = self.timing(product, request)
        rng = self._rng
        queue = _lognormal(rng, spec.queue_p50, spec.queue_p95)
        run = _lognormal(rng, spec.run_p50, spec.run_p95)
        if rng.random() < self.config.straggler_rate:
            run *= rng.uniform(5.0, 20.0)
        failed = rng.random() < self.config.failure_rate
        reason = self._reason(product, request) if failed else ""
        marker = self.config.fail_marker
        if marker and marker in prompt_text(request):
            failed, reason = True, _CONTENT_REASONS[2]
        if failed:
            # Refusals by the content check come early; other failures at any point.
            run *= rng.uniform(0.1, 1.0)
        return Draw(
            queue=self.clock.scaled(queue),
            run=max(self.clock.scaled(run), 1e-3),
            outcome=TaskStatus.FAILED if failed else TaskStatus.SUCCEED,
            reason=reason,
        )

    def _reason(self, product: Product, request: dict[str, Any]) -> str:
        has_image = any(k in request for k in ("image", "image_tail", "image_list", "human_image"))
        if product.standard is ApiStandard.TASKS:
            has_image = any(
                isinstance(p, dict) and p.get("type") != "prompt"
                for p in request.get("contents") or []
            )
        pool = _CONTENT_REASONS + _INTERNAL_REASONS + (_IMAGE_REASONS if has_image else ())
        return self._rng.choice(pool)

    def image_count(self, product: Product, slots: int) -> int:
        """How many images a task produces: ``n`` (its slots), three for an AI multi-shot."""
        if product.name == "ai-multi-shot":
            return MULTI_SHOT_IMAGES
        return slots if product.family is Family.IMAGE else 1

    def audio_duration(
        self, product: Product, request: dict[str, Any], parent: Video | None
    ) -> str:
        """The produced audio's length as Kling writes it ("3.0")."""
        seconds: float = 5.0
        if product.name == "text-to-audio":
            seconds = float(request.get("duration") or 5.0)
        elif product.name == "tts":
            seconds = max(1.0, len(str(request.get("text") or "")) / 15)
        elif parent is not None:
            seconds = parent.duration or 5.0
        return f"{seconds:.1f}"

    def video_duration(self, product: Product, request: dict[str, Any]) -> str:
        """The produced video's length as Kling writes it ("5.1")."""
        if product.name == "video-extend":
            return f"{self._rng.choice((4.1, 4.6, 5.1))}"
        settings = _settings(request)
        raw = request.get("duration", settings.get("duration"))
        if raw is None and isinstance(request.get("input"), dict):
            raw = request["input"].get("duration")
        try:
            seconds = float(raw) if raw is not None else 5.0
        except (TypeError, ValueError):
            seconds = 5.0
        return f"{seconds + 0.1:.1f}"
