"""One task model for both Kling API standards.

Kling speaks two dialects (KLING_PROTOCOL.md sections 4 and 10):

* legacy ``/v1/...``: ``{task_id, task_status: submitted|processing|succeed|failed,
  task_status_msg, task_info{external_task_id, parent_video}, task_result{videos|images|audios},
  final_unit_deduction, created_at, updated_at}``
* the 2026 ``/tasks`` style: ``{id, status: ...|succeeded|..., message, external_id, outputs[],
  billing[], create_time, update_time}``

:class:`Task` is what both become. Timestamps (epoch milliseconds on the wire) become aware UTC
datetimes; the new standard's ``succeeded`` becomes :attr:`TaskStatus.SUCCEED`; a status nobody
knows raises :class:`~klingwatch.kling.errors.UnknownTaskStatus` with the raw payload rather than
being guessed at.

Parsing is forgiving about *types* (an int ``task_id``, a numeric ``duration``, a missing
``task_result``) and strict about *meaning* (no id, an unknown status). :meth:`Task.to_legacy_dict`
and :meth:`Task.to_tasks_dict` write a task back in either wire shape (the sandbox answers with
them), and parsing what they write gives the same task back.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from klingwatch.clock import to_datetime, to_ms
from klingwatch.kling.errors import BadCallback, BadResponse, UnknownTaskStatus

__all__ = [
    "RESULT_RETENTION",
    "ApiStandard",
    "Audio",
    "Billing",
    "Image",
    "Task",
    "TaskStatus",
    "Video",
]

logger = logging.getLogger(__name__)

_UNKNOWN_OUTPUTS_SEEN: set[str] = set()
#: Output types the pages document that are not files to download (kling-3.0-turbo-t2v.md:
#: "List values for each content type: image, video, audio, element, voice").
_KEPT_IN_RAW = frozenset({"voice", "element"})

#: Kling deletes result files this long after a task ends.
RESULT_RETENTION = timedelta(days=30)


class TaskStatus(StrEnum):
    """Kling's task statuses, in the legacy spelling (``succeed``)."""

    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """``succeed`` or ``failed``: the task will not change again and holds no slot."""
        return self in (TaskStatus.SUCCEED, TaskStatus.FAILED)

    @classmethod
    def parse(cls, value: object, payload: Any = None) -> TaskStatus:
        """Read either standard's spelling; anything else raises ``UnknownTaskStatus``."""
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "succeeded":
                return cls.SUCCEED
            try:
                return cls(text)
            except ValueError:
                pass
        raise UnknownTaskStatus(value, payload)

    def to_tasks_api(self) -> str:
        """The new standard's spelling (``succeeded``)."""
        return "succeeded" if self is TaskStatus.SUCCEED else self.value


class ApiStandard(StrEnum):
    """Which dialect a task was read in (and created with)."""

    LEGACY = "legacy"
    TASKS = "tasks"


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
    """An image result: ``{index, url}`` (legacy) or ``{url, watermark_url, group_id}``."""

    model_config = _MODEL
    index: int | None = None
    url: str | None = None
    watermark_url: str | None = None


class Audio(BaseModel):
    """An audio result. ``url`` is ``url`` or, failing that, the MP3's URL (``mp3_url`` in the
    new standard, ``url_mp3`` in the legacy text-to-audio and video-to-audio answers)."""

    model_config = _MODEL
    id: str | None = None
    url: str | None = None
    mp3_url: str | None = None
    wav_url: str | None = None
    duration: float | None = None


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


