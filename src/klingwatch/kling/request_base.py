"""What every request model is built from: the base model, field rules, routing fields, errors.

The rule for every check (see docs/validation.md): **refuse only what a vendor page says Kling
refuses** (a required field missing, a value outside a page's enumeration or range, a limit a page
states), and pass everything else through, unknown fields included, because Kling adds fields
often. What a page only calls "not supported" or "only ... is supported" is a *warning*
(:meth:`RequestModel.advice`): shown to the user, never a refusal (``--strict`` makes it one).

Pages are the copies in the public repository ``aself101/kling-api`` under ``docs/api/``; comments
name the file. Endpoints with no page there (the legacy ``text2video``, ``image2video``,
``multi-image2video``, ``video-extend``, ``lip-sync`` and ``kolors-virtual-try-on``) follow
KLING_PROTOCOL.md section 3, and what it marks "not for"/"mutually exclusive" is a warning too.

Every message says what to change: it reaches users as ``FILE:LINE: <field>: <message>``.
:func:`problems_of` turns a pydantic ``ValidationError`` into those ``(field, message)`` pairs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from klingwatch.kling.inputs import IMAGE_MAX_BYTES, check_image, is_url

__all__ = [
    "LEGACY_PROMPT_MAX",
    "ROUTING_FIELDS",
    "AspectPattern",
    "Id",
    "ImageInput",
    "LegacyPrompt",
    "LegacySeconds",
    "Mode",
    "Problem",
    "RequestModel",
    "RequiredPrompt",
    "Routed",
    "RoutingFields",
    "Unit",
    "Watermark",
    "between",
    "callback_advice",
    "choices",
    "drop_empty_routing",
    "exactly_one",
    "image_rule",
    "legacy_version",
    "max_chars",
    "no_bool",
    "one_of",
    "problems_of",
    "prompt_of",
    "url_rule",
    "whole_seconds",
]

#: ``(dotted field, what is wrong and how to fix it)``; field ``""`` means the whole request.
Problem = tuple[str, str]

#: Prompt and negative-prompt limit of every legacy endpoint ("Cannot exceed 2500 characters":
#: kling-image-2.1-generation.md, kling-avatar.md, kling-multi-element-video-editing.md).
LEGACY_PROMPT_MAX = 2500

#: Where a create carries its routing fields: top level (legacy) or ``options`` (new standard).
ROUTING_FIELDS = ("callback_url", "external_task_id")


# -- field rules -------------------------------------------------------------------------------
def no_bool(value: Any) -> Any:
    """A number field given ``true``: pydantic would read it as 1."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    return value


def between(low: float, high: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return check


def max_chars(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(
                f"is {len(value)} characters; Kling accepts at most {limit}: shorten it"
            )
        return value

    return check


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; describe what to generate")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; give a value")
    return value


def whole_seconds(value: Any) -> Any:
    """A whole number of seconds given as 5, 5.0, "5" or "5.0" (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a whole number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a whole number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise ValueError(f"must be a whole number of seconds (1 or more), got {value!r}")
    return int(number)


def _legacy_seconds(value: Any) -> Any:
    # Legacy durations are strings of seconds ("5"); 5, 5.0 and "5.0" are read as "5". Which
    # values a model offers is the model's rule (see Text2Video).
    seconds = whole_seconds(value)
    return None if seconds is None else str(seconds)


def choices(values: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``: an enumeration as messages write it."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def image_rule(field: str, max_bytes: int = IMAGE_MAX_BYTES) -> Callable[[str], str]:
    """An image input: an http(s) URL or raw Base64 of a jpg/png (see :mod:`inputs`)."""

    def check(value: str) -> str:
        return check_image(value, field, max_bytes=max_bytes)

    return check


def url_rule(what: str) -> Callable[[str], str]:
    """A media input Kling takes by URL only ("Material URL", kling-motion-control-2.6.md)."""

    def check(value: str) -> str:
        if not is_url(value):
            raise ValueError(f"must be an http(s) URL of the {what}, got {value[:80]!r}")
        return value

    return check


def exactly_one(request: Any, *names: str) -> int:
    """How many of ``names`` are given (a non-empty value) on ``request``."""
    return sum(1 for name in names if getattr(request, name, None) not in (None, "", []))


def one_of(request: Any, names: tuple[str, str], message: str, where: str = "") -> list[Problem]:
    """The problem ``message`` unless exactly one of the two ``names`` is given (the pages'
    "either ... or ..., mutually exclusive")."""
    return [] if exactly_one(request, *names) == 1 else [(where, message)]


def legacy_version(model: str) -> tuple[int, int] | None:
    """``kling-v2-6`` -> (2, 6); ``kling-v2-master`` -> (2, 0); not a legacy name -> None."""
    match = re.fullmatch(r"kling-v(\d+)(?:-(\d+))?(?:-[a-z]+)*", model)
    if not match:
        return None
    return int(match[1]), int(match[2] or 0)


Unit = Annotated[float, BeforeValidator(no_bool), AfterValidator(between(0, 1))]
LegacyPrompt = Annotated[str, AfterValidator(max_chars(LEGACY_PROMPT_MAX))]
RequiredPrompt = Annotated[
    str, AfterValidator(_not_blank), AfterValidator(max_chars(LEGACY_PROMPT_MAX))
]
LegacySeconds = Annotated[str | None, BeforeValidator(_legacy_seconds)]
ImageInput = Annotated[str, AfterValidator(image_rule("image"))]
Id = Annotated[str, AfterValidator(_non_empty)]
#: ``4k`` is a legacy mode since 2026-04-23 (kling-updates-api.md: "Set the mode parameter value
#: to 4k" for kling-v3 and kling-v3-omni).
Mode = Annotated[str, AfterValidator(lambda v: _enum(v, ("std", "pro", "4k")))]


def _enum(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"must be {choices(allowed)}, got {value!r}")
    return value


# -- models ------------------------------------------------------------------------------------
class RequestModel(BaseModel):
    """Base of every request model: unknown fields pass through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False)
    #: What a request must contain, for listings, when the required fields do not say it all.
    needs: ClassVar[tuple[str, ...]] = ()
    #: Where image inputs sit: ``image``, ``image_list[].image``, ``input.images[]``. A local
    #: path there is read into Base64 by ``klingwatch submit`` (``resolve_images``).
    image_fields: ClassVar[tuple[str, ...]] = ()
    #: Names accepted besides the fields (flat settings the model moves where Kling wants them).
    also_known: ClassVar[tuple[str, ...]] = ()

    def checks(self) -> list[Problem]:
        """Refusals that look at several fields at once, each reported with its field."""
        return []

    def advice(self) -> list[Problem]:
        """Warnings: what a page calls "not supported" without saying Kling refuses it."""
        return []


