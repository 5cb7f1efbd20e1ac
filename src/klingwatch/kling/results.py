"""What a task produced: its result items, and how each API standard spells them.

The legacy standard puts results in ``task_result`` under one key per kind (``videos``,
``images``, ``audios``, ``voices``, ``elements``); the 2026 standard lists them in ``outputs[]``,
each with a ``type``. The items themselves are spelled differently too:

=========  ===========================================  =====================================
kind       legacy (``task_result``)                     new standard (``outputs[]``)
=========  ===========================================  =====================================
video      ``{id, url, watermark_url, duration}``       the same, ``type: video``
image      ``{index, url}``; an AI multi-shot item      ``{url, watermark_url, group_id}``
           carries ``url_1``, ``url_2``, ...
audio      ``{id, url_mp3, url_wav, duration_mp3,       ``{id, mp3_url, wav_url, mp3_duration,
           duration_wav}``; text-to-speech ``{id, url,  wav_duration}``
           duration}``
voice      ``{voice_id, voice_name, trial_url, ...}``   ``{id, name, url, owned_by, status}``
element    ``{element_id, element_name,                 ``{id, name, description, owned_by,
           element_description, ...}``                  status, ...}``
=========  ===========================================  =====================================

:class:`Results` reads either form (:meth:`Results.from_legacy`, :meth:`Results.from_outputs`)
and writes either (:meth:`Results.to_legacy`, :meth:`Results.to_outputs`). Items keep every field
Kling sends that they do not name (pydantic ``extra="allow"``), and write those back as they came.
Durations (strings of seconds on the wire) become floats; an unparseable value is dropped rather
than failing the task.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict, TypeVar, cast

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Audio",
    "Billing",
    "Element",
    "Image",
    "ResultFields",
    "Results",
    "Video",
    "Voice",
    "billing_payload",
    "format_amount",
    "format_seconds",
    "read_billing",
    "read_decimal",
    "read_video",
    "video_payload",
]

logger = logging.getLogger(__name__)

_UNKNOWN_OUTPUTS_SEEN: set[str] = set()

# Result items keep every field Kling sends (extra="allow"): Kling adds fields often.
_MODEL = ConfigDict(frozen=True, extra="allow")


class Video(BaseModel):
    """A video result (or the parent video of an extend)."""

    model_config = _MODEL
    id: str | None = None
    url: str | None = None
    watermark_url: str | None = None
    duration: float | None = None  # seconds; Kling sends a string such as "5.1"


class Image(BaseModel):
    """An image result: ``{index, url}`` (legacy) or ``{url, watermark_url, group_id}``.

    ``shot`` is the ``N`` of ``url_N`` when Kling sent several URLs in one item (an AI
    multi-shot, kling-image-common-subject-completion.md): each URL is an image of its own, and
    the legacy form writes them back as the one item they came in.
    """

    model_config = _MODEL
    index: int | None = None
    url: str | None = None
    watermark_url: str | None = None
    shot: int | None = None


class Audio(BaseModel):
    """An audio result. ``url`` is ``url`` or, failing that, the MP3's URL (``mp3_url`` in the
    new standard, ``url_mp3`` in the legacy text-to-audio and video-to-audio answers)."""

    model_config = _MODEL
    id: str | None = None
    url: str | None = None
    mp3_url: str | None = None
    wav_url: str | None = None
    duration: float | None = None


class Voice(BaseModel):
    """A custom voice made by a voice task (kling-2.6-voice-mgt.md); ``id`` is what a
    text-to-speech or lip-sync request names it by, ``url`` its trial recording."""

    model_config = _MODEL
    id: str | None = None
    name: str | None = None
    url: str | None = None
    owned_by: str | None = None
    status: str | None = None


class Element(BaseModel):
    """A custom element made by an element task (kling-o1-element-mgt.md)."""

    model_config = _MODEL
    id: str | None = None
    name: str | None = None
    description: str | None = None
    owned_by: str | None = None
    status: str | None = None


class Billing(BaseModel):
    """One ``billing[]`` item of the new standard (or the legacy unit deduction)."""

    model_config = _MODEL
    charge_type: str | None = None  # "unit" or "cash"
    amount: Decimal | None = None
    package_type: str | None = None
    currency: str | None = None

    @property
    def is_unit(self) -> bool:
        """A resource-pack unit charge (not cash). Unlabelled items count as units unless
        they name a currency."""
        if self.charge_type:
            return self.charge_type.strip().lower() == "unit"
        return self.currency is None


# The legacy spelling of the fields voices and elements name alike in the new standard.
_VOICE_LEGACY = {"id": "voice_id", "name": "voice_name", "url": "trial_url"}
_ELEMENT_LEGACY = {"id": "element_id", "name": "element_name", "description": "element_description"}
_AUDIO_DURATIONS = ("duration_mp3", "mp3_duration", "duration_wav", "wav_duration")


class ResultFields(TypedDict):
    """The result fields of :class:`~klingwatch.kling.models.Task`."""

    videos: tuple[Video, ...]
    images: tuple[Image, ...]
    audios: tuple[Audio, ...]
    voices: tuple[Voice, ...]
    elements: tuple[Element, ...]


@dataclass(frozen=True, slots=True)
class Results:
    """Every result item of one task, by kind."""

    videos: tuple[Video, ...] = ()
    images: tuple[Image, ...] = ()
    audios: tuple[Audio, ...] = ()
    voices: tuple[Voice, ...] = ()
    elements: tuple[Element, ...] = ()

    def task_fields(self) -> ResultFields:
        """The items as keyword arguments of a ``Task``."""
        return cast(ResultFields, {f.name: getattr(self, f.name) for f in fields(self)})

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def from_legacy(cls, result: dict[str, Any]) -> Results:
        """A legacy ``task_result`` (``{}`` on a task that has not succeeded)."""
        return cls(
            videos=tuple(_item(Video, v) for v in _dicts(result.get("videos"))),
            images=_legacy_images(result),
            audios=tuple(_audio(a) for a in _dicts(result.get("audios"))),
            voices=tuple(_aliased(Voice, v, _VOICE_LEGACY) for v in _dicts(result.get("voices"))),
            elements=tuple(
                _aliased(Element, e, _ELEMENT_LEGACY) for e in _dicts(result.get("elements"))
            ),
        )

    @classmethod
    def from_outputs(cls, outputs: Any, task_id: str) -> Results:
        """A new-standard ``outputs[]``; an item of an unknown type is logged once and left in
        the task's ``raw``."""
        found: dict[str, list[Any]] = {f.name: [] for f in fields(cls)}
        for out in _dicts(outputs):
            kind = str(out.get("type") or "").strip().lower()
            item = {k: v for k, v in out.items() if k != "type"}
            if kind == "video":
                found["videos"].append(_item(Video, item))
            elif kind == "image":
                found["images"].append(_item(Image, item))
            elif kind == "audio":
                found["audios"].append(_audio(item))
            elif kind == "voice":
                found["voices"].append(_item(Voice, item))
            elif kind == "element":
                found["elements"].append(_item(Element, item))
            elif kind not in _UNKNOWN_OUTPUTS_SEEN:
                # Once per type, not on every poll; the item stays in ``raw``.
                _UNKNOWN_OUTPUTS_SEEN.add(kind)
                logger.warning("task %s: output of unknown type %r left in raw", task_id, kind)
        return cls(**{name: tuple(items) for name, items in found.items()})

    # -- writing ----------------------------------------------------------------------------
    def to_legacy(self) -> dict[str, Any]:
        """This as a legacy ``task_result``: only the kinds there are."""
        written = {
            "videos": [_dump(v) for v in self.videos],
            "images": _legacy_image_items(self.images),
            "audios": [_legacy_audio(a) for a in self.audios],
            "voices": [_renamed(v, _VOICE_LEGACY) for v in self.voices],
            "elements": [_legacy_element(e) for e in self.elements],
        }
        return {kind: items for kind, items in written.items() if items}

    def to_outputs(self) -> list[dict[str, Any]]:
        """This as a new-standard ``outputs[]``, videos first."""
        out = [{"type": "video", **_dump(v)} for v in self.videos]
        out += [{"type": "image", **_dump(i, leave=("shot",))} for i in self.images]
        out += [{"type": "audio", **_tasks_audio(a)} for a in self.audios]
        out += [{"type": "voice", **_dump(v, status=_tasks_status)} for v in self.voices]
        out += [{"type": "element", **_dump(e, status=_tasks_status)} for e in self.elements]
        return out