class Task(BaseModel):
    """A Kling task, whichever API standard it was read from."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: TaskStatus
    external_id: str | None = None
    status_msg: str = ""  # the failure reason on a failed task; often empty otherwise
    created_at: datetime | None = None
    updated_at: datetime | None = None
    videos: tuple[Video, ...] = ()
    images: tuple[Image, ...] = ()
    audios: tuple[Audio, ...] = ()
    parent_video: Video | None = None
    units: Decimal | None = None  # resource-pack units deducted (sum of unit charges)
    billing: tuple[Billing, ...] = ()  # every charge, cash included
    standard: ApiStandard = ApiStandard.LEGACY
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    # -- derived --------------------------------------------------------------------------
    @property
    def is_terminal(self) -> bool:
        """The task has ended (succeed or failed)."""
        return self.status.is_terminal

    @property
    def failure_reason(self) -> str | None:
        """Why a failed task failed (Kling's message; may be empty); ``None`` unless failed."""
        return self.status_msg if self.status is TaskStatus.FAILED else None

    @property
    def created_ms(self) -> int | None:
        """``created_at`` as epoch milliseconds, as Kling sends it."""
        return None if self.created_at is None else to_ms(self.created_at)

    @property
    def updated_ms(self) -> int | None:
        """``updated_at`` as epoch milliseconds, as Kling sends it."""
        return None if self.updated_at is None else to_ms(self.updated_at)

    @property
    def result_urls(self) -> list[str]:
        """Every result URL (videos, images, audios), in order."""
        items: list[Video | Image | Audio] = [*self.videos, *self.images, *self.audios]
        return [item.url for item in items if item.url]

    @property
    def expires_at(self) -> datetime | None:
        """When Kling deletes the results (30 days after the task ended); ``None`` if not ended."""
        if not self.is_terminal or self.updated_at is None:
            return None
        return self.updated_at + RESULT_RETENTION

    # -- parsing --------------------------------------------------------------------------
    @classmethod
    def from_payload(cls, data: Any) -> Task:
        """Parse a task object of either standard, telling them apart by ``task_id`` vs ``id``.

        Raises :class:`BadResponse` for something that is not a task object, and
        :class:`UnknownTaskStatus` (also a ``BadResponse``) for a status nobody knows.
        """
        if not isinstance(data, dict):
            raise BadResponse(f"expected a task object, got {type(data).__name__}: {data!r:.200}")
        if "task_id" in data:
            return cls.from_legacy(data)
        if "id" in data:
            return cls.from_tasks_api(data)
        raise BadResponse(f"task object has neither 'task_id' nor 'id': {data!r:.300}")

    @classmethod
    def from_callback(cls, body: bytes | str | Mapping[str, Any]) -> Task:
        """Parse a callback body in any of its forms (protocol sections 8 and 10).

        Accepts the legacy flat task object, the same wrapped in ``{code, message, data}``
        (some proxies do that), and the new standard's bare task object; raw bytes or text are
        decoded as JSON first. Anything else raises :class:`BadCallback` saying what arrived.
        An unknown status still raises :class:`UnknownTaskStatus`.
        """
        data: Any = body
        if isinstance(body, bytes | str):
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadCallback(f"callback body is not JSON ({exc}): {body[:200]!r}") from None
        if not isinstance(data, Mapping):
            raise BadCallback(f"callback body is not a JSON object: {data!r:.200}")
        if "task_id" not in data and "id" not in data and isinstance(data.get("data"), Mapping):
            data = data["data"]  # the enveloped legacy form
        if "task_id" not in data and "id" not in data:
            raise BadCallback(
                f"callback body has neither 'task_id' (legacy) nor 'id' (new standard): "
                f"{dict(data)!r:.300}"
            )
        try:
            return cls.from_payload(dict(data))
        except UnknownTaskStatus:
            raise
        except BadResponse as exc:
            raise BadCallback(f"callback body is not a Kling task: {exc}") from None

    @classmethod
    def from_legacy(cls, data: dict[str, Any]) -> Task:
        """Parse a legacy ``/v1`` task object (also a legacy create answer or callback)."""
        task_id = _id(data.get("task_id"), "task_id", data)
        info = _mapping(data.get("task_info"))
        result = _mapping(data.get("task_result"))
        parent = info.get("parent_video")
        units = _decimal(data.get("final_unit_deduction"))
        return cls(
            id=task_id,
            status=TaskStatus.parse(data.get("task_status"), data),
            external_id=_text_or_none(info.get("external_task_id") or data.get("external_task_id")),
            status_msg=_message(data.get("task_status_msg")),
            created_at=_when(data.get("created_at"), "created_at"),
            updated_at=_when(data.get("updated_at"), "updated_at"),
            videos=tuple(_item(Video, v) for v in _dicts(result.get("videos"))),
            images=_legacy_images(result),
            audios=tuple(_audio(v) for v in _dicts(result.get("audios"))),
            parent_video=_item(Video, parent) if isinstance(parent, dict) else None,
            units=units,
            billing=_legacy_billing(units, data.get("final_balance_deduction")),
            standard=ApiStandard.LEGACY,
            raw=data,
        )

    @classmethod
    def from_tasks_api(cls, data: dict[str, Any]) -> Task:
        """Parse a new-standard task object (also its create answer and callback)."""
        task_id = _id(data.get("id"), "id", data)
        videos: list[Video] = []
        images: list[Image] = []
        audios: list[Audio] = []
        for out in _dicts(data.get("outputs")):
            kind = str(out.get("type") or "").strip().lower()
            fields = {k: v for k, v in out.items() if k != "type"}
            if kind == "video":
                videos.append(_item(Video, fields))
            elif kind == "image":
                images.append(_item(Image, fields))
            elif kind == "audio":
                audios.append(_audio(fields))
            elif kind in _KEPT_IN_RAW:
                pass  # a voice or element made by a voice/element task: see ``raw``
            elif kind not in _UNKNOWN_OUTPUTS_SEEN:
                # Once per type, not on every poll; the item stays in ``raw``.
                _UNKNOWN_OUTPUTS_SEEN.add(kind)
                logger.warning("task %s: output of unknown type %r left in raw", task_id, kind)
        billing = tuple(_item(Billing, b) for b in _dicts(data.get("billing")))
        unit_amounts = [b.amount for b in billing if b.amount is not None and b.is_unit]
        return cls(
            id=task_id,
            status=TaskStatus.parse(data.get("status"), data),
            external_id=_text_or_none(data.get("external_id") or data.get("external_task_id")),
            status_msg=_message(data.get("message")),
            created_at=_when(data.get("create_time"), "create_time"),
            updated_at=_when(data.get("update_time"), "update_time"),
            videos=tuple(videos),
            images=tuple(images),
            audios=tuple(audios),
            parent_video=_item(Video, data["parent_video"])
            if isinstance(data.get("parent_video"), dict)
            else None,
            units=sum(unit_amounts, Decimal(0)) if unit_amounts else None,
            billing=billing,
            standard=ApiStandard.TASKS,
            raw=data,
        )

    # -- writing ----------------------------------------------------------------------------
    def to_legacy_dict(self, *, create_answer: bool = False) -> dict[str, Any]:
        """This task as a legacy ``/v1`` task object (the ``data`` of a query answer).

        ``create_answer=True`` gives the create answer's shorter form: ``{task_id, task_status,
        task_info{external_task_id}, created_at, updated_at}``. Timestamps are epoch ms, video
        durations strings of seconds, ``final_unit_deduction`` a decimal string.
        """
        info: dict[str, Any] = {}
        if self.external_id is not None:
            info["external_task_id"] = self.external_id
        out: dict[str, Any] = {"task_id": self.id, "task_status": self.status.value}
        if create_answer:
            out["task_info"] = info
            return {**out, **self._times("created_at", "updated_at")}
        if self.parent_video is not None:
            info["parent_video"] = _dump(self.parent_video)
        result: dict[str, Any] = {}
        if self.videos:
            result["videos"] = [_dump(v) for v in self.videos]
        if self.images:
            result["images"] = [_dump(i) for i in self.images]
        if self.audios:
            result["audios"] = [_dump(a) for a in self.audios]
        out.update(task_status_msg=self.status_msg, task_info=info, task_result=result)
        if self.units is not None:
            out["final_unit_deduction"] = str(self.units)
        return {**out, **self._times("created_at", "updated_at")}

    def to_tasks_dict(self, *, create_answer: bool = False) -> dict[str, Any]:
        """This task as a new-standard task object (``/tasks`` answers, callbacks).

        ``create_answer=True`` gives ``{id, status, create_time, update_time, external_id}``.
        A task read from the legacy API reports its units as one ``unit`` billing item.
        """
        out: dict[str, Any] = {"id": self.id, "status": self.status.to_tasks_api()}
        if not create_answer:
            out["message"] = self.status_msg
        out.update(self._times("create_time", "update_time"))
        if self.external_id is not None:
            out["external_id"] = self.external_id
        if create_answer:
            return out
        outputs: list[dict[str, Any]] = [{"type": "video", **_dump(v)} for v in self.videos]
        outputs += [{"type": "image", **_dump(i)} for i in self.images]
        for audio in self.audios:
            item = _dump(audio)
            mp3 = item.pop("url", None)
            item.setdefault("mp3_url", mp3)
            outputs.append({"type": "audio", **{k: v for k, v in item.items() if v is not None}})
        out["outputs"] = outputs
        billing = self.billing
        if not billing and self.units is not None:
            billing = (Billing(charge_type="unit", amount=self.units),)
        out["billing"] = [_dump(b) for b in billing]
        if self.parent_video is not None:
            out["parent_video"] = _dump(self.parent_video)
        return out

    def _times(self, created_key: str, updated_key: str) -> dict[str, int]:
        times: dict[str, int] = {}
        if self.created_ms is not None:
            times[created_key] = self.created_ms
        if self.updated_ms is not None:
            times[updated_key] = self.updated_ms
        return times


_M = TypeVar("_M", bound=BaseModel)


# -- helpers ---------------------------------------------------------------------------------
def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a list; anything else is no items (Kling sends ``{}`` or null)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id(value: Any, key: str, payload: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise BadResponse(f"task object without a usable {key} ({value!r}): {payload!r:.300}")
    return str(value)


def _message(value: Any) -> str:
    return "" if value is None else str(value)


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _when(value: Any, key: str) -> datetime | None:
    """Epoch milliseconds (int, float or digit string) as an aware UTC datetime.

    A garbage timestamp is logged and read as unknown rather than failing the whole task: the
    status matters more than when it was stamped.
    """
    if value is None or value == "" or value == 0:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError("a boolean is not a timestamp")
        return to_datetime(float(value))
    except (TypeError, ValueError, OverflowError, OSError):
        logger.warning("ignoring %s=%r: not epoch milliseconds", key, value)
        return None


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
            clean[name] = _decimal(clean[name])
        elif name == "index":
            clean[name] = _int(clean[name])
        elif field.annotation == (str | None):
            clean[name] = _scalar_text(clean[name])
    return model.model_validate(clean)


def _audio(data: dict[str, Any]) -> Audio:
    audio = _item(Audio, data)
    update: dict[str, Any] = {}
    mp3 = audio.mp3_url or _scalar_text(data.get("url_mp3"))
    if not audio.url and mp3:
        update["url"] = mp3
    if not audio.mp3_url and mp3:
        update["mp3_url"] = mp3
    if not audio.wav_url and data.get("url_wav"):
        update["wav_url"] = _scalar_text(data.get("url_wav"))
    if audio.duration is None:
        for key in ("duration_mp3", "mp3_duration", "duration_wav", "wav_duration"):
            seconds = _float(data.get(key))
            if seconds is not None:
                update["duration"] = seconds
                break
    return audio.model_copy(update=update) if update else audio


def _legacy_images(result: dict[str, Any]) -> tuple[Image, ...]:
    """``task_result.images`` and ``series_images`` (an omni-image series); an item carrying
    ``url_1``, ``url_2``, ... (an AI multi-shot, kling-image-common-subject-completion.md) is one
    image per URL."""
    images: list[Image] = []
    for item in _dicts(result.get("images")) + _dicts(result.get("series_images")):
        numbered = sorted(k for k in item if re.fullmatch(r"url_\d+", k))
        if item.get("url") or not numbered:
            images.append(_item(Image, item))
            continue
        rest = {k: v for k, v in item.items() if k not in numbered}
        images += [_item(Image, {**rest, "url": item[k]}) for k in numbered]
    return tuple(images)


def _legacy_billing(units: Decimal | None, balance: Any) -> tuple[Billing, ...]:
    """The unit deduction, and the cash one (``final_balance_deduction.quota``) if any."""
    out: list[Billing] = []
    if units is not None:
        out.append(Billing(charge_type="unit", amount=units))
    cash = _decimal(balance.get("quota")) if isinstance(balance, dict) else None
    if cash is not None:
        out.append(Billing(charge_type="cash", amount=cash))
    return tuple(out)


def _dump(item: BaseModel) -> dict[str, Any]:
    """A result item as Kling writes it: declared fields left out when unset, extras kept."""
    extra = item.model_extra or {}
    out = {k: v for k, v in item.model_dump(mode="json").items() if v is not None or k in extra}
    if isinstance(out.get("duration"), float):
        out["duration"] = _seconds(out["duration"])
    return out


def _seconds(value: float) -> str:
    # Kling writes durations as strings of seconds: "5", "5.1".
    return str(int(value)) if value == int(value) else repr(value)
