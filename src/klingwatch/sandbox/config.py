"""Every knob of the sandbox, in one frozen object.

:class:`SandboxConfig` is what :func:`klingwatch.sandbox.create_app` takes. Where
KLING_PROTOCOL.md marks a behaviour **UNSURE**, the config makes each variant a setting (callback
statuses and envelope, where an external id is looked up, how "not found" is spelled, list order).
Defaults follow what has been seen live.

Durations are *nominal* seconds (what they take on a real account); the sandbox clock scales them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from klingwatch.kling.products import ExpectedTiming, Family
from klingwatch.sandbox.chaos import ChaosConfig
from klingwatch.sandbox.script import ScriptConfig

__all__ = ["DEFAULT_SLOTS", "SandboxConfig", "TimingSpec"]

#: Concurrency slots per resource-pack family when nothing else is said.
DEFAULT_SLOTS: dict[Family, int] = {Family.VIDEO: 5, Family.IMAGE: 10, Family.TRY_ON: 2}


class TimingSpec(BaseModel):
    """Queue and run time distribution (nominal seconds): log-normal through p50 and p95."""

    model_config = ConfigDict(frozen=True)

    queue_p50: float = Field(ge=0)
    queue_p95: float = Field(ge=0)
    run_p50: float = Field(gt=0)
    run_p95: float = Field(gt=0)

    @classmethod
    def of(cls, timing: ExpectedTiming) -> TimingSpec:
        return cls(
            queue_p50=timing.queue_p50,
            queue_p95=timing.queue_p95,
            run_p50=timing.run_p50,
            run_p95=timing.run_p95,
        )


class SandboxConfig(BaseModel):
    """The sandbox's account, behaviour and fault knobs. Frozen: derive variants with
    ``config.model_copy(update={...})``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- credentials -------------------------------------------------------------------------
    #: AccessKey -> SecretKey pairs accepted for HS256 JWTs.
    access_keys: dict[str, str] = Field(default_factory=dict)
    #: API keys (``Authorization: Bearer <key>``); the only credential the new standard takes.
    api_keys: tuple[str, ...] = ()
    #: With no key configured at all, every request is let in (handy for quick experiments).
    #: Set False to refuse everything instead.
    open_when_keyless: bool = True
    #: Seconds of clock skew tolerated on ``exp``/``nbf``.
    jwt_leeway: float = 0.0

    # -- time and randomness ----------------------------------------------------------------
    #: Multiplies every duration (0.01: a 60 s task takes 0.6 s). Used when no clock is given.
    time_scale: float = Field(default=1.0, gt=0)
    #: Seed of every random draw (durations, outcomes, ids, chaos): same seed, same run.
    seed: int = 0
    #: Seconds the sandbox's clock is ahead of the clock it runs on (negative: behind), as
    #: Kling's may be of yours: tokens are checked, and ``Date`` headers stamped, by it.
    clock_offset: float = 0.0

    # -- the account ------------------------------------------------------------------------
    slots: dict[Family, int] = Field(default_factory=lambda: dict(DEFAULT_SLOTS))
    #: Resource-pack units available; ``None`` = unlimited. Past it, creates answer 429/1102.
    unit_budget: Decimal | None = None

    # -- lifecycle --------------------------------------------------------------------------
    #: Share of tasks that end ``failed`` (HTTP 200, reason in ``task_status_msg``).
    failure_rate: float = Field(default=0.05, ge=0, le=1)
    #: Share of tasks that run 5-20 times longer than usual (seen live: over an hour).
    straggler_rate: float = Field(default=0.005, ge=0, le=1)
    #: A prompt containing this marker is refused at create by the "content check" (400/1301),
    #: so a pipeline's handling of policy refusals can be tried on purpose. ``None``: off.
    refuse_marker: str | None = "[sandbox:refuse]"
    #: A prompt containing this marker makes a task that is accepted, runs, then fails with a
    #: content-risk reason (HTTP 200, reason in ``task_status_msg``). ``None``: off.
    fail_marker: str | None = "[sandbox:fail]"
    #: Timing overrides, most specific key first: ``"text2video:kling-v2-6:pro"``,
    #: ``"text2video:kling-v2-6"``, ``"text2video"``, ``"video"``. Else the product registry's.
    durations: dict[str, TimingSpec] = Field(default_factory=dict)

    # -- protocol variants (UNSURE in the protocol file) --------------------------------------
    #: Where a legacy single get finds an external id: the path slot, ``?external_task_id=``, both.
    external_id_lookup: Literal["both", "path", "query"] = "both"
    #: Unknown id on a single get: ``"1201"`` = 400/1201 (seen live), ``"1203"`` = 404/1203.
    not_found: Literal["1201", "1203"] = "1201"
    #: Order of legacy list pages and ``POST /tasks`` results.
    list_order: Literal["newest", "oldest"] = "newest"
    #: Order of ``GET /tasks?task_ids=`` results, which Kling does not promise: shuffled by
    #: default so a client that relies on it fails here, not live.
    many_order: Literal["shuffled", "asked"] = "shuffled"

    # -- callbacks --------------------------------------------------------------------------
    #: ``"all"``: submitted, processing and the end; ``"terminal"``: the end only.
    callbacks: Literal["all", "terminal"] = "all"
    #: Legacy callbacks: the flat task object, or wrapped in ``{code, message, data}``.
    callback_envelope: Literal["flat", "enveloped"] = "flat"
    #: ``whsec_...``: sign deliveries with Standard Webhooks headers. Several secrets (a list, or
    #: one string separated by spaces) sign each delivery with each, the way Kling signs during a
    #: secret rotation: several space-separated ``v1,`` signatures (kling-get-started-callbacks.md,
    #: "Signature Verification During Rotation").
    webhook_secret: str | None = None
    callback_retries: int = Field(default=3, ge=0)
    #: Nominal seconds before the first retry; doubles each time.
    callback_retry_backoff: float = Field(default=5.0, ge=0)
    callback_drop_rate: float = Field(default=0.0, ge=0, le=1)
    callback_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    #: Each delivery waits this many nominal seconds plus up to ``callback_delay_jitter``.
    callback_delay: float = Field(default=0.0, ge=0)
    callback_delay_jitter: float = Field(default=0.0, ge=0)
    #: Share of tasks whose last two deliveries arrive swapped.
    callback_reorder_rate: float = Field(default=0.0, ge=0, le=1)
    #: Seconds a receiver gets to answer (real seconds).
    callback_timeout: float = Field(default=10.0, gt=0)

    # -- results ----------------------------------------------------------------------------
    #: Result files disappear this many nominal days after the task ended.
    result_retention_days: float = Field(default=30.0, gt=0)
    #: What an expired result URL answers.
    expired_media_status: Literal[403, 404] = 404
    #: Base of result URLs; default: the base URL the create request came in on.
    public_base_url: str | None = None

    # -- faults -----------------------------------------------------------------------------
    chaos: ChaosConfig = Field(default_factory=ChaosConfig)
    #: Scripted answers the sandbox starts with (:mod:`klingwatch.sandbox.script`).
    script: ScriptConfig = Field(default_factory=ScriptConfig)

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _whsec(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            v = " ".join(str(item) for item in v)
        if isinstance(v, str):
            secrets = v.split()
            if not secrets:
                return None
            bad = [s for s in secrets if not s.startswith("whsec_")]
            if bad:
                raise ValueError(
                    "webhook_secret must start with 'whsec_' (Standard Webhooks format); "
                    "separate several with spaces"
                )
            return " ".join(secrets)
        return v

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Every signing secret (more than one while a rotation is simulated)."""
        return tuple(self.webhook_secret.split()) if self.webhook_secret else ()

    @field_validator("slots")
    @classmethod
    def _all_families(cls, v: dict[Family, int]) -> dict[Family, int]:
        merged = dict(DEFAULT_SLOTS)
        merged.update(v)
        for family, n in merged.items():
            if n < 1:
                raise ValueError(f"slots for {family.value} must be at least 1, got {n}")
        return merged

    @property
    def auth_open(self) -> bool:
        """True when no credential is configured and ``open_when_keyless`` lets everyone in."""
        return self.open_when_keyless and not self.access_keys and not self.api_keys

    def timing_for(
        self, product: str, model: str | None, mode: str | None, family: Family
    ) -> TimingSpec | None:
        """The most specific timing override for a task, or ``None``."""
        keys = []
        if model and mode:
            keys.append(f"{product}:{model}:{mode}")
        if model:
            keys.append(f"{product}:{model}")
        keys += [product, family.value]
        for key in keys:
            if key in self.durations:
                return self.durations[key]
        return None
