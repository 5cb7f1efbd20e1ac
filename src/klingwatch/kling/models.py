"""One task model for both Kling API standards, read from and written to either.

Kling speaks two dialects (KLING_PROTOCOL.md sections 4 and 10):

* legacy ``/v1/...``: ``{task_id, task_status: submitted|processing|succeed|failed,
  task_status_msg, task_info{external_task_id, parent_video}, task_result{videos|images|...},
  final_unit_deduction, created_at, updated_at}``
* the 2026 ``/tasks`` style: ``{id, status: ...|succeeded|..., message, external_id, outputs[],
  billing[], create_time, update_time}``

:class:`Task` is what both become. Timestamps (epoch milliseconds on the wire) become aware UTC
datetimes; the new standard's ``succeeded`` becomes :attr:`TaskStatus.SUCCEED`; a status nobody
knows raises :class:`~klingwatch.kling.errors.UnknownTaskStatus` with the raw payload rather than
being guessed at. Result items and their two spellings are :mod:`klingwatch.kling.results`.

Parsing is forgiving about *types* (an int ``task_id``, a numeric ``duration``, a missing
``task_result``) and strict about *meaning* (no id, an unknown status).

This is also the one place that writes a task as Kling does: :meth:`Task.to_payload` (or
:meth:`Task.to_legacy_dict` / :meth:`Task.to_tasks_dict`) gives the task object of a query
answer, list page or callback, or with ``create_answer=True`` the shorter ``data`` of a create
answer. The sandbox answers through it, and parsing what it writes gives the same task back.
:mod:`klingwatch.kling.envelope` writes the envelope, list pages and callback bodies around it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from klingwatch.clock import to_datetime, to_ms
from klingwatch.kling.errors import BadCallback, BadResponse, UnknownTaskStatus
from klingwatch.kling.results import (
    Audio,
    Billing,
    Element,
    Image,
    Results,
    Video,
    Voice,
    billing_payload,
    format_amount,
    read_billing,
    read_decimal,
    read_video,
    video_payload,
)

__all__ = [
    "RESULT_RETENTION",
    "ApiStandard",
    "Audio",
    "Billing",
    "Element",
    "Image",
    "Task",
    "TaskStatus",
    "Video",
    "Voice",
]

logger = logging.getLogger(__name__)

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
    #: Voices and elements made by custom-voice and custom-element tasks (not files to download).
    voices: tuple[Voice, ...] = ()
    elements: tuple[Element, ...] = ()
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
    def results(self) -> Results:
        """Every result item, by kind."""
        return Results(self.videos, self.images, self.audios, self.voices, self.elements)

    @property
    def result_urls(self) -> list[str]:
        """Every result file's URL (videos, images, audios), in order."""
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
        results = Results.from_legacy(_mapping(data.get("task_result")))
        parent = info.get("parent_video")
        units = read_decimal(data.get("final_unit_deduction"))
        return cls(
            id=task_id,
            status=TaskStatus.parse(data.get("task_status"), data),
            external_id=_text_or_none(info.get("external_task_id") or data.get("external_task_id")),
            status_msg=_message(data.get("task_status_msg")),
            created_at=_when(data.get("created_at"), "created_at"),
            updated_at=_when(data.get("updated_at"), "updated_at"),
            **results.task_fields(),
            parent_video=read_video(parent),
            units=units,
            billing=_legacy_billing(units, data.get("final_balance_deduction")),
            standard=ApiStandard.LEGACY,
            raw=data,
        )

    @classmethod
    def from_tasks_api(cls, data: dict[str, Any]) -> Task:
        """Parse a new-standard task object (also its create answer and callback)."""
        task_id = _id(data.get("id"), "id", data)
        results = Results.from_outputs(data.get("outputs"), task_id)
        billing = read_billing(data.get("billing"))
        unit_amounts = [b.amount for b in billing if b.amount is not None and b.is_unit]
        return cls(
            id=task_id,
            status=TaskStatus.parse(data.get("status"), data),
            external_id=_text_or_none(data.get("external_id") or data.get("external_task_id")),
            status_msg=_message(data.get("message")),
            created_at=_when(data.get("create_time"), "create_time"),
            updated_at=_when(data.get("update_time"), "update_time"),
            **results.task_fields(),
            parent_video=read_video(data.get("parent_video")),
            units=sum(unit_amounts, Decimal(0)) if unit_amounts else None,
            billing=billing,
            standard=ApiStandard.TASKS,
            raw=data,
        )

    # -- writing ----------------------------------------------------------------------------
    def to_payload(
        self, standard: ApiStandard | None = None, *, create_answer: bool = False
    ) -> dict[str, Any]:
        """This task as a task object of ``standard`` (default: the one it was read in or
        made for): :meth:`to_legacy_dict` or :meth:`to_tasks_dict`."""
        if (standard or self.standard) is ApiStandard.TASKS:
            return self.to_tasks_dict(create_answer=create_answer)
        return self.to_legacy_dict(create_answer=create_answer)

    def to_legacy_dict(self, *, create_answer: bool = False) -> dict[str, Any]:
        """This task as a legacy ``/v1`` task object (the ``data`` of a query answer).

        ``create_answer=True`` gives the create answer's shorter form: ``{task_id, task_status,
        task_info, created_at, updated_at}``. Timestamps are epoch ms, durations strings of
        seconds, ``final_unit_deduction`` a decimal string (a cash charge goes in
        ``final_balance_deduction.quota``).
        """
        info: dict[str, Any] = {}
        if self.external_id is not None:
            info["external_task_id"] = self.external_id
        if self.parent_video is not None:
            info["parent_video"] = video_payload(self.parent_video)
        out: dict[str, Any] = {"task_id": self.id, "task_status": self.status.value}
        if create_answer:
            return {**out, "task_info": info, **self._times("created_at", "updated_at")}
        out.update(
            task_status_msg=self.status_msg, task_info=info, task_result=self.results.to_legacy()
        )
        if self.units is not None:
            out["final_unit_deduction"] = format_amount(self.units)
        cash = [b for b in self.billing if b.amount is not None and not b.is_unit]
        if cash:
            total = sum((b.amount or Decimal(0) for b in cash), Decimal(0))
            rest = {k: v for b in cash for k, v in (b.model_extra or {}).items()}
            out["final_balance_deduction"] = {"quota": format_amount(total), **rest}
        return {**out, **self._times("created_at", "updated_at")}

    def to_tasks_dict(self, *, create_answer: bool = False) -> dict[str, Any]:
        """This task as a new-standard task object (``/tasks`` answers, callbacks).

        ``create_answer=True`` gives ``{id, status, create_time, update_time, external_id}``.
        ``external_id`` is always there (``null`` when the task has none). A task read from the
        legacy API reports its units as one ``unit`` billing item.
        """
        out: dict[str, Any] = {"id": self.id, "status": self.status.to_tasks_api()}
        if not create_answer:
            out["message"] = self.status_msg
        out.update(self._times("create_time", "update_time"))
        out["external_id"] = self.external_id
        if create_answer:
            return out
        out["outputs"] = self.results.to_outputs()
        billing = self.billing
        if not billing and self.units is not None:
            billing = (Billing(charge_type="unit", amount=self.units),)
        out["billing"] = [billing_payload(b) for b in billing]
        if self.parent_video is not None:
            out["parent_video"] = video_payload(self.parent_video)
        return out

    def _times(self, created_key: str, updated_key: str) -> dict[str, int]:
        times: dict[str, int] = {}
        if self.created_ms is not None:
            times[created_key] = self.created_ms
        if self.updated_ms is not None:
            times[updated_key] = self.updated_ms
        return times


# -- helpers ---------------------------------------------------------------------------------
def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any, key: str, payload: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise BadResponse(f"task object without a usable {key} ({value!r}): {payload!r:.300}")
    return str(value)


def _message(value: Any) -> str:
    return "" if value is None else str(value)


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


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


def _legacy_billing(units: Decimal | None, balance: Any) -> tuple[Billing, ...]:
    """The unit deduction, and the cash one (``final_balance_deduction.quota``) if any."""
    out: list[Billing] = []
    if units is not None:
        out.append(Billing(charge_type="unit", amount=units))
    cash = read_decimal(balance.get("quota")) if isinstance(balance, dict) else None
    if cash is not None:
        # The rest of it (``list_price``, ...) is kept beside the amount, and written back.
        rest = {k: v for k, v in balance.items() if k not in ("quota", *Billing.model_fields)}
        out.append(Billing.model_validate({**rest, "charge_type": "cash", "amount": cash}))
    return tuple(out)