def drop_empty_routing(data: Any) -> Any:
    """``callback_url: ""`` and ``external_task_id: ""`` mean "none" (every new-standard example
    on Kling's pages sends ``"external_task_id": ""``, e.g. kling-3.0-turbo-t2v.md; the legacy
    ones send ``"callback_url": ""``, e.g. kling-avatar.md): drop them."""
    if not isinstance(data, Mapping):
        return data
    return {k: v for k, v in data.items() if not (k in ROUTING_FIELDS and v in ("", None))}


class Watermark(RequestModel):
    """``watermark_info``: ``{"enabled": boolean}`` on the pages that offer it."""

    enabled: bool | None = None


class RoutingFields(RequestModel):
    """``callback_url``, ``external_task_id`` (an empty one is none) and ``watermark_info``."""

    callback_url: str | None = None
    external_task_id: str | None = None
    watermark_info: Watermark | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_routing(cls, data: Any) -> Any:
        return drop_empty_routing(data)


class Routed(RoutingFields):
    """A create body with the routing fields at the top (every legacy endpoint)."""

    def advice(self) -> list[Problem]:
        return callback_advice(self.callback_url, "callback_url")


def callback_advice(url: str | None, field: str) -> list[Problem]:
    """A callback URL Kling cannot call; no page says Kling refuses it, so only a warning."""
    if url is not None and not is_url(url):
        return [(field, f"{url[:60]!r} is not an http(s) URL, so Kling cannot call it back")]
    return []


def prompt_of(texts: Iterable[str | None]) -> bool:
    """Whether any of ``texts`` is a non-blank prompt."""
    return any(t is not None and t.strip() for t in texts)


# -- errors ------------------------------------------------------------------------------------
_MISSING_HINTS = {
    "prompt": "describe what to generate",
    "image_list": 'give 1 to 4 {"image": URL or raw Base64} items',
    "video_id": "the video id from an earlier Kling video task",
    "input": "an object; see the lip-sync/effects docs",
    "mode": 'use "text2video" or "audio2video"',
    "effect_scene": 'the effect\'s name, e.g. "hug"',
    "human_image": "a URL or raw Base64 of the person",
    "cloth_image": "a URL or raw Base64 of the garment",
    "type": 'e.g. "simple"',
    "image": "a URL or raw Base64 of the image",
    "session_id": "the session_id an earlier identify-face or init-selection call returned",
    "subject_image_list": 'give 1 to 4 {"subject_image": URL or raw Base64} items',
}


def problems_of(exc: ValidationError) -> list[Problem]:
    """A pydantic error as ``(dotted field, what to fix)`` pairs, in Kling's field names."""
    problems: list[Problem] = []
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        # pydantic names union/annotated branches in the location; they mean nothing to users.
        loc = ".".join(
            p
            for p in parts
            if not p.startswith(("function-", "lax-", "literal[")) and p not in ("str", "int")
        )
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        given = err.get("input")
        if kind == "missing":
            hint = _MISSING_HINTS.get(parts[-1] if parts else "")
            msg = "is required" + (f"; {hint}" if hint else "")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            msg = f"must be a JSON object, got {given!r:.60}"
        elif kind == "list_type":
            msg = f"must be a list, got {given!r:.60}"
        elif kind == "bool_type":
            msg = f"must be true or false, got {given!r:.60}"
        elif kind == "string_too_short":
            msg = "is empty; give a value"
        elif kind == "string_pattern_mismatch":
            msg = _pattern_hint(loc, given)
        elif msg.startswith("Input should be "):
            msg = "must be " + msg.removeprefix("Input should be ")
            if isinstance(given, str | int | float | bool):
                msg += f", got {given!r:.60}"
        problems.append((loc, msg))
    return problems


def _pattern_hint(loc: str, given: Any) -> str:
    if loc.endswith("aspect_ratio"):
        return f'must look like "16:9", got {given!r:.60}'
    return f"has the wrong form: {given!r:.60}"


AspectPattern = Annotated[str, Field(pattern=r"^(\d{1,2}:\d{1,2}|auto)$")]
