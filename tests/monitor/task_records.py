"""A :class:`TaskRecord` factory for tests of code that reads records (no ledger needed)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from klingwatch.store.records import LocalStatus, TaskRecord

_BASE = TaskRecord(
    local_id=7,
    batch="spring",
    external_task_id="spring-0001",
    task_id="866889456698785798",
    product="text2video",
    family="video",
    request={"prompt": "a cat"},
    model="kling-v2-6",
    mode="std",
    duration="5",
    slot_cost=1,
    status=LocalStatus.SUCCEED,
    status_msg=None,
    kling_created_ms=None,
    kling_updated_ms=None,
    kling_processing_ms=None,
    queued_at=0.0,
    sent_at=None,
    submitted_at=None,
    processing_at=None,
    finished_at=None,
    detected_at=None,
    result=None,
    units=None,
    polls=0,
    last_polled_at=None,
    next_look_at=None,
    stuck=False,
    stuck_reason=None,
    callback_url=None,
    retry_of=None,
    source_line=None,
    send_attempts=1,
)


def task_record(**fields: Any) -> TaskRecord:
    """A succeeded text2video task of batch ``spring``, with ``fields`` changed."""
    return replace(_BASE, **fields)
