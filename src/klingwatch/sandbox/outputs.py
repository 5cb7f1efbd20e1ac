"""A sandbox task as Kling reports it at a given moment, and what its product makes.

:func:`task_at` turns a :class:`~klingwatch.sandbox.lifecycle.SandboxTask` and a sandbox-clock
time into a :class:`klingwatch.kling.models.Task`: its status then, its timestamps (epoch
milliseconds, floored), its units once it ended and, once it succeeded, the results its
product's page shows. Every answer, list page and callback is that task written by
:meth:`Task.to_payload <klingwatch.kling.models.Task.to_payload>`, so the sandbox and the client
share one wire format.

The result files are served under ``/sandbox/media/`` (:mod:`klingwatch.sandbox.media`).
"""

from __future__ import annotations

from datetime import datetime

from klingwatch.clock import to_datetime
from klingwatch.kling.models import Task, TaskStatus
from klingwatch.kling.results import Audio, Billing, Element, Image, Results, Video, Voice
from klingwatch.sandbox.lifecycle import SandboxTask

__all__ = ["created_answer", "epoch_ms", "media_url", "result_video", "task_at"]


def epoch_ms(seconds: float) -> int:
    """Sandbox-clock seconds as Kling's epoch milliseconds.

    Floored, never rounded up: a status seen at time t then never carries an ``updated_at`` later
    than t, whichever way the reader rounds its own clock.
    """
    return int(seconds * 1000)


def media_url(task: SandboxTask, name: str) -> str:
    """Where the sandbox serves one of a task's result files."""
    return f"{task.base_url}/sandbox/media/{task.task_id}/{name}"


def task_at(task: SandboxTask, now: float) -> Task:
    """``task`` as a query at sandbox time ``now`` sees it."""
    status = task.status_at(now)
    ended = status.is_terminal
    # A failed task deducts nothing ("final_unit_deduction": "0").
    units = (task.units if status is TaskStatus.SUCCEED else 0) if ended else None
    results = _results(task) if status is TaskStatus.SUCCEED else Results()
    return Task(
        id=task.task_id,
        status=status,
        external_id=task.external_id,
        status_msg=task.fail_reason if status is TaskStatus.FAILED else "",
        created_at=_stamp(task.created),
        updated_at=_stamp(task.updated_at(now)),
        **results.task_fields(),
        parent_video=task.parent_video,
        units=units,
        billing=(Billing(charge_type="unit", amount=units, package_type=task.family.value),)
        if units is not None
        else (),
        standard=task.standard,
    )


def created_answer(task: SandboxTask) -> Task:
    """What the create of ``task`` answers: the task as just submitted (KLING_PROTOCOL.md
    section 3), whatever its plan."""
    return Task(
        id=task.task_id,
        status=TaskStatus.SUBMITTED,
        external_id=task.external_id,
        created_at=_stamp(task.created),
        updated_at=_stamp(task.created),
        parent_video=task.parent_video,
        standard=task.standard,
    )


def result_video(task: SandboxTask) -> Video:
    """The video a (video) task makes; also what a later extend reports as its parent."""
    url = media_url(task, f"{task.video_id}.mp4")
    duration = float(task.video_duration) if task.video_duration is not None else None
    return Video(id=task.video_id, url=url, watermark_url=_watermark(task, url), duration=duration)


def _watermark(task: SandboxTask, url: str) -> str | None:
    """The watermarked copy's URL, when the request asked for one (``watermark_info``, in the
    body or in ``options``: kling-avatar.md, kling-3.0-turbo-t2v.md); the sandbox's copy is the
    same file."""
    options = task.request.get("options")
    for where in (task.request, options if isinstance(options, dict) else {}):
        info = where.get("watermark_info")
        if isinstance(info, dict) and info.get("enabled"):
            return url
    return None


def _stamp(seconds: float) -> datetime | None:
    return to_datetime(epoch_ms(seconds))


def _element_id(task: SandboxTask) -> int:
    # Element and voice ids are numbers on the pages ("element_id": 0, "voice_id": "8500...").
    return int(task.task_id[-12:])


def _results(task: SandboxTask) -> Results:
    """What a succeeded task made, in the shape its product's page shows."""
    outputs = task.product.outputs
    request = task.request
    videos = (result_video(task),) if "video" in outputs else ()
    images: tuple[Image, ...] = ()
    if "image" in outputs:
        urls = [media_url(task, f"{i}.png") for i in range(task.n_images)]
        if task.product.name == "ai-multi-shot":  # kling-image-common-subject-completion.md
            images = tuple(Image(index=0, url=u, shot=i + 1) for i, u in enumerate(urls))
        else:
            images = tuple(
                Image(index=i, url=u, watermark_url=_watermark(task, u)) for i, u in enumerate(urls)
            )
    audios: tuple[Audio, ...] = ()
    seconds = float(task.audio_duration) if task.audio_duration is not None else None
    ident = f"{task.task_id}-audio"
    mp3 = media_url(task, "audio.mp3")
    if "audio" in outputs:  # kling-text-to-audio.md, kling-video-to-audio.md
        wav = media_url(task, "audio.wav")
        audios = (Audio(id=ident, url=mp3, mp3_url=mp3, wav_url=wav, duration=seconds),)
    if "speech" in outputs:  # kling-text-to-speech.md
        audios = (Audio(id=ident, url=mp3, duration=seconds),)
    voices: tuple[Voice, ...] = ()
    if "voice" in outputs:  # kling-2.6-voice-mgt.md
        name = str(request.get("voice_name") or "voice")
        voices = (Voice(id=str(_element_id(task)), name=name, url=mp3, owned_by="sandbox"),)
    elements: tuple[Element, ...] = ()
    if "element" in outputs:  # kling-o1-element-mgt.md
        element = Element(
            id=str(_element_id(task)),
            name=request.get("element_name"),
            description=request.get("element_description"),
            owned_by="sandbox",
            status=TaskStatus.SUCCEED.value,
            reference_type=request.get("reference_type"),
            element_image_list=request.get("element_image_list") or {},
            element_video_list=request.get("element_video_list") or {},
            tag_list=request.get("tag_list") or [],
        )
        elements = (element,)
    return Results(videos, images, audios, voices, elements)
