"""Hypothesis strategies for one task's status reports, shared by the door and ledger tests.

A generated lifecycle is what Kling and klingwatch could really report about one task, in the
order it happened: optionally some lost creates (``unknown``) each followed by a recovery that
found nothing (``queued``), then either a rejection, or ``submitted`` -> maybe ``processing`` ->
maybe a final status. Every status may be reported several times (a create answer, a list page,
a callback, a get), and a report may leave out facts (a task id, the result) that another report
of the same status carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from klingwatch.store import LocalStatus, Observation, Source

__all__ = ["Lifecycle", "lifecycles"]

_REPORTERS = [Source.GET, Source.LIST, Source.CALLBACK]


@dataclass(frozen=True)
class Lifecycle:
    """The ordered reports about one task, and what its final state must be."""

    reports: list[Observation]
    final_status: LocalStatus
    task_id: str | None
    result: dict[str, Any] | None
    status_msg: str | None


@st.composite
def lifecycles(draw: st.DrawFn, *, external_task_id: str = "ext-1") -> Lifecycle:
    """One task's reports, in order (the first always gets past ``unknown``)."""
    clock = [1_000.0]
    kling_ms = [1_767_225_600_000]
    reports: list[Observation] = []

    def report(status: LocalStatus, source: Source, **facts: Any) -> None:
        clock[0] += draw(st.floats(min_value=0.5, max_value=60))
        reports.append(
            Observation(
                status=status,
                source=source,
                at=clock[0],
                external_task_id=external_task_id,
                detail=f"report {len(reports)}",
                **facts,
            )
        )

    for _ in range(draw(st.integers(0, 2))):
        report(LocalStatus.UNKNOWN, Source.CREATE)
        report(LocalStatus.QUEUED, Source.RECOVERY)

    if draw(st.booleans()) and draw(st.booleans()):  # about one in four is rejected
        if draw(st.booleans()):
            report(LocalStatus.UNKNOWN, Source.CREATE)
        msg = draw(st.sampled_from(["content policy", "bad parameter"]))
        report(LocalStatus.REJECTED, Source.CREATE, status_msg=msg)
        return Lifecycle(reports, LocalStatus.REJECTED, None, None, msg)

    task_id = draw(st.from_regex(r"\A8[0-9]{17}\Z"))
    created = kling_ms[0]
    last = draw(
        st.sampled_from(
            [LocalStatus.SUBMITTED, LocalStatus.PROCESSING, LocalStatus.SUCCEED, LocalStatus.FAILED]
        )
    )
    path = [LocalStatus.SUBMITTED]
    if last is not LocalStatus.SUBMITTED:
        if last is LocalStatus.PROCESSING or draw(st.booleans()):
            path.append(LocalStatus.PROCESSING)
        if last.is_final:
            path.append(last)

    result: dict[str, Any] | None = None
    msg = None
    for status in path:
        kling_ms[0] += draw(st.integers(1_000, 600_000))
        facts: dict[str, Any] = {"kling_created_ms": created, "kling_updated_ms": kling_ms[0]}
        if status is LocalStatus.SUCCEED:
            result = {"videos": [{"id": "v1", "url": f"https://cdn.example/{task_id}.mp4"}]}
            facts["result"] = result
            facts["units"] = "1.5"
        if status is LocalStatus.FAILED:
            msg = "Image pixel is invalid"
            facts["status_msg"] = msg
        repeats = draw(st.integers(1, 3))
        for n in range(repeats):
            source = Source.CREATE if status is LocalStatus.SUBMITTED and n == 0 else None
            source = source or draw(st.sampled_from(_REPORTERS))
            given = dict(facts)
            # Later repeats may leave out what the first one said.
            if n and draw(st.booleans()):
                given.pop("result", None)
                given.pop("status_msg", None)
            report(
                status, source, task_id=task_id if n == 0 or draw(st.booleans()) else None, **given
            )
    return Lifecycle(reports, last, task_id, result, msg)
