"""What the sandbox puts on the wire: Kling's envelope and its task objects in both standards.

The shapes are KLING_PROTOCOL.md's, field by field: the envelope ``{code, message, request_id,
data}`` (errors carry no ``data``), the legacy task object (``task_id``, ``task_status`` with the
spelling ``succeed``, ``task_result`` empty on a failed task, ms timestamps) and the new
standard's (``id``, ``status`` spelled ``succeeded``, ``outputs[]``, ``billing[]``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox.lifecycle import SandboxTask, format_units
from klingwatch.sandbox.state import SandboxError, media_url

__all__ = [
    "envelope",
    "epoch_ms",
    "error_response",
    "json_response",
    "legacy_create_answer",
    "legacy_task",
    "tasks_create_answer",
    "tasks_task",
]


def epoch_ms(seconds: float) -> int:
    """Sandbox-clock seconds as Kling's epoch milliseconds.

    Floored, never rounded up: a status seen at time t then never carries an ``updated_at`` later
    than t, whichever way the reader rounds its own clock.
    """
    return int(seconds * 1000)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def envelope(data: Any) -> Response:
    """A success answer: HTTP 200, code 0, "SUCCEED"."""
    return json_response(
        {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
    )


def error_response(exc: SandboxError) -> Response:
    """An error answer: the protocol's HTTP status, ``{code, message, request_id}``, no data."""
    headers = {"Retry-After": "1"} if exc.code == 1302 else None
    return json_response(
        {"code": exc.code, "message": exc.message, "request_id": str(uuid.uuid4())},
        status=exc.status,
        headers=headers,
    )


# -- legacy ----------------------------------------------------------------------------------
def _task_info(task: SandboxTask) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if task.external_id is not None:
        info["external_task_id"] = task.external_id
    if task.parent_video is not None:
        info["parent_video"] = dict(task.parent_video)
    return info


def legacy_create_answer(task: SandboxTask) -> dict[str, Any]:
    """``data`` of a legacy create answer."""
    return {
        "task_id": task.task_id,
        "task_status": TaskStatus.SUBMITTED.value,
        "task_info": _task_info(task),
        "created_at": epoch_ms(task.created),
        "updated_at": epoch_ms(task.created),
    }


def _element_id(task: SandboxTask) -> int:
    # Element and voice ids are numbers on the pages ("element_id": 0, "voice_id": "8500...").
    return int(task.task_id[-12:])


def _legacy_result(task: SandboxTask) -> dict[str, Any]:
    """``task_result`` of a succeeded task, in the shape its product's page shows."""
    outputs = task.product.outputs
    result: dict[str, Any] = {}
    if "video" in outputs:
        result["videos"] = [
            {
                "id": task.video_id,
                "url": media_url(task, f"{task.video_id}.mp4"),
                "duration": task.video_duration,
            }
        ]
    if "image" in outputs:
        images = [{"index": i, "url": media_url(task, f"{i}.png")} for i in range(task.n_images)]
        if task.product.name == "ai-multi-shot":  # kling-image-common-subject-completion.md
            images = [{"index": 0, **{f"url_{i + 1}": im["url"] for i, im in enumerate(images)}}]
        result["images"] = images
    if "audio" in outputs:  # kling-text-to-audio.md, kling-video-to-audio.md
        result["audios"] = [
            {
                "id": f"{task.task_id}-audio",
                "url_mp3": media_url(task, "audio.mp3"),
                "url_wav": media_url(task, "audio.wav"),
                "duration_mp3": task.audio_duration,
                "duration_wav": task.audio_duration,
            }
        ]
    if "speech" in outputs:  # kling-text-to-speech.md
        result["audios"] = [
            {
                "id": f"{task.task_id}-audio",
                "url": media_url(task, "audio.mp3"),
                "duration": task.audio_duration,
            }
        ]
    if "voice" in outputs:  # kling-2.6-voice-mgt.md
        result["voices"] = [
            {
                "voice_id": str(_element_id(task)),
                "voice_name": str(task.request.get("voice_name") or "voice"),
                "trial_url": media_url(task, "audio.mp3"),
                "owned_by": "sandbox",
            }
        ]
    if "element" in outputs:  # kling-o1-element-mgt.md
        result["elements"] = [
            {
                "element_id": _element_id(task),
                "element_name": task.request.get("element_name"),
                "element_description": task.request.get("element_description"),
                "reference_type": task.request.get("reference_type"),
                "element_image_list": task.request.get("element_image_list") or {},
                "element_video_list": task.request.get("element_video_list") or {},
                "tag_list": task.request.get("tag_list") or [],
                "owned_by": "sandbox",
                "status": "succeed",
            }
        ]
    return result


