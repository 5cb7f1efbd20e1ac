from __future__ import annotations

from klingwatch.kling.models import Task
from klingwatch.monitor.observe import observe_create, observe_task
from klingwatch.store import LocalStatus, Source

LEGACY_DONE = {
    "task_id": "866889456698785798",
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"external_task_id": "my-id"},
    "task_result": {"videos": [{"id": "v1", "url": "https://x/v.mp4", "duration": "5.1"}]},
    "final_unit_deduction": "1.5",
    "created_at": 1722769557708,
    "updated_at": 1722769657708,
}


def test_a_finished_legacy_task_becomes_an_observation_with_results_units_and_ms_times() -> None:
    obs = observe_task(Task.from_payload(LEGACY_DONE), source=Source.LIST, at=100.0)
    assert obs.status is LocalStatus.SUCCEED
    assert obs.source is Source.LIST
    assert obs.external_task_id == "my-id"
    assert obs.task_id == "866889456698785798"
    assert obs.kling_created_ms == 1722769557708
    assert obs.kling_updated_ms == 1722769657708
    assert obs.result == {"videos": [{"id": "v1", "url": "https://x/v.mp4", "duration": 5.1}]}
    assert obs.units == "1.5"
    assert obs.status_msg is None


def test_a_new_standard_failure_keeps_its_reason_and_maps_succeeded_spelling() -> None:
    failed = Task.from_payload(
        {"id": "9", "status": "failed", "message": "Image pixel is invalid", "create_time": 1}
    )
    obs = observe_task(failed, source=Source.GET, at=1.0, local_id=7)
    assert obs.status is LocalStatus.FAILED
    assert obs.status_msg == "Image pixel is invalid"
    assert obs.local_id == 7
    assert obs.external_task_id is None  # the local id identifies it
    assert obs.result is None
    done = Task.from_payload({"id": "9", "status": "succeeded", "outputs": []})
    assert observe_task(done, source=Source.GET, at=1.0).status is LocalStatus.SUCCEED


def test_a_create_answer_is_a_submitted_observation_from_create() -> None:
    task = Task.from_payload({**LEGACY_DONE, "task_status": "submitted", "task_result": {}})
    obs = observe_create(task, local_id=3, at=5.0)
    assert (obs.status, obs.source, obs.local_id) == (LocalStatus.SUBMITTED, Source.CREATE, 3)
