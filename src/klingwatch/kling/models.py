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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from klingwatch.clock import to_datetime, to_ms
from klingwatch.kling.errors import BadResponse, UnknownTaskStatus

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


_MODEL = ConfigDict(frozen=True, extra="allow")


class Video(BaseModel):
    """A video result (or the parent video of an extend)."""

    model_config = _MODEL
    id: str | None = None
    url: str | None = None
    watermark_url: str | None = None
    duration: float | None = None  # seconds; Kling sends a string such as "5.1"


class Image(BaseModel):
    model_config = _MODEL
    index: int | None = None
    url: str | None = None
    watermark_url: str | None = None


class Audio(BaseModel):
    model_config = _MODEL
    id: str | None = None
    url: str | None = None  # legacy url, or the new standard's mp3_url
    wav_url: str | None = None
    duration: float | None = None


class Billing(BaseModel):
    """One ``billing[]`` item of the new standard (or the legacy unit deduction)."""

    model_config = _MODEL
    charge_type: str | None = None  # "unit" or "cash"
    amount: Decimal | None = None
    package_type: str | None = None
    currency: str | None = None


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
    units: Decimal | None = None  # resource-pack units deducted
    billing: tuple[Billing, ...] = ()
    standard: ApiStandard = ApiStandard.LEGACY
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    # -- derived --------------------------------------------------------------------------
    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def created_ms(self) -> int | None:
        return None if self.created_at is None else to_ms(self.created_at)

    @property
    def updated_ms(self) -> int | None:
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
        """Parse a task object of either standard, telling them apart by ``task_id`` vs ``id``."""
        if not isinstance(data, dict):
            raise BadResponse(f"expected a task object, got {type(data).__name__}: {data!r:.200}")
        if "task_id" in data:
            return cls.from_legacy(data)
        if "id" in data:
            return cls.from_tasks_api(data)
        raise BadResponse(f"task object has neither 'task_id' nor 'id': {data!r:.300}")

    @classmethod
    def from_legacy(cls, data: dict[str, Any]) -> Task:
        """Parse a legacy ``/v1`` task object (also a legacy create answer or callback)."""
        task_id = data.get("task_id")
        if task_id in (None, ""):
            raise BadResponse(f"legacy task object without task_id: {data!r:.300}")
        info = _mapping(data.get("task_info"))
        result = _mapping(data.get("task_result"))
        parent = info.get("parent_video")
        units = _decimal(data.get("final_unit_deduction"))
        return cls(
            id=str(task_id),
            status=TaskStatus.parse(data.get("task_status"), data),
            external_id=_text_or_none(info.get("external_task_id") or data.get("external_task_id")),
            status_msg=str(data.get("task_status_msg") or ""),
            created_at=_when(data.get("created_at"), data),
            updated_at=_when(data.get("updated_at"), data),
            videos=tuple(_item(Video, v) for v in _list(result.get("videos"))),
            images=tuple(_item(Image, v) for v in _list(result.get("images"))),
            audios=tuple(_audio(v) for v in _list(result.get("audios"))),
            parent_video=_item(Video, parent) if isinstance(parent, dict) else None,
            units=units,
            billing=(Billing(charge_type="unit", amount=units),) if units is not None else (),
            standard=ApiStandard.LEGACY,
            raw=data,
        )

    @classmethod
    def from_tasks_api(cls, data: dict[str, Any]) -> Task:
        """Parse a new-standard task object (also its create answer and callback)."""
        task_id = data.get("id")
        if task_id in (None, ""):
            raise BadResponse(f"task object without id: {data!r:.300}")
        videos: list[Video] = []
        images: list[Image] = []
        audios: list[Audio] = []
        for out in _list(data.get("outputs")):
            if not isinstance(out, dict):
                continue
            kind = str(out.get("type") or "").lower()
            if kind == "video" or (not kind and "duration" in out and "url" in out):
                videos.append(_item(Video, out))
            elif kind == "image":
                images.append(_item(Image, out))
            elif kind == "audio":
                audios.append(_audio(out))
        billing = tuple(
            _item(Billing, b) for b in _list(data.get("billing")) if isinstance(b, dict)
        )
        unit_amounts = [
            b.amount
            for b in billing
            if b.amount is not None and (b.charge_type or "unit").lower() == "unit"
        ]
        return cls(
            id=str(task_id),
            status=TaskStatus.parse(data.get("status"), data),
            external_id=_text_or_none(data.get("external_id") or data.get("external_task_id")),
            status_msg=str(data.get("message") or ""),
            created_at=_when(data.get("create_time"), data),
            updated_at=_when(data.get("update_time"), data),
            videos=tuple(videos),
            images=tuple(images),
            audios=tuple(audios),
            units=sum(unit_amounts, Decimal(0)) if unit_amounts else None,
            billing=billing,
            standard=ApiStandard.TASKS,
            raw=data,
        )


_M = TypeVar("_M", bound=BaseModel)


# -- helpers ---------------------------------------------------------------------------------
def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _when(value: Any, payload: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    try:
        return to_datetime(float(value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadResponse(
            f"timestamp {value!r} is not epoch milliseconds: {payload!r:.300}"
        ) from exc


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _item(model: type[_M], data: Any) -> _M:
    if not isinstance(data, dict):
        return model()
    clean = dict(data)
    if "duration" in clean:
        clean["duration"] = _float(clean["duration"])
    if "amount" in clean:
        clean["amount"] = _decimal(clean["amount"])
    if "id" in clean and clean["id"] is not None:
        clean["id"] = str(clean["id"])
    if "index" in clean:
        try:
            clean["index"] = int(clean["index"])
        except (TypeError, ValueError):
            clean["index"] = None
    return model.model_validate(clean)


def _audio(data: Any) -> Audio:
    if isinstance(data, dict) and not data.get("url") and data.get("mp3_url"):
        data = {**data, "url": data["mp3_url"]}
    return _item(Audio, data)