def legacy_task(task: SandboxTask, now: float) -> dict[str, Any]:
    """The legacy task object as a query at sandbox time ``now`` sees it."""
    status = task.status_at(now)
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status.value,
        "task_status_msg": task.fail_reason if status is TaskStatus.FAILED else "",
        "task_info": _task_info(task),
        "task_result": _legacy_result(task) if status is TaskStatus.SUCCEED else {},
        "created_at": epoch_ms(task.created),
        "updated_at": epoch_ms(task.updated_at(now)),
    }
    if status.is_terminal:
        out["final_unit_deduction"] = (
            format_units(task.units) if status is TaskStatus.SUCCEED else "0"
        )
    return out


# -- the new standard --------------------------------------------------------------------------
def tasks_create_answer(task: SandboxTask) -> dict[str, Any]:
    """``data`` of a new-standard create answer."""
    return {
        "id": task.task_id,
        "status": TaskStatus.SUBMITTED.to_tasks_api(),
        "create_time": epoch_ms(task.created),
        "update_time": epoch_ms(task.created),
        "external_id": task.external_id,
    }


def _outputs(task: SandboxTask) -> list[dict[str, Any]]:
    """``outputs[]`` of a succeeded task (kling-3.0-turbo-t2v.md, "Query Task")."""
    out: list[dict[str, Any]] = []
    legacy = _legacy_result(task)
    for video in legacy.get("videos", []):
        out.append({"type": "video", **video, "watermark_url": video["url"]})
    for i in range(task.n_images):
        url = media_url(task, f"{i}.png")
        out.append({"type": "image", "url": url, "watermark_url": url, "group_id": task.task_id})
    if legacy.get("audios"):
        out.append(
            {
                "type": "audio",
                "id": f"{task.task_id}-audio",
                "mp3_url": media_url(task, "audio.mp3"),
                "wav_url": media_url(task, "audio.wav"),
                "mp3_duration": task.audio_duration,
                "wav_duration": task.audio_duration,
            }
        )
    for voice in legacy.get("voices", []):
        out.append(
            {
                "type": "voice",
                "id": voice["voice_id"],
                "name": voice["voice_name"],
                "url": voice["trial_url"],
                "owned_by": "sandbox",
                "status": "succeeded",
            }
        )
    for element in legacy.get("elements", []):
        out.append(
            {
                "type": "element",
                "id": str(element["element_id"]),
                "name": element["element_name"],
                "description": element["element_description"],
                "element_type": "multi_image_elements"
                if element["reference_type"] == "image_refer"
                else "video_character_elements",
                "owned_by": "sandbox",
                "status": "succeeded",
            }
        )
    return out


def tasks_task(task: SandboxTask, now: float) -> dict[str, Any]:
    """The new-standard task object at sandbox time ``now`` (legacy-created tasks too)."""
    status = task.status_at(now)
    succeeded = status is TaskStatus.SUCCEED
    billing = []
    if status.is_terminal:
        billing.append(
            {
                "charge_type": "unit",
                "amount": format_units(task.units) if succeeded else "0",
                "package_type": task.family.value,
            }
        )
    return {
        "id": task.task_id,
        "status": status.to_tasks_api(),
        "message": task.fail_reason if status is TaskStatus.FAILED else "",
        "create_time": epoch_ms(task.created),
        "update_time": epoch_ms(task.updated_at(now)),
        "external_id": task.external_id,
        "outputs": _outputs(task) if succeeded else [],
        "billing": billing,
    }
