"""Result files of a task and the paths a template gives them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from task_records import task_record

from klingwatch.monitor.layout import (
    PathTemplate,
    ResultFile,
    TemplateError,
    result_files,
    sanitize,
)
from klingwatch.store.records import TaskRecord

RESULT = {
    "videos": [
        {"id": "v1", "url": "https://cdn.example/a/v1.mp4", "watermark_url": "https://cdn/w1.mp4"}
    ],
    "images": [{"index": 0, "url": "https://cdn.example/i0.PNG?sig=x"}, {"index": 1, "url": ""}],
    "audios": [{"id": "a1", "wav_url": "https://cdn.example/a1.wav"}],
}


def task(**kw: Any) -> TaskRecord:
    return task_record(**{"result": RESULT, **kw})


def test_every_item_with_a_url_is_one_file_in_a_stable_order() -> None:
    files = result_files(RESULT)
    assert [(f.kind, f.index, f.ext) for f in files] == [
        ("video", 0, "mp4"),
        ("image", 1, "png"),
        ("audio", 2, "wav"),
    ]
    assert [f.ledger_index for f in files] == [0, 1, 2]


def test_watermarked_variants_are_added_only_when_asked() -> None:
    files = result_files(RESULT, watermark=True)
    marked = [f for f in files if f.variant == "watermark"]
    assert [(f.index, f.url, f.ledger_index) for f in marked] == [(0, "https://cdn/w1.mp4", 1000)]
    assert result_files(None) == []
    assert result_files({"videos": "nonsense"}) == []


def test_the_default_template_names_files_by_batch_external_id_and_index() -> None:
    tpl = PathTemplate()
    files = result_files(RESULT, watermark=True)
    names = [str(tpl.relative(task(), f)) for f in files]
    assert names == [
        "spring/spring-0001_0.mp4",
        "spring/spring-0001_0_watermark.mp4",
        "spring/spring-0001_1.png",
        "spring/spring-0001_2.wav",
    ]
    assert tpl.destination(Path("/dl"), task(), files[0]) == Path("/dl/spring/spring-0001_0.mp4")


def test_template_fields_and_format_specs() -> None:
    tpl = PathTemplate("{product}/{model}/{kind}/{task_id}-{index:03d}{variant}.{ext}")
    file = ResultFile(kind="video", index=4, url="https://x/y")
    assert tpl.relative(task(), file) == PurePosixPath(
        "text2video/kling-v2-6/video/866889456698785798-004.mp4"
    )


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "/abs/path", "..", "a/../../b", "x\x00y", ".hidden", "C:\\win"],
)
def test_ids_can_never_leave_the_target_folder(hostile: str) -> None:
    tpl = PathTemplate()
    rel = tpl.relative(
        task(batch=hostile, external_task_id=hostile), ResultFile("video", 0, "https://x/v.mp4")
    )
    assert len(rel.parts) == 2
    assert all(p not in ("", ".", "..") and not p.startswith(".") for p in rel.parts)
    assert "\x00" not in str(rel)
    root = Path("/downloads")
    assert tpl.destination(root, task(batch=hostile), ResultFile("video", 0, "u")).is_relative_to(
        root
    )


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("../{batch}/{index}.{ext}", "may not use '..'"),
        ("/tmp/{index}.{ext}", "absolute"),
        ("{batch}/{prompt}.{ext}", "unknown field {prompt}"),
        ("{batch}/{index:q}.{ext}", "cannot be filled"),
        ("{batch}/{index", "malformed"),
        ("  ", "empty"),
    ],
)
def test_a_bad_template_is_refused_with_what_to_fix(template: str, complaint: str) -> None:
    with pytest.raises(TemplateError, match=complaint.replace("{", r"\{").replace("}", r"\}")):
        PathTemplate(template)


def test_sanitize_keeps_readable_names() -> None:
    assert sanitize("kling-v2-6") == "kling-v2-6"
    assert sanitize("café clip #1") == "café_clip_1"
    assert sanitize(None) == "_"
    assert sanitize("...") == "_"
