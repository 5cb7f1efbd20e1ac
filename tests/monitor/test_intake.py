"""Reading batch files: formats, defaults, ids, and one clear line per bad line."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from klingwatch.monitor.intake import (
    FileFormat,
    IntakeError,
    derive_external_id,
    detect_format,
    parse_assignments,
    read_batch,
)

Writer = Callable[[str, str], str]


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Writer:
    """Write a file in a fresh working directory and return the name a user would type."""
    monkeypatch.chdir(tmp_path)

    def _write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return name

    return _write


# -- formats ------------------------------------------------------------------------------------
def test_jsonl_lines_become_requests_with_their_product_and_id(write: Writer) -> None:
    name = write(
        "ads.jsonl",
        '{"prompt": "a red fox", "mode": "pro", "duration": 10}\n'
        "\n"
        "# a comment\n"
        '{"product": "image-generation", "prompt": "a cat", "n": 3, "external_task_id": "cat-1"}\n',
    )
    batch = read_batch(name)
    assert batch.ok
    assert batch.format is FileFormat.JSONL
    assert batch.batch == "ads"
    fox, cat = batch.lines
    assert (fox.line, fox.product, fox.mode, fox.duration) == (1, "text2video", "pro", "10")
    assert fox.request == {"prompt": "a red fox", "mode": "pro", "duration": "10"}
    assert fox.external_task_id.startswith("kw-ads-")
    assert not fox.explicit_id
    assert (cat.line, cat.product, cat.family, cat.slot_cost) == (4, "image-generation", "image", 3)
    assert cat.external_task_id == "cat-1"
    assert cat.explicit_id
    assert cat.source_line == "ads.jsonl:4"
    assert batch.slots_needed() == {"video": 1, "image": 3}


def test_csv_cells_are_parsed_as_numbers_json_and_text(write: Writer) -> None:
    name = write(
        "imgs.csv",
        "product,prompt,n,image_fidelity,settings.duration,camera_control\n"
        "image-generation,1984,2,0.5,,\n"
        'text2video,"a fox, running",,,,"{""type"": ""simple"", ""config"": {""zoom"": 5}}"\n',
    )
    batch = read_batch(name)
    assert batch.ok, batch.problems
    first, second = batch.lines
    assert first.request == {"prompt": "1984", "n": 2, "image_fidelity": 0.5}
    assert first.slot_cost == 2
    assert second.line == 3
    assert second.request["prompt"] == "a fox, running"
    assert second.request["camera_control"]["config"]["zoom"] == 5


def test_csv_dotted_columns_nest_for_new_standard_products(write: Writer) -> None:
    name = write("t.csv", "prompt,settings.duration\nwaves,8\n")
    batch = read_batch(name, product="text-to-video/kling-3.0")
    assert batch.ok, batch.problems
    assert batch.lines[0].request["settings"] == {"duration": 8}
    assert batch.lines[0].duration == "8"
    assert batch.lines[0].model == "kling-3.0"


def test_plain_text_is_one_prompt_per_line_skipping_blanks_and_comments(write: Writer) -> None:
    name = write("p.txt", "# spring campaign\nA fox in snow\n\n   \nA cat, on a roof\n")
    batch = read_batch(name)
    assert [(x.line, x.request) for x in batch.lines] == [
        (2, {"prompt": "A fox in snow"}),
        (5, {"prompt": "A cat, on a roof"}),
    ]


def test_stdin_is_read_for_dash_and_format_comes_from_content() -> None:
    jsonl = read_batch("-", stdin=io.StringIO('{"prompt": "a"}\n{"prompt": "b"}\n'))
    assert jsonl.format is FileFormat.JSONL
    assert jsonl.batch == "stdin"
    assert len(jsonl.lines) == 2
    csv_in = read_batch("-", stdin=io.StringIO("prompt,mode\na fox,pro\n"))
    assert csv_in.format is FileFormat.CSV
    assert csv_in.lines[0].mode == "pro"
    text = read_batch("-", stdin=io.StringIO("a fox, running, at dawn\n"))
    assert text.format is FileFormat.TEXT
    assert text.lines[0].request == {"prompt": "a fox, running, at dawn"}


def test_detect_format_prefers_the_extension() -> None:
    assert detect_format("x.ndjson", "hello") is FileFormat.JSONL
    assert detect_format("x.csv", "hello") is FileFormat.CSV
    assert detect_format("x.txt", '{"prompt": "a"}') is FileFormat.TEXT
    assert detect_format("x", "prompt\n") is FileFormat.TEXT  # one column is just a prompt
    assert detect_format("x.json", '[{"prompt": "a"}]') is FileFormat.JSON
    assert detect_format("x.json", '{"prompt": "a"}') is FileFormat.JSONL
    assert detect_format("-", ' [{"prompt": "a"}]') is FileFormat.JSON
    assert detect_format("x.jsonl", '["a"]') is FileFormat.JSONL


# -- defaults -----------------------------------------------------------------------------------
def test_set_values_are_json_when_they_parse_and_dotted_keys_nest() -> None:
    assert parse_assignments(
        ["mode=pro", "duration=5", "settings.audio=true", "prompt=1984", "model_name=kling-v2-6"]
    ) == {
        "mode": "pro",
        "duration": 5,
        "settings": {"audio": True},
        "prompt": "1984",
        "model_name": "kling-v2-6",
    }


@pytest.mark.parametrize("item", ["mode", "=pro", "settings..duration=5"])
def test_a_malformed_set_says_how_to_write_it(item: str) -> None:
    with pytest.raises(IntakeError, match="expected KEY=VALUE"):
        parse_assignments([item])


def test_defaults_apply_to_every_line_and_the_line_wins(write: Writer) -> None:
    name = write("d.jsonl", '{"prompt": "a"}\n{"prompt": "b", "mode": "std"}\n')
    batch = read_batch(name, defaults=parse_assignments(["mode=pro", "duration=10"]))
    assert [(x.mode, x.duration) for x in batch.lines] == [("pro", "10"), ("std", "10")]


def test_product_default_comes_from_the_flag_and_a_line_may_override(write: Writer) -> None:
    name = write("m.jsonl", '{"prompt": "a"}\n{"prompt": "b", "product": "text2video"}\n')
    batch = read_batch(name, product="image-generation")
    assert [x.product for x in batch.lines] == ["image-generation", "text2video"]


def test_unknown_product_flag_is_one_clear_error(write: Writer) -> None:
    name = write("m.txt", "a fox\n")
    with pytest.raises(IntakeError, match=r"^--product: unknown product 'videos'"):
        read_batch(name, product="videos")


# -- external ids -------------------------------------------------------------------------------
def test_reading_the_same_file_twice_gives_the_same_ids(write: Writer) -> None:
    name = write("same.txt", "a fox\na cat\n")
    first = [x.external_task_id for x in read_batch(name).lines]
    again = [x.external_task_id for x in read_batch(name).lines]
    assert first == again
    assert len(set(first)) == 2


def test_identical_lines_are_still_two_tasks(write: Writer) -> None:
    name = write(
        "twice.jsonl", '{"prompt": "a fox", "duration": 5}\n{"prompt": "a fox", "duration": "5"}\n'
    )
    ids = [x.external_task_id for x in read_batch(name).lines]
    assert len(set(ids)) == 2


def test_ids_depend_on_batch_and_content_and_are_kling_safe() -> None:
    base = derive_external_id("Spring Ads!", "text2video", {"prompt": "a"})
    assert base.startswith("kw-spring-ads-")
    assert len(base) == len("kw-spring-ads-") + 12
    assert base == derive_external_id("Spring Ads!", "text2video", {"prompt": "a"})
    assert base != derive_external_id("Spring Ads!", "text2video", {"prompt": "b"})
    assert base != derive_external_id("other", "text2video", {"prompt": "a"})
    assert base != derive_external_id("Spring Ads!", "text2video", {"prompt": "a"}, 1)


def test_a_changed_default_makes_new_ids(write: Writer) -> None:
    name = write("c.txt", "a fox\n")
    std = read_batch(name, defaults={"mode": "std"}).lines[0].external_task_id
    pro = read_batch(name, defaults={"mode": "pro"}).lines[0].external_task_id
    assert std != pro


# -- bad lines: FILE:LINE: what is wrong and how to fix it --------------------------------------
def _messages(name: str, **kw: Any) -> list[str]:
    return [str(p) for p in read_batch(name, **kw).problems]


def test_invalid_json_line(write: Writer) -> None:
    name = write("b.jsonl", '{"prompt": "ok"}\n{"prompt": "x",}\n')
    assert _messages(name) == [
        "b.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes at "
        'column 16); each line must be one JSON object such as {"prompt": "a red fox running"}'
    ]


def test_a_json_line_that_is_not_an_object(write: Writer) -> None:
    name = write("b.jsonl", '["a fox"]\n"a cat"\n')
    assert _messages(name) == [
        'b.jsonl:1: expected a JSON object such as {"prompt": "..."}, got a list',
        'b.jsonl:2: expected a JSON object such as {"prompt": "..."}, got a string',
    ]


def test_a_request_the_product_refuses(write: Writer) -> None:
    name = write(
        "b.jsonl",
        '{"prompt": "x", "duration": 7}\n{"mode": "pro"}\n{"prompt": "  "}\n'
        '{"prompt": "x", "mode": "ultra", "cfg_scale": 2}\n',
    )
    assert _messages(name) == [
        'b.jsonl:1: text2video: duration: kling-v1 offers "5" or "10" (seconds), got 7',
        "b.jsonl:2: text2video: prompt: is required; describe what to generate",
        "b.jsonl:3: text2video: prompt: is empty; describe what to generate",
        "b.jsonl:4: text2video: mode: must be 'std', 'pro' or '4k', got 'ultra'; "
        "cfg_scale: must be between 0 and 1, got 2",
    ]


def test_a_new_standard_duration_out_of_range(write: Writer) -> None:
    name = write("b.jsonl", '{"prompt": "x", "settings": {"duration": 20}}\n')
    assert _messages(name, product="text-to-video/kling-2.6") == [
        "b.jsonl:1: text-to-video/kling-2.6: settings.duration: 20 s is not offered by "
        "kling-2.6; use 5 or 10"
    ]


def test_an_unknown_product_on_a_line(write: Writer) -> None:
    name = write(
        "b.jsonl", '{"product": "txt2vid", "prompt": "x"}\n{"product": 3, "prompt": "x"}\n'
    )
    first, second = _messages(name)
    assert first.startswith("b.jsonl:1: unknown product 'txt2vid'; known products: text2video")
    assert second == 'b.jsonl:2: product must be a string such as "text2video"'


def test_duplicate_explicit_ids_name_both_lines(write: Writer) -> None:
    name = write(
        "b.jsonl",
        '{"prompt": "a", "external_task_id": "fox-1"}\n'
        '{"prompt": "b"}\n'
        '{"prompt": "c", "external_task_id": "fox-1"}\n',
    )
    assert _messages(name) == [
        "b.jsonl:3: external_task_id 'fox-1' is also used on line 1; every line needs its own"
    ]


def test_bad_explicit_ids(write: Writer) -> None:
    name = write(
        "b.jsonl",
        '{"prompt": "a", "external_task_id": 5}\n'
        '{"prompt": "b", "external_task_id": "has space"}\n'
        f'{{"prompt": "c", "external_task_id": "{"x" * 97}"}}\n',
    )
    assert _messages(name) == [
        "b.jsonl:1: external_task_id must be a non-empty string; remove it to let klingwatch "
        "derive one",
        "b.jsonl:2: external_task_id 'has space' may use only letters, digits and . _ : - "
        "(and must start with a letter or digit)",
        "b.jsonl:3: external_task_id is 97 characters; keep it to 96",
    ]


def test_an_empty_external_task_id_means_none_as_in_klings_examples(write: Writer) -> None:
    name = write(
        "b.jsonl",
        '{"prompt": "a", "external_task_id": ""}\n'
        '{"product": "text-to-video/kling-3.0-turbo", "prompt": "b", '
        '"options": {"external_task_id": "", "callback_url": ""}}\n'
        '{"product": "text-to-video/kling-3.0-turbo", "prompt": "c", '
        '"options": {"external_task_id": "mine-3"}}\n',
    )
    found = read_batch(name)

    assert not found.problems
    first, second, third = found.lines
    assert first.external_task_id.startswith("kw-b-")
    assert not first.explicit_id
    assert second.external_task_id.startswith("kw-b-")
    assert second.request["options"] == {}
    assert (third.external_task_id, third.explicit_id) == ("mine-3", True)


def test_csv_row_with_too_many_cells_and_bad_json_cell(write: Writer) -> None:
    name = write(
        "b.csv",
        'prompt,camera_control\na fox,{"type": "simple"\na cat,x,y\n"a long\nprompt",\n',
    )
    assert _messages(name) == [
        "b.csv:2: column camera_control: not valid JSON (Expecting ',' delimiter: line 1 "
        "column 18 (char 17)); fix the cell or quote it as text",
        "b.csv:3: 3 cells but the header (line 1) has 2 columns; quote cells that contain commas",
    ]


def test_csv_header_with_a_repeated_column(write: Writer) -> None:
    name = write("b.csv", "prompt,mode,prompt\na,pro,b\n")
    assert _messages(name) == [
        "b.csv:1: the header row has repeated column prompt; name every column once"
    ]


def test_stdin_problems_are_reported_as_stdin() -> None:
    batch = read_batch("-", stdin=io.StringIO('{"prompt": "a"}\n{"mode": "pro"}\n'))
    assert [str(p) for p in batch.problems] == [
        "<stdin>:2: text2video: prompt: is required; describe what to generate"
    ]


def test_raise_for_problems_lists_every_line_and_says_nothing_was_queued(write: Writer) -> None:
    name = write("b.jsonl", '{"mode": "pro"}\n{"prompt": "ok"}\n[]\n')
    batch = read_batch(name)
    assert len(batch.lines) == 1  # the valid line is kept for --skip-invalid
    with pytest.raises(IntakeError) as info:
        batch.raise_for_problems()
    text = str(info.value)
    assert text.startswith("2 invalid lines in b.jsonl; nothing was queued")
    assert "\nb.jsonl:1: " in text
    assert "\nb.jsonl:3: " in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("\n# only comments\n", "empty.txt: no requests found"),
    ],
)
def test_an_empty_file_is_an_error(write: Writer, content: str, message: str) -> None:
    name = write("empty.txt", content)
    with pytest.raises(IntakeError, match=message):
        read_batch(name)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(IntakeError, match=r"nope.jsonl: no such file; check the path$"):
        read_batch(missing)


def test_a_json_array_of_requests_is_read_with_each_items_line(write: Writer) -> None:
    name = write(
        "list.json",
        '[\n  {"prompt": "a fox"},\n  {\n    "prompt": "a cat",\n    "mode": "pro"\n  },\n'
        '  "a dog",\n  {"mode": "pro"}\n]\n',
    )
    batch = read_batch(name)
    assert batch.format is FileFormat.JSON
    assert [(x.line, x.request) for x in batch.lines] == [
        (2, {"prompt": "a fox"}),
        (3, {"prompt": "a cat", "mode": "pro"}),
    ]
    first, second = (str(p) for p in batch.problems)
    assert first == 'list.json:7: expected a JSON object such as {"prompt": "..."}, got a string'
    assert second.startswith("list.json:8: text2video: prompt: ")


def test_a_broken_json_array_names_the_line(write: Writer) -> None:
    name = write("broken.json", '[\n  {"prompt": "a fox"},\n  {"prompt": }\n]\n')
    assert _messages(name) == [
        "broken.json:3: not valid JSON (Expecting value at column 14); the file must be one "
        'JSON array of request objects such as [{"prompt": "a red fox running"}]'
    ]


# -- warnings and --strict --------------------------------------------------------------------
def test_warnings_name_the_line_and_the_line_is_still_queued(write: Writer) -> None:
    name = write(
        "b.jsonl",
        '{"prompt": "a", "durration": 5}\n'
        '{"prompt": "b", "model_name": "kling-v2-6-pro"}\n'
        '{"prompt": "c", "negative_promt": "blur"}\n'
        '{"prompt": "d"}\n',
    )
    found = read_batch(name)

    assert [str(w) for w in found.warnings] == [
        "b.jsonl:1: warning: text2video: durration: is not a field Kling documents here; did you "
        "mean 'duration'? (sent as given)",
        "b.jsonl:2: warning: text2video: model_name: 'kling-v2-6-pro' is not a text2video model "
        "klingwatch knows; did you mean 'kling-v2-6'? sent as given (Kling refuses a model it "
        "does not have)",
        "b.jsonl:3: warning: text2video: negative_promt: is not a field Kling documents here; "
        "did you mean 'negative_prompt'? (sent as given)",
    ]
    assert len(found.lines) == 4
    assert not found.problems
    assert found.lines[0].request["durration"] == 5  # unknown fields still pass through
    found.raise_for_problems()  # warnings alone do not stop a batch


def test_strict_makes_every_warning_an_error_and_nothing_is_queued(write: Writer) -> None:
    name = write("b.jsonl", '{"prompt": "a", "durration": 5}\n{"prompt": "b"}\n')

    with pytest.raises(IntakeError) as caught:
        read_batch(name).raise_for_problems(strict=True)

    assert str(caught.value).splitlines() == [
        "1 warning in b.jsonl and --strict is set; nothing was queued (fix them, or drop "
        "--strict to send as written):",
        "b.jsonl:1: warning: text2video: durration: is not a field Kling documents here; did you "
        "mean 'duration'? (sent as given)",
    ]


# -- local images ----------------------------------------------------------------------------
def _png(width: int, height: int) -> bytes:
    from klingwatch.sandbox.media import png

    return png(width, height, (10, 20, 30))


def test_a_local_image_is_read_relative_to_the_batch_file_and_sent_as_base64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    folder = tmp_path / "job"
    (folder / "pics").mkdir(parents=True)
    (folder / "pics" / "cat.png").write_bytes(_png(320, 320))
    (folder / "b.jsonl").write_text(
        '{"product": "image2video", "image": "pics/cat.png", "image_tail": "./pics/cat.png"}\n'
        '{"product": "image-to-video/kling-2.6", "prompt": "it waves", '
        '"contents": [{"type": "first_frame", "url": "pics/cat.png"}]}\n'
        '{"product": "multi-image2video", "prompt": "p", '
        '"image_list": [{"image": "pics/cat.png"}, {"image": "https://cdn/x.png"}]}\n'
        '{"product": "effects", "effect_scene": "hug_pro", '
        '"input": {"images": ["pics/cat.png", "pics/cat.png"]}}\n'
        '{"product": "image-generation", "prompt": "pics/cat.png"}\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the path is the file's, not the cwd's

    found = read_batch("job/b.jsonl")

    raw = base64.b64encode(_png(320, 320)).decode()
    assert not found.problems, found.problems
    i2v, tasks, multi, effects, image = (line.request for line in found.lines)
    assert i2v["image"] == i2v["image_tail"] == raw
    assert not raw.startswith("data:")
    assert tasks["contents"] == [
        {"type": "prompt", "text": "it waves"},
        {"type": "first_frame", "url": raw},
    ]
    assert [item["image"] for item in multi["image_list"]] == [raw, "https://cdn/x.png"]
    assert effects["input"]["images"] == [raw, raw]
    assert image["prompt"] == "pics/cat.png"  # a prompt is not an image field


def test_a_missing_or_oversized_local_image_is_one_clear_line(
    write: Writer, tmp_path: Path
) -> None:
    (tmp_path / "huge.png").write_bytes(_png(320, 320) + bytes(11 * 1024 * 1024))
    (tmp_path / "small.png").write_bytes(_png(100, 100))
    name = write(
        "b.jsonl",
        '{"product": "image2video", "image": "./nope.png"}\n'
        '{"product": "avatar", "image": "huge.png", "audio_id": "a1"}\n'
        '{"product": "virtual-try-on", "human_image": "small.png", "cloth_image": "small.png"}\n',
    )

    assert _messages(name) == [
        f"b.jsonl:1: image2video: image: ./nope.png: no such file; check the path (paths are "
        f"read from {tmp_path})",
        f"b.jsonl:2: avatar: image: huge.png: is 11.0 MB; Kling accepts at most 10 MB here: "
        f"shrink the image or give a URL (paths are read from {tmp_path})",
        "b.jsonl:3: virtual-try-on: human_image: is 100x100 px; Kling needs at least 300 px on "
        "each side: use a larger image; cloth_image: is 100x100 px; Kling needs at least 300 px "
        "on each side: use a larger image",
    ]