def read_video(value: Any) -> Video | None:
    """A video object (a parent video), or ``None`` if ``value`` is not one."""
    return _item(Video, value) if isinstance(value, dict) else None


def video_payload(video: Video) -> dict[str, Any]:
    """A video object as Kling writes it."""
    return _dump(video)


def read_billing(value: Any) -> tuple[Billing, ...]:
    """The items of a new-standard ``billing[]``."""
    return tuple(_item(Billing, b) for b in _dicts(value))


def billing_payload(item: Billing) -> dict[str, Any]:
    """A ``billing[]`` item as Kling writes it (the amount a decimal string)."""
    return _dump(item)


# -- values as Kling writes them ---------------------------------------------------------------
def format_seconds(value: float) -> str:
    """A duration as Kling writes it: a string of seconds with a decimal ("5.1", "3.0")."""
    return f"{value:.1f}" if round(value, 1) == value else repr(value)


def format_amount(value: Decimal) -> str:
    """Units or money as Kling writes them: a decimal string without trailing zeros ("1.5",
    "3")."""
    return format(value.normalize(), "f")


def read_decimal(value: Any) -> Decimal | None:
    """A decimal from a string or number; anything else (or not finite) is ``None``."""
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# -- reading helpers ---------------------------------------------------------------------------
_M = TypeVar("_M", bound=BaseModel)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a list; anything else is no items (Kling sends ``{}`` or null)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _float(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None or number != int(number) else int(number)


def _scalar_text(value: Any) -> str | None:
    # A declared text field that arrived as a number is read as its text; a structure is dropped.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _item(model: type[_M], data: dict[str, Any]) -> _M:
    clean = dict(data)
    for name, field in model.model_fields.items():
        if name not in clean:
            continue
        if name == "duration":
            clean[name] = _float(clean[name])
        elif name == "amount":
            clean[name] = read_decimal(clean[name])
        elif name in ("index", "shot"):
            clean[name] = _int(clean[name])
        elif field.annotation == (str | None):
            clean[name] = _scalar_text(clean[name])
    return model.model_validate(clean)


def _aliased(model: type[_M], data: dict[str, Any], legacy: dict[str, str]) -> _M:
    """An item whose legacy spelling renames some fields (``voice_id`` for ``id``, ...)."""
    clean = dict(data)
    for name, spelled in legacy.items():
        if spelled in clean and name not in clean:
            clean[name] = clean.pop(spelled)
    if isinstance(clean.get("status"), str):
        clean["status"] = clean["status"].strip().lower()
    return _item(model, clean)


def _audio(data: dict[str, Any]) -> Audio:
    """An audio item of either standard; the aliases it was read from are not kept twice."""
    clean = dict(data)
    if not clean.get("mp3_url") and clean.get("url_mp3"):
        clean["mp3_url"] = clean.pop("url_mp3")
    if not clean.get("wav_url") and clean.get("url_wav"):
        clean["wav_url"] = clean.pop("url_wav")
    if _float(clean.get("duration")) is None:
        for key in _AUDIO_DURATIONS:
            if _float(clean.get(key)) is not None:
                clean["duration"] = clean[key]
                break
    if "duration" in clean and _float(clean["duration"]) is not None:
        for key in _AUDIO_DURATIONS:
            if key in clean and _float(clean[key]) == _float(clean["duration"]):
                del clean[key]  # written again from ``duration``
    audio = _item(Audio, clean)
    if not audio.url and audio.mp3_url:
        audio = audio.model_copy(update={"url": audio.mp3_url})
    return audio


def _legacy_images(result: dict[str, Any]) -> tuple[Image, ...]:
    """``task_result.images`` and ``series_images`` (an omni-image series); an item carrying
    ``url_1``, ``url_2``, ... (an AI multi-shot) is one image per URL."""
    images: list[Image] = []
    for item in _dicts(result.get("images")) + _dicts(result.get("series_images")):
        numbered = sorted((k for k in item if re.fullmatch(r"url_\d+", k)), key=_shot_of)
        if item.get("url") or not numbered:
            images.append(_item(Image, item))
            continue
        rest = {k: v for k, v in item.items() if k not in numbered}
        images += [_item(Image, {**rest, "url": item[k], "shot": _shot_of(k)}) for k in numbered]
    return tuple(images)


def _shot_of(key: str) -> int:
    return int(key.partition("_")[2])


# -- writing helpers ---------------------------------------------------------------------------
def _dump(item: BaseModel, *, leave: tuple[str, ...] = (), status: Any = None) -> dict[str, Any]:
    """An item as Kling writes it: declared fields left out when unset, extras kept as they
    came, durations as strings of seconds, amounts as decimal strings."""
    extra = item.model_extra or {}
    out: dict[str, Any] = {}
    for key, value in item.model_dump().items():
        if key in leave or (value is None and key not in extra):
            continue
        if key == "duration" and isinstance(value, float):
            value = format_seconds(value)
        elif key == "amount" and isinstance(value, Decimal):
            value = format_amount(value)
        elif key == "status" and status is not None and isinstance(value, str):
            value = status(value)
        out[key] = value
    return out


def _renamed(item: BaseModel, legacy: dict[str, str]) -> dict[str, Any]:
    out = _dump(item, status=_legacy_status)
    return {legacy.get(k, k): v for k, v in out.items()}


def _legacy_element(element: Element) -> dict[str, Any]:
    out = _renamed(element, _ELEMENT_LEGACY)
    ident = out.get("element_id")
    if isinstance(ident, str) and ident.isdigit():
        out["element_id"] = int(ident)  # a number on the page ("element_id": 0)
    return out


def _legacy_status(value: str) -> str:
    return "succeed" if value == "succeeded" else value


def _tasks_status(value: str) -> str:
    return "succeeded" if value == "succeed" else value


def _legacy_image_items(images: tuple[Image, ...]) -> list[dict[str, Any]]:
    """Images as legacy items; the shots of one AI multi-shot item go back into that item."""
    items: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None  # the multi-shot item being filled, if any
    for image in images:
        if image.shot is None or image.url is None:
            group = None
            items.append(_dump(image, leave=("shot",)))
            continue
        rest = _dump(image, leave=("shot", "url"))
        key = f"url_{image.shot}"
        if group is None or key in group or {k: group.get(k) for k in rest} != rest:
            group = rest
            items.append(group)
        group[key] = image.url
    return items


def _legacy_audio(audio: Audio) -> dict[str, Any]:
    """Text-to-audio and video-to-audio write the MP3 and WAV apart (``url_mp3``, ``url_wav``,
    a duration each); text-to-speech writes one ``url`` and ``duration``."""
    out = _dump(audio, leave=("url", "mp3_url", "wav_url", "duration"))
    seconds = None if audio.duration is None else format_seconds(audio.duration)
    if not (audio.mp3_url or audio.wav_url):
        return {**out, **_present(url=audio.url, duration=seconds)}
    written = _present(
        url_mp3=audio.mp3_url,
        url_wav=audio.wav_url,
        duration_mp3=seconds if audio.mp3_url else None,
        duration_wav=seconds if audio.wav_url else None,
    )
    if audio.url and audio.url != audio.mp3_url:
        written["url"] = audio.url
    return {**out, **written}


def _tasks_audio(audio: Audio) -> dict[str, Any]:
    out = _dump(audio, leave=("url", "mp3_url", "wav_url", "duration"))
    mp3 = audio.mp3_url or audio.url
    seconds = None if audio.duration is None else format_seconds(audio.duration)
    return {
        **out,
        **_present(
            mp3_url=mp3,
            wav_url=audio.wav_url,
            mp3_duration=seconds if mp3 else None,
            wav_duration=seconds if audio.wav_url else None,
        ),
    }


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
